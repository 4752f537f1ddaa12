// kprim/hlist.hpp: the kernel's hash-bucket list (include/linux/list.h, hlist_*), plus the
// golden-ratio hash_32()/hash_64() of include/linux/hash.h for bucket selection.
//
// hlist_head is one pointer (half a list_head: buckets stay small); hlist_node has next and
// pprev (the address of the previous node's next, or of the head's first), so a node can
// unlink itself in O(1) without knowing its head. Not thread-safe; callers lock.
//
//     for (T& e : kprim::hentries<&T::node>(bucket)) ...
//     for (T& e : kprim::hentries_safe<&T::node>(bucket)) hlist_del(&e.node);
// Debug builds (KPRIM_DEBUG_LIST, see list.hpp) poison deleted nodes.
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/detail/chain_range.hpp>
#include <kprim/list.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ranges>
#include <type_traits>

namespace kprim {

struct hlist_node {
  hlist_node* next;
  hlist_node** pprev;
};
struct hlist_head {
  hlist_node* first;
};

#define HLIST_HEAD_INIT \
  { nullptr }
#define HLIST_HEAD(name) ::kprim::hlist_head name = {nullptr}

inline void INIT_HLIST_HEAD(hlist_head* h) noexcept { h->first = nullptr; }
/// INIT_HLIST_NODE() - an unhashed node (hlist_unhashed() is true).
inline void INIT_HLIST_NODE(hlist_node* h) noexcept {
  h->next = nullptr;
  h->pprev = nullptr;
}

/// hlist_unhashed() - the node is on no list (never added, or hlist_del_init()ed).
[[nodiscard]] inline bool hlist_unhashed(const hlist_node* h) noexcept { return !h->pprev; }
[[nodiscard]] inline bool hlist_unhashed_lockless(const hlist_node* h) noexcept { return !read_once(h->pprev); }
[[nodiscard]] inline bool hlist_empty(const hlist_head* h) noexcept { return !read_once(h->first); }

inline void __hlist_del(hlist_node* n) noexcept {
  hlist_node* next = n->next;
  hlist_node** pprev = n->pprev;
  write_once(*pprev, next);
  if (next) write_once(next->pprev, pprev);
}

/// hlist_del() - unlink n. Debug builds poison it (next = LIST_POISON1, pprev = LIST_POISON2).
inline void hlist_del(hlist_node* n) noexcept {
  __hlist_del(n);
#if KPRIM_DEBUG_LIST
  n->next = detail::poison<hlist_node>(0x100);
  n->pprev = detail::poison<hlist_node*>(0x122);
#endif
}
/// hlist_del_init() - unlink n if hashed, and make it unhashed.
inline void hlist_del_init(hlist_node* n) noexcept {
  if (!hlist_unhashed(n)) {
    __hlist_del(n);
    INIT_HLIST_NODE(n);
  }
}

/// hlist_add_head() - insert n at the front of h. O(1).
inline void hlist_add_head(hlist_node* n, hlist_head* h) noexcept {
  hlist_node* first = h->first;
  write_once(n->next, first);
  if (first) write_once(first->pprev, &n->next);
  write_once(h->first, n);
  write_once(n->pprev, &h->first);
}
/// hlist_add_before() - insert n before next (which is on a list).
inline void hlist_add_before(hlist_node* n, hlist_node* next) noexcept {
  write_once(n->pprev, next->pprev);
  write_once(n->next, next);
  write_once(next->pprev, &n->next);
  write_once(*n->pprev, n);
}
/// hlist_add_behind() - insert n after prev (which is on a list).
inline void hlist_add_behind(hlist_node* n, hlist_node* prev) noexcept {
  write_once(n->next, prev->next);
  write_once(prev->next, n);
  write_once(n->pprev, &prev->next);
  if (n->next) write_once(n->next->pprev, &n->next);
}
/// hlist_add_fake() - make n look hashed (pprev to itself) without being on any list.
inline void hlist_add_fake(hlist_node* n) noexcept { n->pprev = &n->next; }
[[nodiscard]] inline bool hlist_fake(hlist_node* h) noexcept { return h->pprev == &h->next; }

/// hlist_is_singular_node() - n is the only node of h.
[[nodiscard]] inline bool hlist_is_singular_node(hlist_node* n, hlist_head* h) noexcept {
  return !n->next && n->pprev == &h->first;
}

/// hlist_move_list() - move all nodes of old to n (n's own nodes are lost); old is empty after.
inline void hlist_move_list(hlist_head* old, hlist_head* n) noexcept {
  n->first = old->first;
  if (n->first) n->first->pprev = &n->first;
  old->first = nullptr;
}

/// hlist_splice_init() - move all nodes of `from` after `last` in `to`; `from` ends empty.
inline void hlist_splice_init(hlist_head* from, hlist_node* last, hlist_head* to) noexcept {
  if (to->first) to->first->pprev = &last->next;
  last->next = to->first;
  to->first = from->first;
  from->first->pprev = &to->first;
  from->first = nullptr;
}

[[nodiscard]] inline std::size_t hlist_count_nodes(const hlist_head* h) noexcept {
  std::size_t n = 0;
  for (const hlist_node* p = h->first; p; p = p->next) ++n;
  return n;
}

// ---- hashing (include/linux/hash.h) ----------------------------------------------------
inline constexpr std::uint32_t GOLDEN_RATIO_32 = 0x61C88647u;
inline constexpr std::uint64_t GOLDEN_RATIO_64 = 0x61C8864680B583EBull;
/// hash_32()/hash_64() - multiplicative hash to the top `bits` bits (1 <= bits <= 32).
[[nodiscard]] constexpr std::uint32_t hash_32(std::uint32_t val, unsigned bits) noexcept {
  return (val * GOLDEN_RATIO_32) >> (32 - bits);
}
[[nodiscard]] constexpr std::uint32_t hash_64(std::uint64_t val, unsigned bits) noexcept {
  return static_cast<std::uint32_t>((val * GOLDEN_RATIO_64) >> (64 - bits));
}

// ---- C++ ranges ------------------------------------------------------------------------
namespace detail {

template <auto Member, bool Safe, bool Const>
using hlist_range = chain_range<Member, std::conditional_t<Const, const hlist_node, hlist_node>, Safe>;

}  // namespace detail

/// hentries<&T::member>(head) - the T elements of an hlist bucket, front to back.
template <auto Member>
[[nodiscard]] inline auto hentries(hlist_head& head) noexcept {
  static_assert(std::is_same_v<typename detail::member_traits<Member>::type, hlist_node>,
                "hentries<&T::member>: member must be an hlist_node");
  return detail::hlist_range<Member, false, false>(head.first);
}
template <auto Member>
[[nodiscard]] inline auto hentries(const hlist_head& head) noexcept {
  return detail::hlist_range<Member, false, true>(head.first);
}
/// hentries_from<&T::member>(node) - from node (inclusive) to the end of its bucket.
template <auto Member>
[[nodiscard]] inline auto hentries_from(hlist_node* n) noexcept {
  return detail::hlist_range<Member, false, false>(n);
}
/// hentries_safe<&T::member>(head) - the body may delete the current element.
template <auto Member>
[[nodiscard]] inline auto hentries_safe(hlist_head& head) noexcept {
  return detail::hlist_range<Member, true, false>(head.first);
}

}  // namespace kprim

