// kprim/semaphore.hpp - the kernel's counting semaphore (struct semaphore, down()/up()), the
// kernel's answer to sem_t. Use it for a counted resource whose holders may sleep; for mutual
// exclusion prefer kprim::mutex (owner tracking, optimistic spinning), for "wait until done"
// kprim/completion.hpp. Sleep/signal rules (TASK_* states, jiffies, what interrupts a sleep):
// kprim/wait.hpp.
//
// Test: primitives/tests/semaphore_test.cpp. Benchmark: bench/bench_sleepwake.cpp.
//
// State. `state` (atomic, 32 bits) = count << 1 | SEM_WAITERS: count is the units in the
// word, SEM_WAITERS says wait_list is not empty. `lock` (a spinlock_t) guards wait_list, a FIFO
// of semaphore_waiter on the sleepers' stacks, and is the only place SEM_WAITERS is set or
// cleared. Invariant: no unit is taken from count while SEM_WAITERS is set; every unit in count
// then belongs to an up() that added it and has not yet passed its locked section, where it
// turns one such unit into a hand-off to the first sleeper. So count > 0 with SEM_WAITERS set
// is a transient (units on their way to sleepers), and nobody steals past a sleeper.
//   Transitions as (count, W); the file with the locked ones is primitives/src/semaphore.cpp:
//   take    (c>=1, 0) -> (c-1, 0)  CAS, acquire: down()/down_*() fast path, down_trylock(),
//                                  the optimistic phase, the slow path's re-check under lock
//   up      (c, W)    -> (c+1, W)  fetch_add, release; lock-free and done when W was clear
//   queue   (0, 0)    -> (0, 1)    CAS under lock (fails on a racing up's unit: take that);
//           (c, 1)    unchanged    queue behind the others, the in-flight units go first
//   hand    (c>=1, 1) -> (c-1, 1)  fetch_sub under lock by an up() that saw W: dequeue the
//                                  first sleeper, set its futex word `up` 0 -> 1, and FUTEX_WAKE
//                                  it after unlocking; (0, 1): that unit was converted by an
//                                  earlier locker or taken while W was clear; nothing to do
//   empty   (c, 1)    -> (c, 0)    fetch_and under lock when the last sleeper leaves (handed a
//                                  unit, timed out or interrupted): in-flight units become free
//   Fast paths (no sleeper, no lock; the kernel's semaphore has none, sem_t has them): inline
//   here, a load and a CAS for down()/down_trylock(), one fetch_add for up() (libstdc++'s
//   counting_semaphore releases the same way; glibc's sem_post loops on a CAS).
//   Optimistic phase (the kernel mutex's optimistic spinning; kernel/locking/semaphore.c has
//   none): down() finding no unit first polls for one without queueing - kSemSpin rounds of
//   cpu_relax(), then up to kSemYield sched_yield()s (under oversubscription the unit's holder
//   may be runnable but not running) - through the same `take`, so never past a sleeper. Why:
//   every down() that sleeps turns a later up() into a hand-off to a thread that must be woken
//   and scheduled (~10 us here) while that unit stays reserved for it; sem_t avoids this by
//   letting the running poster retake the unit, which FIFO hand-off forbids, so instead fewer
//   downs ever sleep. The phase is bounded (microseconds plus the yields) and sees no signal or
//   timeout: those act once the waiter sleeps. nr_sleeps/nr_handoffs count what remains
//   (bench_sleepwake's sleeps_per_op, handoffs_per_op).
//   Sleepers are served strictly in arrival order (queueing order under the lock). A woken
//   sleeper returns on seeing `up` != 0 without taking the lock (the waker no longer touches
//   the waiter: a FUTEX_WAKE on a dead word is harmless, kprim/wait.hpp). A sleeper that times
//   out or is interrupted decides under the lock: `up` already set means it keeps the unit it
//   was handed and returns 0.
#pragma once

#include <kprim/context.hpp>
#include <kprim/list.hpp>
#include <kprim/spinlock.hpp>
#include <kprim/wait.hpp>

#include <atomic>
#include <climits>
#include <cstdint>

