// kprim/list.hpp: the kernel's circular doubly linked intrusive list (include/linux/list.h).
//
// A list_head is embedded in each element; the list head is a bare list_head. No allocation,
// O(1) insert/remove/move/splice. Not thread-safe: callers provide the locking (list RCU
// variants are not here).
//
// Iteration, C++ style (ranges; T is recovered from the member pointer):
//     for (T& e : kprim::entries<&T::node>(head)) ...           // forward
//     for (T& e : kprim::entries_reverse<&T::node>(head)) ...   // backward
//     for (T& e : kprim::entries_safe<&T::node>(head)) list_del(&e.node);   // may delete e
//     kprim::entries_safe_reverse<&T::node>(head)
// and kernel style (list_for_each_entry(pos, head, member) and friends), for kernel readers.
//
// Debug builds (KPRIM_DEBUG_LIST, on when NDEBUG is not defined) do what CONFIG_DEBUG_LIST
// does: list_del() poisons the entry (next = LIST_POISON1, prev = LIST_POISON2, so a use after
// deletion faults) and add/del check the neighbours' links, aborting on corruption.
// Release builds leave deleted entries' pointers as they were (stale, not poisoned).
// KPRIM_DEBUG_LIST must have the same value in every translation unit of a program.
#pragma once

#include <kprim/compiler.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <ranges>
#include <type_traits>

#ifndef KPRIM_DEBUG_LIST
#ifdef NDEBUG
#define KPRIM_DEBUG_LIST 0
#else
#define KPRIM_DEBUG_LIST 1
#endif
#endif

namespace kprim {

/// The kernel's POISON_POINTER_DELTA on x86-64: poisoned pointers are non-canonical, so any
/// dereference faults.
inline constexpr std::uintptr_t poison_pointer_delta = sizeof(void*) == 8 ? 0xdead000000000000ull : 0;

namespace detail {
template <class P>
inline P* poison(std::uintptr_t v) noexcept {
  return reinterpret_cast<P*>(v + poison_pointer_delta);
}
}  // namespace detail

/// list_head - link embedded in each element (and the list's head). Layout: next, prev.
struct list_head {
  list_head* next;
  list_head* prev;
};

}  // namespace kprim

/// LIST_POISON1/2 - what list_del() leaves in next/prev in debug builds (as void*).
#define LIST_POISON1 (reinterpret_cast<void*>(0x100 + ::kprim::poison_pointer_delta))
#define LIST_POISON2 (reinterpret_cast<void*>(0x122 + ::kprim::poison_pointer_delta))

