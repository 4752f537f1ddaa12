// kprim/rculist.hpp: RCU-protected intrusive lists on kprim's list_head and hlist (the kernel's
// include/linux/rculist.h): updaters, serialised by their own lock, add/remove/replace entries
// while readers walk the list inside rcu_read_lock() without any lock.
// Readers must not walk backwards (prev pointers are not RCU-safe) and a removed entry may only
// be freed after a grace period (kfree_rcu(), synchronize_rcu() from kprim/rcu.hpp). For lists
// written as often as read, a plain list under a lock (kprim/list.hpp) is simpler and faster.
//
//     // reader, inside rcu_read_guard:
//     for (T& e : kprim::rcu_entries<&T::node>(head)) ...
//     for (T& e : kprim::rcu_hentries<&T::hnode>(bucket)) ...
//     list_for_each_entry_rcu(pos, &head, node) ...            // kernel spelling
//     // updater, holding the update lock:
//     kprim::list_add_tail_rcu(&n->node, &head);
//     kprim::list_del_rcu(&e->node); kprim::kfree_rcu<&T::rcu>(e);
//
// Flavour-free: only rcu_assign_pointer()/rcu_dereference_raw() (kprim/rcu/pointer.hpp) are
// used, so any RCU flavour's read side protects these walks.
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/hlist.hpp>
#include <kprim/list.hpp>
#include <kprim/rcu/pointer.hpp>

#include <cstddef>
#include <iterator>
#include <ranges>

