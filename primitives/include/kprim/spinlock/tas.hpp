// kprim/spinlock/tas.hpp: plain test-and-set spinlock, the simplest baseline: every waiter
// hammers the line with atomic exchanges. Use kprim::qspinlock for real work.
#pragma once

#include <kprim/spinlock/spin_wait.hpp>
#include <kprim/lockdep.hpp>

#include <atomic>
#include <cstdint>

namespace kprim {

/// basic_tas_spinlock<P> - one byte: 0 free, 1 held. Unfair (whoever's exchange lands first).
template <spin_policy P>
class basic_tas_spinlock : public detail::annotated_spinlock<basic_tas_spinlock<P>> {
  static_assert(P != spin_policy::virt, "the virt fallback belongs to qspinlock");

 public:
  basic_tas_spinlock() = default;

  // lock()/try_lock()/unlock() with the ThreadSanitizer annotations, and the checkers'
  // destructor, come from detail::annotated_spinlock (kprim/lockdep.hpp); raw_*() below are
  // the bare algorithm.
  basic_tas_spinlock(const basic_tas_spinlock&) = delete;
  basic_tas_spinlock& operator=(const basic_tas_spinlock&) = delete;

  /// lock() - exchange until it returns 0. Ordering: acquire. Context: spins, never sleeps.
  void raw_lock() noexcept {
    if (likely(!held_.exchange(1, std::memory_order_acquire))) return;
    spin_wait<P> w;
    do w.relax();
    while (held_.exchange(1, std::memory_order_acquire));
  }

  /// try_lock() - one exchange. Ordering: acquire on success. Context: never waits.
  [[nodiscard]] bool raw_try_lock() noexcept { return !held_.exchange(1, std::memory_order_acquire); }

  /// unlock() - release store of 0. Requires: held by the caller.
  void raw_unlock() noexcept { held_.store(0, std::memory_order_release); }

  /// is_locked() - relaxed snapshot.
  [[nodiscard]] bool is_locked() const noexcept { return held_.load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<std::uint8_t> held_{0};
};

using tas_spinlock = basic_tas_spinlock<spin_policy::yield>;
static_assert(sizeof(tas_spinlock) == 1);

}  // namespace kprim
