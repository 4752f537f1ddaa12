// kprim/spinlock/ttas.hpp: test-and-test-and-set spinlock with bounded exponential backoff, a
// baseline: waiters read a shared line and only exchange when it looks free. Unfair; use
// kprim::qspinlock unless you measured that this wins for your case.
#pragma once

#include <kprim/spinlock/spin_wait.hpp>
#include <kprim/lockdep.hpp>

#include <atomic>
#include <cstdint>

namespace kprim {

/// Backoff after a failed exchange doubles from 1 up to this many cpu_relax() rounds.
inline constexpr unsigned ttas_backoff_max = 64;

namespace detail {
/// ttas_wait() - the contended path: poll until free, exchange, back off on failure.
template <spin_policy P>
[[gnu::noinline, gnu::cold]] void ttas_wait(std::atomic<std::uint8_t>& held) noexcept {
  spin_wait<P> w;
  unsigned backoff = 1;
  for (;;) {
    while (held.load(std::memory_order_relaxed)) w.relax();
    if (!held.exchange(1, std::memory_order_acquire)) return;
    for (unsigned i = 0; i < backoff; ++i) cpu_relax();
    if (backoff < ttas_backoff_max) backoff <<= 1;
    w.relax();
  }
}
}  // namespace detail

/// basic_ttas_spinlock<P> - one byte: 0 free, 1 held. Unfair; backoff reduces line traffic.
template <spin_policy P>
class basic_ttas_spinlock : public detail::annotated_spinlock<basic_ttas_spinlock<P>> {
  static_assert(P != spin_policy::virt, "the virt fallback belongs to qspinlock");

 public:
  basic_ttas_spinlock() = default;

  // lock()/try_lock()/unlock() with the ThreadSanitizer annotations, and the checkers'
  // destructor, come from detail::annotated_spinlock (kprim/lockdep.hpp); raw_*() below are
  // the bare algorithm.
  basic_ttas_spinlock(const basic_ttas_spinlock&) = delete;
  basic_ttas_spinlock& operator=(const basic_ttas_spinlock&) = delete;

  /// lock() - exchange; on failure wait with backoff. Ordering: acquire. Context: spins.
  void raw_lock() noexcept {
    if (likely(!held_.exchange(1, std::memory_order_acquire))) return;
    detail::ttas_wait<P>(held_);
  }

  /// try_lock() - test, then one exchange. Ordering: acquire on success. Never waits.
  [[nodiscard]] bool raw_try_lock() noexcept {
    return !held_.load(std::memory_order_relaxed) && !held_.exchange(1, std::memory_order_acquire);
  }

  /// unlock() - release store of 0. Requires: held by the caller.
  void raw_unlock() noexcept { held_.store(0, std::memory_order_release); }

  /// is_locked() - relaxed snapshot.
  [[nodiscard]] bool is_locked() const noexcept { return held_.load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<std::uint8_t> held_{0};
};

using ttas_spinlock = basic_ttas_spinlock<spin_policy::yield>;
static_assert(sizeof(ttas_spinlock) == 1);

}  // namespace kprim