namespace kprim {

// ---- list_head ---------------------------------------------------------------------------

/// INIT_LIST_HEAD_RCU() - initialise a list that readers may already be looking at (both
/// links written once, so a concurrent reader sees an empty list or the old one).
inline void INIT_LIST_HEAD_RCU(list_head* list) noexcept { INIT_LIST_HEAD(list); }

/// __list_add_rcu() - insert n between two known consecutive entries, publishing it to
/// readers. Ordering: n's links (and everything written to n's container before) are visible
/// to a reader that reaches n: the store to prev->next is a release.
inline void __list_add_rcu(list_head* n, list_head* prev, list_head* next) noexcept {
  if (!detail::list_add_valid(n, prev, next)) return;
  n->next = next;
  n->prev = prev;
  rcu_assign_pointer(prev->next, n);
  next->prev = n;
}

/// list_add_rcu() - insert n after head (stack order) for RCU readers. Context: update side,
/// serialised with other updaters of this list by the caller's lock; may run concurrently with
/// readers. Cost: O(1), one release store.
inline void list_add_rcu(list_head* n, list_head* head) noexcept { __list_add_rcu(n, head, head->next); }

/// list_add_tail_rcu() - insert n before head (at the tail). Context, cost: as list_add_rcu().
inline void list_add_tail_rcu(list_head* n, list_head* head) noexcept { __list_add_rcu(n, head->prev, head); }

/// list_del_rcu() - unlink entry; readers already on it may still follow entry->next, so that
/// link is left intact (only prev is poisoned). Free the entry after a grace period, never
/// before; do not reuse it (or list_del_init() it) until then either. Context: update side,
/// serialised. Cost: O(1).
inline void list_del_rcu(list_head* entry) noexcept {
  if (!detail::list_del_entry_valid(entry)) return;
  list_head* prev = entry->prev;
  list_head* next = entry->next;
  next->prev = prev;
  // A reader may reach `next` through this store for the first time: release, so next's
  // contents are visible to it (free on x86-64; the kernel relies on address dependencies).
  rcu_assign_pointer(prev->next, next);
  entry->prev = detail::poison<list_head>(0x122);
}

/// list_replace_rcu() - put n where old is, atomically for readers: each reader sees old or
/// n, never neither. Free old after a grace period. Context: update side, serialised.
/// Ordering: n's contents are published by a release store. Cost: O(1).
inline void list_replace_rcu(list_head* old, list_head* n) noexcept {
  n->next = old->next;
  n->prev = old->prev;
  rcu_assign_pointer(n->prev->next, n);
  n->next->prev = n;
  old->prev = detail::poison<list_head>(0x122);
}

/// list_next_rcu_raw() - the next link as a reader loads it (consume/acquire).
[[nodiscard]] inline list_head* list_next_rcu_raw(const list_head* pos) noexcept {
  return rcu_dereference_raw(pos->next);
}

/// list_empty_rcu() - whether the list looked empty (a snapshot). Context: any.
[[nodiscard]] inline bool list_empty_rcu(const list_head* head) noexcept {
  return rcu_access_pointer(head->next) == head;
}

// ---- hlist -------------------------------------------------------------------------------

/// hlist_add_head_rcu() - insert n at the front of bucket h for RCU readers. Context: update
/// side, serialised with other updaters of h; readers may be walking h. Ordering: n is
/// published with a release store. Cost: O(1).
inline void hlist_add_head_rcu(hlist_node* n, hlist_head* h) noexcept {
  hlist_node* first = h->first;
  n->next = first;
  write_once(n->pprev, &h->first);
  rcu_assign_pointer(h->first, n);
  if (first) write_once(first->pprev, &n->next);
}

/// hlist_add_before_rcu() - insert n before next (which is on a list) for RCU readers.
inline void hlist_add_before_rcu(hlist_node* n, hlist_node* next) noexcept {
  write_once(n->pprev, next->pprev);
  n->next = next;
  rcu_assign_pointer(*n->pprev, n);
  write_once(next->pprev, &n->next);
}

/// hlist_add_behind_rcu() - insert n after prev (which is on a list) for RCU readers.
inline void hlist_add_behind_rcu(hlist_node* n, hlist_node* prev) noexcept {
  n->next = prev->next;
  write_once(n->pprev, &prev->next);
  rcu_assign_pointer(prev->next, n);
  if (n->next) write_once(n->next->pprev, &n->next);
}

/// __hlist_del_rcu() - unlink n; the store that bypasses it is a release (as in list_del_rcu()).
inline void __hlist_del_rcu(hlist_node* n) noexcept {
  hlist_node* next = n->next;
  hlist_node** pprev = n->pprev;
  rcu_assign_pointer(*pprev, next);
  if (next) write_once(next->pprev, pprev);
}

/// hlist_del_rcu() - unlink n; n->next stays intact for readers standing on n, pprev is
/// poisoned. Free n after a grace period. Context: update side, serialised. Cost: O(1).
inline void hlist_del_rcu(hlist_node* n) noexcept {
  __hlist_del_rcu(n);
  write_once(n->pprev, detail::poison<hlist_node*>(0x122));
}

/// hlist_del_init_rcu() - unlink n if hashed and mark it unhashed (hlist_unhashed() true),
/// n->next intact for readers. n may be re-added only after a grace period.
inline void hlist_del_init_rcu(hlist_node* n) noexcept {
  if (!hlist_unhashed(n)) {
    __hlist_del_rcu(n);
    write_once(n->pprev, static_cast<hlist_node**>(nullptr));
  }
}

/// hlist_replace_rcu() - put n where old is, atomically for readers. Free old after a grace
/// period. Context: update side, serialised. Cost: O(1), one release store.
inline void hlist_replace_rcu(hlist_node* old, hlist_node* n) noexcept {
  hlist_node* next = old->next;
  n->next = next;
  write_once(n->pprev, old->pprev);
  rcu_assign_pointer(*n->pprev, n);
  if (next) write_once(next->pprev, &n->next);
  write_once(old->pprev, detail::poison<hlist_node*>(0x122));
}

// ---- C++ ranges for readers ---------------------------------------------------------------

namespace detail {

/// Forward-only reader iterator over list_head or hlist_node links: every link is loaded once,
/// with rcu_dereference_raw().
template <auto Member, class Node>
class rcu_iterator {
  using owner = typename member_traits<Member>::owner;

 public:
  using value_type = owner;
  using reference = owner&;
  using pointer = owner*;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::forward_iterator_tag;
  using iterator_concept = std::forward_iterator_tag;

