// kprim/llist.hpp: the kernel's lock-less NULL-terminated singly linked list
// (include/linux/llist.h, lib/llist.c).
//
// Concurrency rules, as in the kernel:
//   - any number of llist_add()/llist_add_batch() and llist_del_all() may run concurrently
//     without locks;
//   - llist_del_first() may run concurrently with adders, but only one llist_del_first() (or
//     llist_del_first() with llist_del_all()) at a time: two consumers of del_first are
//     exposed to ABA and must serialise with a lock;
//   - llist_del_all() returns the entries newest first: llist_reverse_order() for FIFO.
// Every access to head->first is an atomic; adds are release (fully ordered, as cmpxchg),
// deletes acquire (fully ordered, as xchg/cmpxchg), so a node's contents written before
// llist_add() are visible to whoever removes it.
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/detail/chain_range.hpp>

#include <cstddef>
#include <iterator>
#include <ranges>
#include <type_traits>

namespace kprim {

struct llist_node {
  llist_node* next;
};
struct llist_head {
  llist_node* first;
};

#define LLIST_HEAD_INIT(name) \
  { nullptr }
#define LLIST_HEAD(name) ::kprim::llist_head name = {nullptr}

inline void init_llist_head(llist_head* list) noexcept { __atomic_store_n(&list->first, nullptr, __ATOMIC_RELAXED); }
/// init_llist_node() - mark a node as off-list (next points to itself).
inline void init_llist_node(llist_node* node) noexcept { write_once(node->next, node); }
/// llist_on_list() - false after init_llist_node() until the node is added.
[[nodiscard]] inline bool llist_on_list(const llist_node* node) noexcept { return read_once(node->next) != node; }

/// llist_empty() - no entries (racy by nature: a hint unless the caller excludes adders).
[[nodiscard]] inline bool llist_empty(const llist_head* head) noexcept {
  return __atomic_load_n(&head->first, __ATOMIC_RELAXED) == nullptr;
}
[[nodiscard]] inline llist_node* llist_next(llist_node* node) noexcept { return node->next; }

/// llist_add_batch() - add the chain new_first..new_last (already linked) at the front.
/// Lock-free. Returns true if the list was empty before. Fully ordered.
inline bool llist_add_batch(llist_node* new_first, llist_node* new_last, llist_head* head) noexcept {
  llist_node* first = __atomic_load_n(&head->first, __ATOMIC_RELAXED);
  do {
    new_last->next = first;
  } while (!__atomic_compare_exchange_n(&head->first, &first, new_first, true, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED));
  return !first;
}
/// llist_add() - add one node at the front. Lock-free; true if the list was empty before.
inline bool llist_add(llist_node* n, llist_head* head) noexcept { return llist_add_batch(n, n, head); }

/// __llist_add() - non-atomic add, for a list the caller owns exclusively.
inline bool __llist_add(llist_node* n, llist_head* head) noexcept {
  n->next = head->first;
  head->first = n;
  return !n->next;
}

/// llist_del_all() - take every entry (newest first); the list is empty after. Lock-free,
/// fully ordered (xchg).
[[nodiscard]] inline llist_node* llist_del_all(llist_head* head) noexcept {
  return __atomic_exchange_n(&head->first, nullptr, __ATOMIC_SEQ_CST);
}
/// __llist_del_all() - non-atomic llist_del_all().
[[nodiscard]] inline llist_node* __llist_del_all(llist_head* head) noexcept {
  llist_node* first = head->first;
  head->first = nullptr;
  return first;
}

/// llist_del_first() - take the newest entry, or nullptr. Single consumer only (see above).
[[nodiscard]] inline llist_node* llist_del_first(llist_head* head) noexcept {
  llist_node* entry = __atomic_load_n(&head->first, __ATOMIC_ACQUIRE);
  llist_node* next;
  do {
    if (entry == nullptr) return nullptr;
    next = read_once(entry->next);
  } while (!__atomic_compare_exchange_n(&head->first, &entry, next, true, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
  return entry;
}
/// llist_del_first_init() - llist_del_first(), then init_llist_node() on the result.
[[nodiscard]] inline llist_node* llist_del_first_init(llist_head* head) noexcept {
  llist_node* n = llist_del_first(head);
  if (n) init_llist_node(n);
  return n;
}

/// llist_reverse_order() - reverse a detached chain (from llist_del_all()): oldest first.
[[nodiscard]] inline llist_node* llist_reverse_order(llist_node* head) noexcept {
  llist_node* new_head = nullptr;
  while (head) {
    llist_node* tmp = head;
    head = head->next;
    tmp->next = new_head;
    new_head = tmp;
  }
  return new_head;
}

// ---- C++ ranges over a detached chain ----------------------------------------------------
namespace detail {
template <auto Member, bool Safe>
using llist_range = chain_range<Member, llist_node, Safe>;
}  // namespace detail

/// lentries<&T::member>(chain) - the T elements of a detached chain (e.g. from
/// llist_del_all()). lentries_safe: the body may free/reuse the current element.
template <auto Member>
[[nodiscard]] inline auto lentries(llist_node* chain) noexcept {
  static_assert(std::is_same_v<typename detail::member_traits<Member>::type, llist_node>,
                "lentries<&T::member>: member must be an llist_node");
  return detail::llist_range<Member, false>(chain);
}
template <auto Member>
[[nodiscard]] inline auto lentries_safe(llist_node* chain) noexcept {
  return detail::llist_range<Member, true>(chain);
}

}  // namespace kprim

#define llist_entry(ptr, type, member) container_of(ptr, type, member)
#define llist_for_each(pos, node) for ((pos) = (node); pos; (pos) = (pos)->next)
#define llist_for_each_safe(pos, n, node) for ((pos) = (node); (pos) && ((n) = (pos)->next, true); (pos) = (n))
#define llist_entry_safe(ptr, type, member) \
  ([](::kprim::llist_node* p_) -> type* { return p_ ? llist_entry(p_, type, member) : nullptr; }(ptr))
#define llist_for_each_entry(pos, node, member)                              \
  for ((pos) = llist_entry_safe((node), KPRIM_ENTRY_TYPE(pos), member); pos; \
       (pos) = llist_entry_safe((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member))
#define llist_for_each_entry_safe(pos, n, node, member)               \
  for (pos = llist_entry_safe((node), KPRIM_ENTRY_TYPE(pos), member); \
       pos && (n = llist_entry_safe((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member), true); pos = n)
