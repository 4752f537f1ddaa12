// kprim/mutex.hpp: the kernel's sleeping mutex (kernel/locking/mutex.c): one owner word,
// optimistic spinning through an OSQ while the owner runs, FIFO sleepers on futexes, and
// hand-off so no sleeper starves. For very short critical sections that never block, a
// spinlock (kprim/spinlock.hpp) is cheaper; for readers in parallel use rw_semaphore.
//
// "The owner is running", approximated in user space. The kernel spins only while
// owner->on_cpu and !need_resched(). Here a spinner stops when the owner is asleep in a
// kprim lock (task_struct::on_cpu, set around every futex sleep) or when its spin budget
// (mutex.cpp's spin_budget pauses; optimistic_spin_limit rounds queued in the OSQ) runs out: user space cannot see that the
// owner was preempted or that its own time slice is ending, so time stands in for both. And
// a thread only starts spinning while fewer than (CPUs - 1) threads spin in any OSQ, so that
// owners keep a CPU when threads outnumber cores (otherwise spinners would preempt them).
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>
#include <kprim/detail/scoped_guard.hpp>
#include <kprim/detail/wait_list.hpp>
#include <kprim/lockdep.hpp>
#include <kprim/osq_lock.hpp>
#include <kprim/spinlock/qspinlock.hpp>
#include <kprim/task.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace kprim {

/// mutex - the owner word, one std::atomic<uintptr_t> (the kernel's atomic_long_t owner):
///
///   bits 63-3  owner    the owning task_struct* (0: unlocked); task_structs are cache-line
///                       aligned, so the low bits of the pointer are free for the flags
///   bit  0     WAITERS  someone may sleep on the wait list: unlock takes the slow path
///   bit  1     HANDOFF  the first waiter, starved, asks the next unlock to hand it the lock
///   bit  2     PICKUP   handed off: only the task named in `owner` may take the lock (it will)
///
/// Transitions (each an RMW of the whole word; mutex.cpp says which pairs with which):
///   0,-      -> T,-         lock fast path / a spinner's or waiter's trylock (acquire)
///   T,f      -> 0,f         unlock, f without HANDOFF (release); WAITERS in f: wake a waiter
///   T,H|f    -> W,P|f       unlock hands off to first waiter W (release); W: W,P -> W,- (acquire)
///   *,f      -> *,f|W / *,f&~W   WAITERS set by a waiter about to sleep, cleared by the unlock
///                            that wakes the first waiter or by the last waiter leaving (relaxed)
/// Invariants: HANDOFF and PICKUP are only set together with an owner, and PICKUP without
/// HANDOFF; all three flags are clear whenever the wait list is empty and nobody is adding
/// itself. WAITERS may be clear while waiters sleep only while the first of them has been
/// woken and has not yet tried the lock: it sets WAITERS again before it sleeps again, and
/// when it takes the lock with others still queued. So an unlock that sees no flags while
/// someone sleeps has a woken task coming that will look at the lock after it.
/// Fairness: unfair while waiters are awake (spinners may take a free lock first); a woken
/// first waiter that loses after waiting 1 ms (mutex.cpp: handoff_after) sets HANDOFF, after
/// which the next unlock gives it the lock: the starvation bound.
/// Not recursive; must be unlocked by the thread that locked it.
/// Test: primitives/tests/mutex_test.cpp. Benchmark: bench_locks (kprim_mutex, its mutex_*
/// counters: slow paths, spins and their success, sleeps, wake-ups, hand-offs per second).
class mutex {
 public:
  static constexpr std::uintptr_t flag_waiters = 0x01;
  static constexpr std::uintptr_t flag_handoff = 0x02;
  static constexpr std::uintptr_t flag_pickup = 0x04;
  static constexpr std::uintptr_t flags_mask = 0x07;

  mutex() = default;
#if KPRIM_LOCK_CHECKERS
  ~mutex() { lock_checkers_destroy(this); }  // lockdep forgets the address, TSan the mutex
#endif
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  /// lock() - mutex_lock(). Ordering: acquire. Context: may spin (bounded), then may sleep
  /// on a futex. Cost: one cmpxchg uncontended; the slow path is out of line.
  void lock() noexcept {
    might_sleep();         // kprim/context.hpp: nothing unless KPRIM_DEBUG_LOCKING
    tsan::pre_lock(this);  // kprim/lockdep.hpp: nothing unless built with TSan
    std::uintptr_t zero = 0;
    if (unlikely(!owner_.compare_exchange_strong(zero, reinterpret_cast<std::uintptr_t>(current()),
                                                 std::memory_order_acquire, std::memory_order_relaxed)))
      lock_slowpath();
    tsan::post_lock(this);
  }

  /// try_lock() - mutex_trylock(): take the lock if nobody owns it (also when only flags
  /// are set). Ordering: acquire on success, relaxed on failure. Context: never sleeps.
  [[nodiscard]] bool try_lock() noexcept {
    tsan::pre_lock(this, tsan::trylock);
    std::uintptr_t zero = 0;
    const bool ok = likely(owner_.compare_exchange_strong(zero, reinterpret_cast<std::uintptr_t>(current()),
                                                          std::memory_order_acquire, std::memory_order_relaxed)) ||
                    ((zero & ~flags_mask) == 0 && trylock_slowpath());
    tsan::post_lock(this, tsan::try_result(ok));
    return ok;
  }

