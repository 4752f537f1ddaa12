// kprim/semaphore.hpp - the kernel's counting semaphore (struct semaphore, down()/up()), the
// kernel's answer to sem_t. Use it for a counted resource whose holders may sleep; for mutual
// exclusion prefer kprim::mutex (owner tracking, optimistic spinning), for "wait until done"
// kprim/completion.hpp. Sleep/signal rules (TASK_* states, jiffies, what interrupts a sleep):
// kprim/wait.hpp.
//
// Test: primitives/tests/semaphore_test.cpp. Benchmark: bench/bench_sleepwake.cpp.
//
// State. `state` (atomic, 32 bits) = count << 1 | SEM_WAITERS, where count is the units free
// now and SEM_WAITERS says wait_list is not empty. `lock` (a spinlock_t) guards wait_list, a
// FIFO of semaphore_waiter on the sleepers' stacks, and is the only place SEM_WAITERS is set or
// cleared. Invariant: SEM_WAITERS => count == 0 (count > 0 => nobody sleeps).
//   Fast paths (no sleeper, no lock - the kernel's semaphore has none, sem_t has them): down()
//   with count > 0 and up() without SEM_WAITERS are one CAS each.
//   Optimistic phase (the kernel mutex's optimistic spinning; kernel/locking/semaphore.c has
//   none): down() finding count == 0 first polls for a unit without queueing - kSemSpin
//   rounds of cpu_relax(), then up to kSemYield sched_yield()s (under oversubscription the
//   unit's holder may be runnable but not running) - and takes a unit that appears, through
//   the same CAS as the fast path, so never past a sleeper (count stays 0 while SEM_WAITERS
//   is set). Why: every down() that sleeps turns a later up() into a hand-off to a thread that
//   must be woken and scheduled (~10 us here) while that unit stays reserved for it; sem_t
//   avoids this by letting the running poster retake the unit, which FIFO hand-off forbids,
//   so instead fewer downs ever sleep. The phase is bounded (microseconds plus the yields) and
//   sees no signal or timeout: those act once the waiter sleeps. nr_sleeps/nr_handoffs count
//   what remains (bench_sleepwake's sleeps_per_op, handoffs_per_op).
//   Slow paths, under the lock: down() with count == 0 sets SEM_WAITERS (one CAS: a racing
//   fast up() makes it fail and the unit is taken instead) and queues itself; up() with
//   SEM_WAITERS hands the unit straight to the first sleeper - removes it (clearing
//   SEM_WAITERS if the list is now empty), sets its futex word `up` 0 -> 1 and, after
//   unlocking, one FUTEX_WAKE on that word's address - so count never becomes visible to a
//   newcomer while someone sleeps: no down() or down_trylock() steals past a sleeper, sleepers
//   are served strictly in arrival order. A woken sleeper returns on seeing `up` != 0 without
//   taking the lock (the waker no longer touches the waiter: a FUTEX_WAKE on a dead word is
//   harmless, kprim/wait.hpp). A sleeper that times out or is interrupted decides under the
//   lock: `up` already set means it keeps the unit it was handed and returns 0.
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
  /// count() - the units free now (snapshot, relaxed).
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

/// DEFINE_SEMAPHORE(name, n) - a semaphore with n units (the kernel's 6.4+ two-argument form).
#define DEFINE_SEMAPHORE(name, n) \
  ::kprim::semaphore name { n }

/// sema_init() - reset to `val` units (val <= SEM_MAX_COUNT). Requires: no sleepers, nobody
/// uses it concurrently.
void sema_init(semaphore* sem, unsigned val) noexcept;

/// down() - take one unit, sleeping uninterruptibly until one is handed over.
/// Context: may sleep (might_sleep()); one CAS when a unit is free. Ordering: acquire; a unit
/// handed over by up() carries up()'s release. Fairness: FIFO among sleepers; downs still in
/// their optimistic phase (not queued yet) race for units that appear while nobody sleeps.
void down(semaphore* sem) noexcept;
/// down_interruptible() - down() that a caught signal ends: 0 (unit taken) or -EINTR (no unit
/// taken, the waiter removed; the semaphore is as if it had never waited).
[[nodiscard]] int down_interruptible(semaphore* sem) noexcept;
/// down_killable() - down() ended only by a fatal signal (kprim/wait.hpp): 0 or -EINTR.
[[nodiscard]] int down_killable(semaphore* sem) noexcept;
/// down_trylock() - take a unit without sleeping. Returns 0 on success and 1 on failure (the
/// kernel's inverted convention, unlike spin_trylock). Context: never sleeps, lock-free (CAS);
/// fails when count is 0, also when a unit was just handed to a sleeper.
[[nodiscard]] int down_trylock(semaphore* sem) noexcept;
/// down_timeout() - down() for at most `timeout` jiffies (ms): 0, or -ETIME with no unit taken.
[[nodiscard]] int down_timeout(semaphore* sem, long timeout) noexcept;
/// up() - release one unit: to the first sleeper if any (woken with one FUTEX_WAKE after the
/// spinlock is dropped), else to count (one CAS, no lock). Context: never sleeps; may be called
/// by any thread (no owner). Ordering: release. Requires: count < SEM_MAX_COUNT.
void up(semaphore* sem) noexcept;

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
