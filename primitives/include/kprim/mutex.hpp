// kprim/mutex.hpp: the kernel's sleeping mutex (kernel/locking/mutex.c): one owner word,
// optimistic spinning through an OSQ while the owner runs, FIFO sleepers on futexes, and
// hand-off so no sleeper starves. For very short critical sections that never block, a
// spinlock (kprim/spinlock.hpp) is cheaper; for readers in parallel use rw_semaphore.
//
// "The owner is running", approximated in user space. The kernel spins only while
// owner->on_cpu and !need_resched(). Here a spinner stops when the owner is asleep in a
// kprim lock (task_struct::on_cpu, set around every futex sleep) or when its spin budget
// (optimistic_spin_limit rounds, kprim/osq_lock.hpp) runs out: user space cannot see that the
// owner was preempted or that its own time slice is ending, so time stands in for both. And
// a thread only starts spinning while fewer than (CPUs - 1) threads spin in any OSQ, so that
// owners keep a CPU when threads outnumber cores (otherwise spinners would preempt them).
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>
#include <kprim/detail/scoped_guard.hpp>
#include <kprim/detail/wait_list.hpp>
#include <kprim/osq_lock.hpp>
#include <kprim/spinlock/qspinlock.hpp>
#include <kprim/task.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace kprim {

/// mutex - owner word layout:
///   bits 63-3  the owning task_struct* (0: unlocked); task_structs are 64-byte aligned
///   bit  0     WAITERS  the wait list is not empty: unlock must wake the first waiter
///   bit  1     HANDOFF  the first waiter asks unlock to hand the lock to it directly
///   bit  2     PICKUP   hand-off done: only the named task may take the lock (it will)
/// Invariants: HANDOFF and PICKUP are only set together with an owner; all three flags
/// are clear whenever the wait list is empty and nobody is adding itself.
/// Fairness: unfair while waiters are awake (spinners may take a free lock first); a waiter
/// that woke and still lost sets HANDOFF, after which the next unlock gives it the lock.
/// Not recursive; must be unlocked by the thread that locked it.
class mutex {
 public:
  static constexpr std::uintptr_t flag_waiters = 0x01;
  static constexpr std::uintptr_t flag_handoff = 0x02;
  static constexpr std::uintptr_t flag_pickup = 0x04;
  static constexpr std::uintptr_t flags_mask = 0x07;

  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  /// lock() - mutex_lock(). Ordering: acquire. Context: may spin (bounded), then may sleep
  /// on a futex. Cost: one cmpxchg uncontended; the slow path is out of line.
  void lock() noexcept {
    might_sleep();  // kprim/context.hpp: nothing unless KPRIM_DEBUG_LOCKING
    std::uintptr_t zero = 0;
    if (likely(owner_.compare_exchange_strong(zero, reinterpret_cast<std::uintptr_t>(current()),
                                              std::memory_order_acquire, std::memory_order_relaxed)))
      return;
    lock_slowpath();
  }

  /// try_lock() - mutex_trylock(): take the lock if nobody owns it (also when only flags
  /// are set). Ordering: acquire on success, relaxed on failure. Context: never sleeps.
  [[nodiscard]] bool try_lock() noexcept {
    std::uintptr_t zero = 0;
    if (likely(owner_.compare_exchange_strong(zero, reinterpret_cast<std::uintptr_t>(current()),
                                              std::memory_order_acquire, std::memory_order_relaxed)))
      return true;
    return (zero & ~flags_mask) == 0 && trylock_slowpath();
  }

  /// unlock() - mutex_unlock(). Ordering: release. Context: never sleeps (may wake one
  /// waiter: one futex system call). Requires: the caller owns the lock.
  void unlock() noexcept {
    std::uintptr_t self = reinterpret_cast<std::uintptr_t>(current());
    if (likely(owner_.compare_exchange_strong(self, 0, std::memory_order_release, std::memory_order_relaxed)))
      return;
    unlock_slowpath();
  }

  /// is_locked() - mutex_is_locked(): relaxed snapshot of "has an owner".
  [[nodiscard]] bool is_locked() const noexcept { return (owner_.load(std::memory_order_relaxed) & ~flags_mask) != 0; }

  /// owner_word() - relaxed snapshot of the whole owner word, for tests and debugging.
  [[nodiscard]] std::uintptr_t owner_word() const noexcept { return owner_.load(std::memory_order_relaxed); }

 private:
  friend struct mutex_slowpath;
  [[gnu::cold, gnu::noinline]] void lock_slowpath() noexcept;
  [[gnu::cold, gnu::noinline]] bool trylock_slowpath() noexcept;
  [[gnu::cold, gnu::noinline]] void unlock_slowpath() noexcept;

  std::atomic<std::uintptr_t> owner_{0};
  qspinlock wait_lock_;  // raw_spinlock_t: protects wait_list_
  optimistic_spin_queue osq_;
  detail::wait_node wait_list_;
};
static_assert(sizeof(task_struct) % (mutex::flags_mask + 1) == 0 &&
              alignof(task_struct) > mutex::flags_mask, "flags live below the task pointer");

/// The kernel's verbs. mutex_lock(): see mutex::lock(); mutex_trylock(): 1 on success.
inline void mutex_init(mutex* m) noexcept { std::destroy_at(m); std::construct_at(m); }
inline void mutex_lock(mutex* m) noexcept { m->lock(); }
[[nodiscard]] inline bool mutex_trylock(mutex* m) noexcept { return m->try_lock(); }
inline void mutex_unlock(mutex* m) noexcept { m->unlock(); }
[[nodiscard]] inline bool mutex_is_locked(const mutex* m) noexcept { return m->is_locked(); }

/// mutex_guard - RAII over mutex_lock()/mutex_unlock() (std::lock_guard works as well).
using mutex_guard = detail::scoped_guard<mutex>;

}  // namespace kprim