namespace kprim {

namespace detail {

[[noreturn, gnu::cold, gnu::noinline]] inline void list_corruption(const char* what, const void* a,
                                                                   const void* b, const void* c) noexcept {
  std::fprintf(stderr, "kprim: list corruption: %s (%p, %p, %p)\n", what, a, b, c);
  std::abort();
}

inline bool list_add_valid(list_head* n, list_head* prev, list_head* next) noexcept {
#if KPRIM_DEBUG_LIST
  if (unlikely(next->prev != prev))
    list_corruption("list_add: next->prev should be prev", prev, next->prev, next);
  if (unlikely(prev->next != next))
    list_corruption("list_add: prev->next should be next", next, prev->next, prev);
  if (unlikely(n == prev || n == next)) list_corruption("list_add double add", n, prev, next);
#else
  (void)n, (void)prev, (void)next;
#endif
  return true;
}

inline bool list_del_entry_valid(list_head* entry) noexcept {
#if KPRIM_DEBUG_LIST
  list_head* prev = entry->prev;
  list_head* next = entry->next;
  if (unlikely(static_cast<void*>(next) == LIST_POISON1))
    list_corruption("list_del: next is LIST_POISON1 (deleted twice?)", entry, next, prev);
  if (unlikely(static_cast<void*>(prev) == LIST_POISON2))
    list_corruption("list_del: prev is LIST_POISON2 (deleted twice?)", entry, next, prev);
  if (unlikely(prev->next != entry)) list_corruption("list_del: prev->next should be entry", entry, prev, prev->next);
  if (unlikely(next->prev != entry)) list_corruption("list_del: next->prev should be entry", entry, next, next->prev);
#else
  (void)entry;
#endif
  return true;
}

}  // namespace detail

/// INIT_LIST_HEAD() - make `list` an empty list (or an unlinked entry). Cost: two stores.
inline void INIT_LIST_HEAD(list_head* list) noexcept {
  write_once(list->next, list);
  write_once(list->prev, list);
}

/// __list_add() - insert n between two known consecutive entries.
inline void __list_add(list_head* n, list_head* prev, list_head* next) noexcept {
  if (!detail::list_add_valid(n, prev, next)) return;
  next->prev = n;
  n->next = next;
  n->prev = prev;
  write_once(prev->next, n);
}

/// list_add() - insert n right after head (stack order). O(1).
inline void list_add(list_head* n, list_head* head) noexcept { __list_add(n, head, head->next); }
/// list_add_tail() - insert n right before head, i.e. at the tail (queue order). O(1).
inline void list_add_tail(list_head* n, list_head* head) noexcept { __list_add(n, head->prev, head); }

/// __list_del() - link prev and next to each other (the entry between is dropped).
inline void __list_del(list_head* prev, list_head* next) noexcept {
  next->prev = prev;
  write_once(prev->next, next);
}

/// __list_del_entry() - unlink entry; its own pointers are left as they were.
inline void __list_del_entry(list_head* entry) noexcept {
  if (!detail::list_del_entry_valid(entry)) return;
  __list_del(entry->prev, entry->next);
}

/// list_del() - unlink entry. Afterwards list_empty(entry) is not true: in debug builds
/// entry is poisoned, in release builds its pointers are stale. Use list_del_init() to reuse.
inline void list_del(list_head* entry) noexcept {
  __list_del_entry(entry);
#if KPRIM_DEBUG_LIST
  entry->next = detail::poison<list_head>(0x100);
  entry->prev = detail::poison<list_head>(0x122);
#endif
}

/// list_replace() - put n where old is (old's pointers are left stale).
inline void list_replace(list_head* old, list_head* n) noexcept {
  n->next = old->next;
  n->next->prev = n;
  n->prev = old->prev;
  n->prev->next = n;
}
/// list_replace_init() - list_replace(), then reinitialise old as an empty list.
inline void list_replace_init(list_head* old, list_head* n) noexcept {
  list_replace(old, n);
  INIT_LIST_HEAD(old);
}

/// list_swap() - exchange the positions of entry1 and entry2 (in one list or two).
inline void list_swap(list_head* entry1, list_head* entry2) noexcept {
  list_head* pos = entry2->prev;
  list_del(entry2);
  list_replace(entry1, entry2);
  if (pos == entry1) pos = entry2;
  list_add(entry1, pos);
}

/// list_del_init() - unlink entry and reinitialise it (list_empty(entry) is then true).
inline void list_del_init(list_head* entry) noexcept {
  __list_del_entry(entry);
  INIT_LIST_HEAD(entry);
}

/// list_move() - unlink list from its list and add it after head.
inline void list_move(list_head* list, list_head* head) noexcept {
  __list_del_entry(list);
  list_add(list, head);
}
/// list_move_tail() - unlink list from its list and add it before head (at the tail).
inline void list_move_tail(list_head* list, list_head* head) noexcept {
  __list_del_entry(list);
  list_add_tail(list, head);
}

/// list_bulk_move_tail() - move the run first..last (consecutive, in one list) to head's tail.
inline void list_bulk_move_tail(list_head* head, list_head* first, list_head* last) noexcept {
  first->prev->next = last->next;
  last->next->prev = first->prev;
  head->prev->next = first;
  first->prev = head->prev;
  last->next = head;
  head->prev = last;
}

/// list_is_first()/list_is_last() - is list the first/last entry of the list at head.
[[nodiscard]] inline bool list_is_first(const list_head* list, const list_head* head) noexcept {
  return list->prev == head;
}
[[nodiscard]] inline bool list_is_last(const list_head* list, const list_head* head) noexcept {
  return list->next == head;
}
/// list_is_head() - is list the head itself.
[[nodiscard]] inline bool list_is_head(const list_head* list, const list_head* head) noexcept {
  return list == head;
}

/// list_empty() - true when head has no entries. One READ_ONCE.
[[nodiscard]] inline bool list_empty(const list_head* head) noexcept { return read_once(head->next) == head; }

/// list_del_init_careful() - list_del_init() whose final store is a release, pairing with
/// list_empty_careful() readers without a lock.
inline void list_del_init_careful(list_head* entry) noexcept {
  __list_del_entry(entry);
  write_once(entry->prev, entry);
  __atomic_store_n(&entry->next, entry, __ATOMIC_RELEASE);
}
/// list_empty_careful() - list_empty() that also checks prev, safe against a concurrent
/// list_del_init_careful() (not against concurrent add).
[[nodiscard]] inline bool list_empty_careful(const list_head* head) noexcept {
  list_head* next = __atomic_load_n(&head->next, __ATOMIC_ACQUIRE);
  return list_is_head(next, head) && next == read_once(head->prev);
}

/// list_rotate_left() - move the first entry to the tail.
inline void list_rotate_left(list_head* head) noexcept {
  if (!list_empty(head)) list_move_tail(head->next, head);
}
/// list_rotate_to_front() - rotate so that list becomes the first entry.
inline void list_rotate_to_front(list_head* list, list_head* head) noexcept {
  // Moving the head to just before list makes list the first entry.
  list_move_tail(head, list);
}

/// list_is_singular() - exactly one entry.
[[nodiscard]] inline bool list_is_singular(const list_head* head) noexcept {
  return !list_empty(head) && head->next == head->prev;
}

inline void __list_cut_position(list_head* list, list_head* head, list_head* entry) noexcept {
  list_head* new_first = entry->next;
  list->next = head->next;
  list->next->prev = list;
  list->prev = entry;
  entry->next = list;
  head->next = new_first;
  new_first->prev = head;
}

/// list_cut_position() - move head's entries up to and including entry to list (which must
/// be empty or its entries are lost). entry == head moves nothing.
inline void list_cut_position(list_head* list, list_head* head, list_head* entry) noexcept {
  if (list_empty(head)) return;
  if (list_is_singular(head) && !list_is_head(entry, head) && entry != head->next) return;
  if (list_is_head(entry, head))
    INIT_LIST_HEAD(list);
  else
    __list_cut_position(list, head, entry);
}

/// list_cut_before() - move head's entries before entry (not including it) to list.
inline void list_cut_before(list_head* list, list_head* head, list_head* entry) noexcept {
  if (head->next == entry) {
    INIT_LIST_HEAD(list);
    return;
  }
  list->next = head->next;
  list->next->prev = list;
  list->prev = entry->prev;
  list->prev->next = list;
  head->next = entry;
  entry->prev = head;
}

inline void __list_splice(const list_head* list, list_head* prev, list_head* next) noexcept {
  list_head* first = list->next;
  list_head* last = list->prev;
  first->prev = prev;
  prev->next = first;
  last->next = next;
  next->prev = last;
}

/// list_splice() - join list's entries at the front of head (list itself is left stale).
inline void list_splice(const list_head* list, list_head* head) noexcept {
  if (!list_empty(list)) __list_splice(list, head, head->next);
}
/// list_splice_tail() - join list's entries at the tail of head (list is left stale).
inline void list_splice_tail(list_head* list, list_head* head) noexcept {
  if (!list_empty(list)) __list_splice(list, head->prev, head);
}
/// list_splice_init() - list_splice(), then reinitialise list as empty.
inline void list_splice_init(list_head* list, list_head* head) noexcept {
  if (!list_empty(list)) {
    __list_splice(list, head, head->next);
    INIT_LIST_HEAD(list);
  }
}
/// list_splice_tail_init() - list_splice_tail(), then reinitialise list as empty.
inline void list_splice_tail_init(list_head* list, list_head* head) noexcept {
  if (!list_empty(list)) {
    __list_splice(list, head->prev, head);
    INIT_LIST_HEAD(list);
  }
}

/// list_count_nodes() - number of entries. O(n).
[[nodiscard]] inline std::size_t list_count_nodes(const list_head* head) noexcept {
  std::size_t n = 0;
  for (const list_head* p = head->next; p != head; p = p->next) ++n;
  return n;
}

// ---- C++ ranges -------------------------------------------------------------------------

namespace detail {

/// Iterator over the entries of a list_head list. Rev: walk prev pointers. Safe: the next
/// position is read before the current entry is handed out, so the body may list_del() it.
template <auto Member, bool Rev, bool Safe, bool Const>
class list_iterator {
  using owner = typename member_traits<Member>::owner;
  using node = std::conditional_t<Const, const list_head, list_head>;