  rcu_iterator() = default;
  explicit rcu_iterator(Node* pos) noexcept : pos_(pos) {}
  reference operator*() const noexcept { return *container_of<Member>(pos_); }
  pointer operator->() const noexcept { return container_of<Member>(pos_); }
  rcu_iterator& operator++() noexcept {
    pos_ = rcu_dereference_raw(pos_->next);
    return *this;
  }
  rcu_iterator operator++(int) noexcept {
    rcu_iterator t = *this;
    ++*this;
    return t;
  }
  friend bool operator==(const rcu_iterator& a, const rcu_iterator& b) noexcept { return a.pos_ == b.pos_; }

 private:
  Node* pos_ = nullptr;
};

/// The entries from the link at *first up to `end` (the list head, or nullptr for an hlist).
template <auto Member, class Node>
class rcu_range : public std::ranges::view_interface<rcu_range<Member, Node>> {
 public:
  using iterator = rcu_iterator<Member, Node>;
  rcu_range() = default;
  rcu_range(Node* const* first, Node* end) noexcept : first_(first), end_(end) {}
  iterator begin() const noexcept { return iterator(rcu_dereference_raw(*first_)); }
  iterator end() const noexcept { return iterator(end_); }

 private:
  Node* const* first_ = nullptr;
  Node* end_ = nullptr;
};

}  // namespace detail

/// rcu_entries<&T::member>(head) - the T elements of an RCU list, first to last, for a reader
/// inside a read-side critical section (or an updater holding the update lock). Entries added
/// or removed meanwhile may or may not be seen; each one seen is intact. Forward only.
template <auto Member>
[[nodiscard]] inline auto rcu_entries(list_head& head) noexcept {
  static_assert(std::is_same_v<typename detail::member_traits<Member>::type, list_head>,
                "rcu_entries<&T::member>: member must be a list_head");
  return detail::rcu_range<Member, list_head>(&head.next, &head);
}

/// rcu_hentries<&T::member>(bucket) - the T elements of an RCU hlist bucket, front to back;
/// same rules as rcu_entries().
template <auto Member>
[[nodiscard]] inline auto rcu_hentries(hlist_head& h) noexcept {
  static_assert(std::is_same_v<typename detail::member_traits<Member>::type, hlist_node>,
                "rcu_hentries<&T::member>: member must be an hlist_node");
  return detail::rcu_range<Member, hlist_node>(&h.first, nullptr);
}

}  // namespace kprim

// ---- kernel macro forms -------------------------------------------------------------------

/// list_entry_rcu() - the entry containing the link loaded from ptr (a list_head* lvalue).
#define list_entry_rcu(ptr, type, member) container_of(::kprim::rcu_dereference_raw(ptr), type, member)
/// list_first_or_null_rcu() - the first entry, or nullptr for an empty list (one load of next).
#define list_first_or_null_rcu(ptr, type, member)                    \
  ([](::kprim::list_head* h_) -> type* {                             \
    ::kprim::list_head* n_ = ::kprim::rcu_dereference_raw(h_->next); \
    return n_ != h_ ? container_of(n_, type, member) : nullptr;      \
  }(ptr))
/// list_for_each_entry_rcu(pos, head, member) - walk an RCU list as a reader.
#define list_for_each_entry_rcu(pos, head, member)                        \
  for (pos = list_entry_rcu((head)->next, KPRIM_ENTRY_TYPE(pos), member); \
       &pos->member != (head); pos = list_entry_rcu(pos->member.next, KPRIM_ENTRY_TYPE(pos), member))
/// hlist_for_each_entry_rcu(pos, head, member) - walk an RCU hlist bucket as a reader.
#define hlist_for_each_entry_rcu(pos, head, member)                                                             \
  for (pos = hlist_entry_safe(::kprim::rcu_dereference_raw((head)->first), KPRIM_ENTRY_TYPE(pos), member); pos; \
       pos = hlist_entry_safe(::kprim::rcu_dereference_raw((pos)->member.next), KPRIM_ENTRY_TYPE(pos), member))
