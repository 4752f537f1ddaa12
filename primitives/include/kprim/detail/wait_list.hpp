// kprim/detail/wait_list.hpp: the FIFO wait list of the sleeping locks: a circular doubly
// linked list with a sentinel (the kernel's list_head), links atomic so that the racy
// "am I first?" peek (__mutex_waiter_is_first()) is a relaxed load. Modify only under the
// lock's wait_lock. Internal; general lists are kprim/list.hpp.
#pragma once

#include <atomic>

namespace kprim::detail {

struct wait_node {
  std::atomic<wait_node*> next{this};
  std::atomic<wait_node*> prev{this};

  wait_node() = default;
  wait_node(const wait_node&) = delete;
  wait_node& operator=(const wait_node&) = delete;

  /// Sentinel only: empty? Requires wait_lock.
  [[nodiscard]] bool empty() const noexcept { return next.load(std::memory_order_relaxed) == this; }
  /// Sentinel only: the first waiter, or the sentinel if empty. Racy peeks are allowed.
  [[nodiscard]] wait_node* first() const noexcept { return next.load(std::memory_order_relaxed); }

  /// Sentinel only: append n (FIFO). Requires wait_lock.
  void add_tail(wait_node* n) noexcept {
    wait_node* last = prev.load(std::memory_order_relaxed);
    n->next.store(this, std::memory_order_relaxed);
    n->prev.store(last, std::memory_order_relaxed);
    last->next.store(n, std::memory_order_relaxed);
    prev.store(n, std::memory_order_relaxed);
  }

  /// Unlink this node. Requires wait_lock.
  void del() noexcept {
    wait_node* n = next.load(std::memory_order_relaxed);
    wait_node* p = prev.load(std::memory_order_relaxed);
    n->prev.store(p, std::memory_order_relaxed);
    p->next.store(n, std::memory_order_relaxed);
    next.store(this, std::memory_order_relaxed);
    prev.store(this, std::memory_order_relaxed);
  }
};

}  // namespace kprim::detail