  /// unlock() - mutex_unlock(). Ordering: release. Context: never sleeps (may wake one
  /// waiter: one futex system call). Requires: the caller owns the lock.
  void unlock() noexcept {
    tsan::pre_unlock(this);
    std::uintptr_t self = reinterpret_cast<std::uintptr_t>(current());
    if (unlikely(!owner_.compare_exchange_strong(self, 0, std::memory_order_release, std::memory_order_relaxed)))
      unlock_slowpath();
    tsan::post_unlock(this);
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
                  alignof(task_struct) > mutex::flags_mask,
              "flags live below the task pointer");
static_assert((mutex::flag_waiters | mutex::flag_handoff | mutex::flag_pickup) == mutex::flags_mask &&
                  (mutex::flag_waiters & mutex::flag_handoff) == 0 && (mutex::flag_waiters & mutex::flag_pickup) == 0 &&
                  (mutex::flag_handoff & mutex::flag_pickup) == 0,
              "three distinct flag bits make up flags_mask");
static_assert(sizeof(std::uintptr_t) == sizeof(task_struct*) && std::atomic<std::uintptr_t>::is_always_lock_free,
              "the owner word holds a pointer and is one lock-free atomic");

/// mutex_stat - slow-path event counts of every kprim::mutex in the process, summed over its
/// threads (a small CONFIG_LOCK_STAT, read by bench_locks' kprim_mutex counters). Each thread
/// counts in its own block with relaxed stores, so the fast paths pay nothing and the slow
/// paths one thread-local add per event; a snapshot taken while threads run is approximate.
struct mutex_stat {
  std::uint64_t slowpath = 0;         ///< lock() calls that missed the fast path
  std::uint64_t spins = 0;            ///< optimistic spins started (OSQ spinner or first waiter)
  std::uint64_t spin_acquired = 0;    ///< spins that ended holding the lock
  std::uint64_t sleeps = 0;           ///< schedule() calls: futex waits
  std::uint64_t unlock_slowpath = 0;  ///< unlock() calls that found a flag set
  std::uint64_t wakeups = 0;          ///< wake_up_process() calls made by unlock
  std::uint64_t wakeups_skipped = 0;  ///< unlocks with waiters that left the wake to a spinner
  std::uint64_t handoffs = 0;         ///< unlocks that handed the lock to the first waiter (PICKUP)
};
/// mutex_stat_read() - the counts so far (live threads' and exited threads' together).
[[nodiscard]] mutex_stat mutex_stat_read() noexcept;

/// The kernel's verbs. mutex_lock(): see mutex::lock(); mutex_trylock(): 1 on success.
/// With KPRIM_DEBUG_LOCKING they run lockdep (kprim/lockdep.hpp): mutex_init()'s call site is
/// the lock's class, mutex_lock() checks before it may sleep, mutex_unlock() checks the owner.
#if KPRIM_DEBUG_LOCKING
inline void mutex_init(mutex* m, const std::source_location& at = std::source_location::current()) noexcept {
  std::destroy_at(m);
  std::construct_at(m);
  debug::init_at_site(m, "mutex", at);
}
inline void mutex_lock(mutex* m, const std::source_location& at = std::source_location::current()) noexcept {
  const unsigned cls = debug::lock_acquire(m, "mutex", 0, 0, at);
  m->lock();
  debug::lock_acquired(m, cls, "mutex", 0, at);
}
/// mutex_lock_nested() - mutex_lock() of a second mutex of the same class, as subclass 1..7.
inline void mutex_lock_nested(mutex* m, unsigned subclass,
                              const std::source_location& at = std::source_location::current()) noexcept {
  const unsigned cls = debug::lock_acquire(m, "mutex", 0, subclass, at);
  m->lock();
  debug::lock_acquired(m, cls, "mutex", 0, at);
}
[[nodiscard]] inline bool mutex_trylock(mutex* m, const std::source_location& at = std::source_location::current()) noexcept {
  if (!m->try_lock()) return false;
  debug::lock_acquired(m, debug::lock_acquire(m, "mutex", debug::acq_try, 0, at), "mutex", debug::acq_try, at);
  return true;
}
inline void mutex_unlock(mutex* m, const std::source_location& at = std::source_location::current()) noexcept {
  debug::lock_released(m, at);
  m->unlock();
}
#define DEFINE_MUTEX(x) \
  ::kprim::mutex x;     \
  [[maybe_unused]] static const bool x##_lockdep_class_ = (::kprim::debug::define_class(&x, #x, "mutex", __FILE__, __LINE__), true)
#else
inline void mutex_init(mutex* m) noexcept {
  std::destroy_at(m);
  std::construct_at(m);
}
inline void mutex_lock(mutex* m) noexcept { m->lock(); }
inline void mutex_lock_nested(mutex* m, unsigned) noexcept { m->lock(); }
[[nodiscard]] inline bool mutex_trylock(mutex* m) noexcept { return m->try_lock(); }
inline void mutex_unlock(mutex* m) noexcept { m->unlock(); }
#define DEFINE_MUTEX(x) ::kprim::mutex x
#endif
[[nodiscard]] inline bool mutex_is_locked(const mutex* m) noexcept { return m->is_locked(); }

/// mutex_guard - RAII over mutex_lock()/mutex_unlock() (std::lock_guard works as well).
using mutex_guard = detail::scoped_guard<mutex>;

}  // namespace kprim
