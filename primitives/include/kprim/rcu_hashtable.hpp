// kprim/rcu_hashtable.hpp: a fixed-size hash table of RCU hlist buckets (the kernel's
// include/linux/hashtable.h, RCU half): lock-free lookups inside rcu_read_lock(), updates
// serialised by the caller's lock, removed entries freed after a grace period.
// Fixed bucket count (2^Bits, chosen at compile time; no resizing): size it for the expected
// entries. For a table that grows, or for lock-free updates, use liburcu's rculfhash instead.
//
//     struct obj { std::uint64_t key; kprim::hlist_node node; kprim::rcu_head rcu; };
//     kprim::hashtable<10> ht;                                 // 1024 empty buckets
//     kprim::hash_add_rcu(ht, &o->node, o->key);               // updater, lock held
//     { kprim::rcu_read_guard g;                               // reader
//       for (obj& e : kprim::hash_possible_rcu<&obj::node>(ht, key)) if (e.key == key) ... }
//     kprim::hash_del_rcu(&o->node); kprim::kfree_rcu<&obj::rcu>(o);   // updater
#pragma once

#include <kprim/hlist.hpp>
#include <kprim/rculist.hpp>

#include <cstddef>
#include <cstdint>

namespace kprim {

/// hashtable<Bits> - 2^Bits hlist buckets (8 bytes each), all empty when constructed.
/// Layout: just the bucket array; no count, no lock (the kernel's DEFINE_HASHTABLE).
template <unsigned Bits>
struct hashtable {
  static_assert(Bits >= 1 && Bits <= 30, "hashtable<Bits>: 1 <= Bits <= 30");
  static constexpr unsigned bits = Bits;
  static constexpr std::size_t size = std::size_t{1} << Bits;
  hlist_head heads[size] = {};
};

/// hash_min() - bucket index of key in a table of 2^bits buckets (hash_32() for keys of up to
/// 32 bits, hash_64() otherwise, as the kernel does). Cost: one multiply and shift.
template <class K>
[[nodiscard]] constexpr std::uint32_t hash_min(K key, unsigned bits) noexcept {
  if constexpr (sizeof(K) <= 4)
    return hash_32(static_cast<std::uint32_t>(key), bits);
  else
    return hash_64(static_cast<std::uint64_t>(key), bits);
}

/// hash_bucket() - the bucket key hashes to.
template <unsigned Bits, class K>
[[nodiscard]] inline hlist_head& hash_bucket(hashtable<Bits>& ht, K key) noexcept {
  return ht.heads[hash_min(key, Bits)];
}

/// hash_init() - empty every bucket. Context: no reader may be walking the table. O(2^Bits).
template <unsigned Bits>
inline void hash_init(hashtable<Bits>& ht) noexcept {
  for (auto& h : ht.heads) INIT_HLIST_HEAD(&h);
}

/// hash_add_rcu() - add node under key for RCU readers. Context: update side, serialised by the
/// caller with every other updater of the table. Ordering: node's container is published by a
/// release store. Cost: O(1).
template <unsigned Bits, class K>
inline void hash_add_rcu(hashtable<Bits>& ht, hlist_node* node, K key) noexcept {
  hlist_add_head_rcu(node, &hash_bucket(ht, key));
}

/// hash_del_rcu() - remove node from its table (marked unhashed); readers on it may finish
/// their walk. Free the container after a grace period. Context: update side, serialised.
inline void hash_del_rcu(hlist_node* node) noexcept { hlist_del_init_rcu(node); }

/// hash_hashed() - node is in a table. Context: update side.
[[nodiscard]] inline bool hash_hashed(const hlist_node* node) noexcept { return !hlist_unhashed(node); }

/// hash_empty() - no bucket holds an entry (a snapshot when readers or updaters run). O(2^Bits).
template <unsigned Bits>
[[nodiscard]] inline bool hash_empty(const hashtable<Bits>& ht) noexcept {
  for (const auto& h : ht.heads)
    if (rcu_access_pointer(h.first)) return false;
  return true;
}

/// hash_possible_rcu<&T::member>(ht, key) - the entries in key's bucket (all keys that hash
/// there: compare the key), for a reader inside a read-side critical section. O(bucket length).
template <auto Member, unsigned Bits, class K>
[[nodiscard]] inline auto hash_possible_rcu(hashtable<Bits>& ht, K key) noexcept {
  return rcu_hentries<Member>(hash_bucket(ht, key));
}

}  // namespace kprim

/// hash_for_each_possible_rcu(name, obj, member, key) - the kernel spelling of
/// hash_possible_rcu(): obj walks the entries of key's bucket in table `name`.
#define hash_for_each_possible_rcu(name, obj, member, key) \
  hlist_for_each_entry_rcu(obj, &::kprim::hash_bucket(name, key), member)
