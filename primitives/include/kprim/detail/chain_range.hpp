// kprim/detail/chain_range.hpp: a forward range over a nullptr-terminated chain of nodes linked
// through `next` (hlist buckets, llist chains), yielding the entries that embed the nodes.
// Not for list_head (circular, with a head sentinel): see the ranges in kprim/list.hpp.
#pragma once

#include <kprim/compiler.hpp>

#include <cstddef>
#include <iterator>
#include <ranges>
#include <type_traits>

namespace kprim::detail {

/// chain_iterator<Member, Node, Safe> - Node is hlist_node or llist_node, const-qualified for
/// read-only walks. Safe: the next link is read before the current entry is visited, so the
/// loop body may unlink, free or reuse it. Not for concurrent modification (use RCU forms).
template <auto Member, class Node, bool Safe>
class chain_iterator {
  using owner = typename member_traits<Member>::owner;

 public:
  using value_type = owner;
  using reference = std::conditional_t<std::is_const_v<Node>, const owner&, owner&>;
  using pointer = std::conditional_t<std::is_const_v<Node>, const owner*, owner*>;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::forward_iterator_tag;
  using iterator_concept = std::forward_iterator_tag;

  chain_iterator() = default;
  explicit chain_iterator(Node* pos) noexcept : pos_(pos), n_(Safe && pos ? pos->next : nullptr) {}
  reference operator*() const noexcept { return *container_of<Member>(pos_); }
  pointer operator->() const noexcept { return container_of<Member>(pos_); }
  chain_iterator& operator++() noexcept {
    if constexpr (Safe) {
      pos_ = n_;
      n_ = pos_ ? pos_->next : nullptr;
    } else {
      pos_ = pos_->next;
    }
    return *this;
  }
  chain_iterator operator++(int) noexcept {
    chain_iterator t = *this;
    ++*this;
    return t;
  }
  friend bool operator==(const chain_iterator& a, const chain_iterator& b) noexcept { return a.pos_ == b.pos_; }

 private:
  Node* pos_ = nullptr;
  Node* n_ = nullptr;
};

/// chain_range<Member, Node, Safe> - the entries from `first` to the end of the chain.
template <auto Member, class Node, bool Safe>
class chain_range : public std::ranges::view_interface<chain_range<Member, Node, Safe>> {
 public:
  using iterator = chain_iterator<Member, Node, Safe>;
  chain_range() = default;
  explicit chain_range(Node* first) noexcept : first_(first) {}
  iterator begin() const noexcept { return iterator(first_); }
  iterator end() const noexcept { return iterator(); }

 private:
  Node* first_ = nullptr;
};

}  // namespace kprim::detail