// ---- kernel macro forms ---------------------------------------------------------------
#define hlist_entry(ptr, type, member) container_of(ptr, type, member)
#define hlist_entry_safe(ptr, type, member) \
  ([](auto* p_) -> type* { return p_ ? hlist_entry(p_, type, member) : nullptr; }(ptr))
#define hlist_for_each(pos, head) for (pos = (head)->first; pos; pos = pos->next)
#define hlist_for_each_safe(pos, n, head) \
  for (pos = (head)->first; pos && ((n = pos->next), true); pos = n)
#define hlist_for_each_entry(pos, head, member)                                   \
  for (pos = hlist_entry_safe((head)->first, KPRIM_ENTRY_TYPE(pos), member); pos; \
       pos = hlist_entry_safe((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member))
#define hlist_for_each_entry_continue(pos, member)                                     \
  for (pos = hlist_entry_safe((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member); pos; \
       pos = hlist_entry_safe((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member))
#define hlist_for_each_entry_from(pos, member) \
  for (; pos; pos = hlist_entry_safe((pos)->member.next, KPRIM_ENTRY_TYPE(pos), member))
#define hlist_for_each_entry_safe(pos, n, head, member)                      \
  for (pos = hlist_entry_safe((head)->first, KPRIM_ENTRY_TYPE(pos), member); \
       pos && ((n = (pos)->member.next), true);                              \
       pos = hlist_entry_safe(n, KPRIM_ENTRY_TYPE(pos), member))