 public:
  using value_type = owner;
  using reference = std::conditional_t<Const, const owner&, owner&>;
  using pointer = std::conditional_t<Const, const owner*, owner*>;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::conditional_t<Safe, std::forward_iterator_tag, std::bidirectional_iterator_tag>;
  using iterator_concept = iterator_category;

  list_iterator() = default;
  explicit list_iterator(node* pos) noexcept : pos_(pos), n_(Safe ? step(pos) : nullptr) {}

  reference operator*() const noexcept { return *container_of<Member>(pos_); }
  pointer operator->() const noexcept { return container_of<Member>(pos_); }

  list_iterator& operator++() noexcept {
    if constexpr (Safe) {
      pos_ = n_;
      n_ = step(pos_);
    } else {
      pos_ = step(pos_);
    }
    return *this;
  }
  list_iterator operator++(int) noexcept {
    list_iterator t = *this;
    ++*this;
    return t;
  }
  list_iterator& operator--() noexcept
      requires(!Safe) {
    pos_ = Rev ? pos_->next : pos_->prev;
    return *this;
  }
  list_iterator operator--(int) noexcept
      requires(!Safe) {
    list_iterator t = *this;
    --*this;
    return t;
  }
  friend bool operator==(const list_iterator& a, const list_iterator& b) noexcept { return a.pos_ == b.pos_; }