namespace kprim {

inline constexpr std::uint32_t SEM_WAITERS = 1;

struct semaphore {
  explicit semaphore(unsigned n = 0) noexcept : state(n << 1) { INIT_LIST_HEAD(&wait_list); }
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  /// count() - the units in the word now (snapshot, relaxed); while sleepers are queued it may
  /// include units an up() is about to hand to them (see State above).
  [[nodiscard]] unsigned count() const noexcept { return state.load(std::memory_order_relaxed) >> 1; }
  std::atomic<std::uint32_t> state;
  spinlock_t lock;
  list_head wait_list;
  /// Slow-path statistics (a small CONFIG_LOCK_STAT), written only under `lock`: downs that
  /// queued to sleep, and up()s that handed their unit to a sleeper. Relaxed snapshots.
  std::atomic<std::uint64_t> nr_sleeps{0};
  std::atomic<std::uint64_t> nr_handoffs{0};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "the fast paths are one CAS");
/// The optimistic phase of a down() that finds no unit (see above): cpu_relax() rounds, then
/// sched_yield()s, before it queues to sleep.
inline constexpr unsigned kSemSpin = 256;
inline constexpr unsigned kSemYield = 8;
/// The most units a semaphore holds (count has 31 bits; the kernel's unsigned int has 32).
inline constexpr unsigned SEM_MAX_COUNT = UINT_MAX >> 1;

/// SEM_UNIT - one unit in `state` (count lives above SEM_WAITERS).
inline constexpr std::uint32_t SEM_UNIT = SEM_WAITERS << 1;
static_assert((SEM_UNIT & SEM_WAITERS) == 0 && SEM_UNIT == 2, "count << 1 | SEM_WAITERS");
static_assert(static_cast<std::uint64_t>(SEM_MAX_COUNT) * SEM_UNIT + SEM_WAITERS <= UINT32_MAX,
              "count, with SEM_WAITERS, fits the 32-bit state");

/// DEFINE_SEMAPHORE(name, n) - a semaphore with n units (the kernel's 6.4+ two-argument form).
#define DEFINE_SEMAPHORE(name, n) \
  ::kprim::semaphore name { n }

/// sema_init() - reset to `val` units (val <= SEM_MAX_COUNT). Requires: no sleepers, nobody
/// uses it concurrently.
void sema_init(semaphore* sem, unsigned val) noexcept;

namespace detail {
/// sem_take() - `take`: one unit if count > 0 and SEM_WAITERS is clear; v is the caller's view
/// of state (updated on failure). Acquire on success (pairs with up()'s release), else relaxed.
inline bool sem_take(semaphore* sem, std::uint32_t& v) noexcept {
  while (v >= SEM_UNIT && !(v & SEM_WAITERS))
    if (sem->state.compare_exchange_weak(v, v - SEM_UNIT, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}
/// The out-of-line halves (primitives/src/semaphore.cpp): the optimistic phase and the queue
/// of a down() that found no unit (0, -EINTR or -ETIME), and the hand-off of an up() that saw
/// SEM_WAITERS (its unit is already in count).
[[gnu::cold, gnu::noinline]] int down_slowpath(semaphore* sem, unsigned state, long timeout) noexcept;
[[gnu::cold, gnu::noinline]] void up_slowpath(semaphore* sem) noexcept;
inline int down_state(semaphore* sem, unsigned state, long timeout) noexcept {
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  return sem_take(sem, v) ? 0 : down_slowpath(sem, state, timeout);
}
}  // namespace detail

/// down() - take one unit, sleeping uninterruptibly until one is handed over.
/// Context: may sleep (might_sleep()); a load and a CAS when a unit is free. Ordering: acquire;
/// a unit handed over by up() carries up()'s release. Fairness: FIFO among sleepers; downs
/// still in their optimistic phase (not queued yet) race for units that appear while nobody
/// sleeps, never for units while someone sleeps.
inline void down(semaphore* sem) noexcept {
  might_sleep();
  (void)detail::down_state(sem, TASK_UNINTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT);
}
/// down_interruptible() - down() that a caught signal ends: 0 (unit taken) or -EINTR (no unit
/// taken, the waiter removed; the semaphore is as if it had never waited).
[[nodiscard]] inline int down_interruptible(semaphore* sem) noexcept {
  might_sleep();
  return detail::down_state(sem, TASK_INTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT);
}
/// down_killable() - down() ended only by a fatal signal (kprim/wait.hpp): 0 or -EINTR.
[[nodiscard]] inline int down_killable(semaphore* sem) noexcept {
  might_sleep();
  return detail::down_state(sem, TASK_KILLABLE, MAX_SCHEDULE_TIMEOUT);
}
/// down_trylock() - take a unit without sleeping. Returns 0 on success and 1 on failure (the
/// kernel's inverted convention, unlike spin_trylock). Context: never sleeps, lock-free (CAS);
/// fails when count is 0, and whenever sleepers are queued (their units are not for taking).
[[nodiscard]] inline int down_trylock(semaphore* sem) noexcept {
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  return detail::sem_take(sem, v) ? 0 : 1;
}
/// down_timeout() - down() for at most `timeout` jiffies (ms): 0, or -ETIME with no unit taken.
[[nodiscard]] inline int down_timeout(semaphore* sem, long timeout) noexcept {
  might_sleep();
  return detail::down_state(sem, TASK_UNINTERRUPTIBLE, timeout);
}
/// up() - release one unit: one fetch_add into count; if SEM_WAITERS was set, then under the
/// spinlock the unit goes to the first sleeper (woken with one FUTEX_WAKE after the spinlock is
/// dropped). Context: never sleeps; may be called by any thread (no owner). Ordering: release.
/// Requires: count < SEM_MAX_COUNT.
inline void up(semaphore* sem) noexcept {
  if (sem->state.fetch_add(SEM_UNIT, std::memory_order_release) & SEM_WAITERS) detail::up_slowpath(sem);
}

/// semaphore_guard - RAII: down() in the constructor, up() in the destructor.
class semaphore_guard {
 public:
  explicit semaphore_guard(semaphore& s) noexcept : s_(s) { down(&s_); }
  ~semaphore_guard() { up(&s_); }
  semaphore_guard(const semaphore_guard&) = delete;
  semaphore_guard& operator=(const semaphore_guard&) = delete;

 private:
  semaphore& s_;
};

}  // namespace kprim