 private:
  static node* step(node* p) noexcept { return Rev ? p->prev : p->next; }
  node* pos_ = nullptr;
  node* n_ = nullptr;
};

template <auto Member, bool Rev, bool Safe, bool Const>
class list_range : public std::ranges::view_interface<list_range<Member, Rev, Safe, Const>> {
  using node = std::conditional_t<Const, const list_head, list_head>;

 public:
  using iterator = list_iterator<Member, Rev, Safe, Const>;
  list_range() = default;
  explicit list_range(node* head) noexcept : head_(head) {}
  // Safe ranges read the first link when begin() is called, not when the range is made.
  iterator begin() const noexcept { return iterator(Rev ? head_->prev : head_->next); }
  iterator end() const noexcept { return iterator(head_); }
  [[nodiscard]] bool empty() const noexcept { return head_->next == head_; }

 private:
  node* head_ = nullptr;
};

}  // namespace detail

/// entries<&T::member>(head) - the T elements of the list at head, first to last.
template <auto Member>
[[nodiscard]] inline auto entries(list_head& head) noexcept {
  static_assert(std::is_same_v<typename detail::member_traits<Member>::type, list_head>,
                "entries<&T::member>: member must be a list_head");
  return detail::list_range<Member, false, false, false>(&head);
}
template <auto Member>
[[nodiscard]] inline auto entries(const list_head& head) noexcept {
  return detail::list_range<Member, false, false, true>(&head);
}
/// entries_reverse<&T::member>(head) - last to first.
template <auto Member>
[[nodiscard]] inline auto entries_reverse(list_head& head) noexcept {
  return detail::list_range<Member, true, false, false>(&head);
}
template <auto Member>
[[nodiscard]] inline auto entries_reverse(const list_head& head) noexcept {
  return detail::list_range<Member, true, false, true>(&head);
}
/// entries_safe<&T::member>(head) - first to last; the loop body may delete (or move
/// elsewhere) the current entry, but no other.
template <auto Member>
[[nodiscard]] inline auto entries_safe(list_head& head) noexcept {
  return detail::list_range<Member, false, true, false>(&head);
}
/// entries_safe_reverse<&T::member>(head) - last to first, deletion-safe.
template <auto Member>
[[nodiscard]] inline auto entries_safe_reverse(list_head& head) noexcept {
  return detail::list_range<Member, true, true, false>(&head);
}

}  // namespace kprim

// ---- kernel macro forms -----------------------------------------------------------------

/// LIST_HEAD(name) - define and initialise an empty list named name.
#define LIST_HEAD_INIT(name) \
  { &(name), &(name) }
#define LIST_HEAD(name) ::kprim::list_head name = LIST_HEAD_INIT(name)

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) list_entry((ptr)->next, type, member)
#define list_last_entry(ptr, type, member) list_entry((ptr)->prev, type, member)
#define list_first_entry_or_null(ptr, type, member) \
  (!::kprim::list_empty(ptr) ? list_first_entry(ptr, type, member) : nullptr)
#define list_next_entry(pos, member) list_entry((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member)
#define list_prev_entry(pos, member) list_entry((pos)->member.prev, KPRIM_ENTRY_TYPE(pos), member)
#define list_next_entry_circular(pos, head, member)                                                    \
  (::kprim::list_is_last(&(pos)->member, head) ? list_first_entry(head, KPRIM_ENTRY_TYPE(pos), member) \
                                               : list_next_entry(pos, member))
#define list_prev_entry_circular(pos, head, member)                                                    \
  (::kprim::list_is_first(&(pos)->member, head) ? list_last_entry(head, KPRIM_ENTRY_TYPE(pos), member) \
                                                : list_prev_entry(pos, member))
/// list_entry_is_head() - pos is the (fake) entry that wraps the head: the loop ended.
#define list_entry_is_head(pos, head, member) (&(pos)->member == (head))
/// list_prepare_entry() - a start for list_for_each_entry_continue() (pos, or the head's fake entry).
#define list_prepare_entry(pos, head, member) ((pos) ? (pos) : list_entry(head, KPRIM_ENTRY_TYPE(pos), member))

#define list_for_each(pos, head) for (pos = (head)->next; !::kprim::list_is_head(pos, (head)); pos = pos->next)
#define list_for_each_prev(pos, head) for (pos = (head)->prev; !::kprim::list_is_head(pos, (head)); pos = pos->prev)
#define list_for_each_safe(pos, n, head) \
  for (pos = (head)->next, n = pos->next; !::kprim::list_is_head(pos, (head)); pos = n, n = pos->next)
#define list_for_each_prev_safe(pos, n, head) \
  for (pos = (head)->prev, n = pos->prev; !::kprim::list_is_head(pos, (head)); pos = n, n = pos->prev)

#define list_for_each_entry(pos, head, member)                                                              \
  for (pos = list_first_entry(head, KPRIM_ENTRY_TYPE(pos), member); !list_entry_is_head(pos, head, member); \
       pos = list_next_entry(pos, member))
#define list_for_each_entry_reverse(pos, head, member)                                                     \
  for (pos = list_last_entry(head, KPRIM_ENTRY_TYPE(pos), member); !list_entry_is_head(pos, head, member); \
       pos = list_prev_entry(pos, member))
#define list_for_each_entry_continue(pos, head, member) \
  for (pos = list_next_entry(pos, member); !list_entry_is_head(pos, head, member); pos = list_next_entry(pos, member))
#define list_for_each_entry_continue_reverse(pos, head, member) \
  for (pos = list_prev_entry(pos, member); !list_entry_is_head(pos, head, member); pos = list_prev_entry(pos, member))
#define list_for_each_entry_from(pos, head, member) \
  for (; !list_entry_is_head(pos, head, member); pos = list_next_entry(pos, member))
#define list_for_each_entry_from_reverse(pos, head, member) \
  for (; !list_entry_is_head(pos, head, member); pos = list_prev_entry(pos, member))
#define list_for_each_entry_safe(pos, n, head, member)                                                \
  for (pos = list_first_entry(head, KPRIM_ENTRY_TYPE(pos), member), n = list_next_entry(pos, member); \
       !list_entry_is_head(pos, head, member); pos = n, n = list_next_entry(n, member))
#define list_for_each_entry_safe_continue(pos, n, head, member)              \
  for (pos = list_next_entry(pos, member), n = list_next_entry(pos, member); \
       !list_entry_is_head(pos, head, member); pos = n, n = list_next_entry(n, member))
#define list_for_each_entry_safe_from(pos, n, head, member) \
  for (n = list_next_entry(pos, member); !list_entry_is_head(pos, head, member); pos = n, n = list_next_entry(n, member))
#define list_for_each_entry_safe_reverse(pos, n, head, member)                                       \
  for (pos = list_last_entry(head, KPRIM_ENTRY_TYPE(pos), member), n = list_prev_entry(pos, member); \
       !list_entry_is_head(pos, head, member); pos = n, n = list_prev_entry(n, member))
