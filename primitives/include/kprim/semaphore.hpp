// kprim/semaphore.hpp - the kernel's counting semaphore (struct semaphore, down()/up()), the
// kernel's answer to sem_t. Use it for a counted resource whose holders may sleep; for mutual
// exclusion prefer kprim::mutex (owner tracking, optimistic spinning), for "wait until done"
// kprim/completion.hpp. Sleep/signal rules (TASK_* states, jiffies, what interrupts a sleep):
// kprim/wait.hpp.
//
// Test: primitives/tests/semaphore_test.cpp. Benchmark: bench/bench_sleepwake.cpp.
//
// State, all under `lock` (a spinlock_t; no lock-free fast path, like the kernel's):
//   count      - units free now.
//   wait_list  - FIFO of semaphore_waiter on the sleepers' stacks.
// Invariant: count > 0 => wait_list is empty. up() with a sleeper queued does not touch count: it
// hands the unit straight to the first sleeper (removes it, sets its futex word `up` 0 -> 1,
// FUTEX_WAKE, still under the lock), so a newcomer's down() cannot steal a unit past a sleeper
// and waiters are served strictly in arrival order. A sleeper that times out or is interrupted
// but finds `up` already set keeps the unit it was handed and returns 0.
#pragma once

#include <kprim/context.hpp>
#include <kprim/list.hpp>
#include <kprim/spinlock.hpp>
#include <kprim/wait.hpp>

#include <climits>

namespace kprim {

struct semaphore {
  explicit semaphore(unsigned n = 0) noexcept : count(n) { INIT_LIST_HEAD(&wait_list); }
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  spinlock_t lock;
  unsigned count;
  list_head wait_list;
};
static_assert(sizeof(unsigned) == 4, "count is the kernel's unsigned int");

/// DEFINE_SEMAPHORE(name, n) - a semaphore with n units (the kernel's 6.4+ two-argument form).
#define DEFINE_SEMAPHORE(name, n) ::kprim::semaphore name{n}

/// sema_init() - reset to `val` units. Requires: no sleepers, nobody uses it concurrently.
void sema_init(semaphore* sem, unsigned val) noexcept;

/// down() - take one unit, sleeping uninterruptibly until one is handed over.
/// Context: may sleep (might_sleep()). Ordering: acquire (the lock); a unit handed over by up()
/// carries up()'s release. Fairness: FIFO among sleepers. Prefer down_interruptible/killable.
void down(semaphore* sem) noexcept;
/// down_interruptible() - down() that a caught signal ends: 0 (unit taken) or -EINTR (no unit
/// taken, the waiter removed; the semaphore is as if it had never waited).
[[nodiscard]] int down_interruptible(semaphore* sem) noexcept;
/// down_killable() - down() ended only by a fatal signal (kprim/wait.hpp): 0 or -EINTR.
[[nodiscard]] int down_killable(semaphore* sem) noexcept;
/// down_trylock() - take a unit without sleeping. Returns 0 on success and 1 on failure (the
/// kernel's inverted convention, unlike spin_trylock). Context: never sleeps (spinlock only);
/// fails when count is 0 even if a unit is about to be handed to a sleeper.
[[nodiscard]] int down_trylock(semaphore* sem) noexcept;
/// down_timeout() - down() for at most `timeout` jiffies (ms): 0, or -ETIME with no unit taken.
[[nodiscard]] int down_timeout(semaphore* sem, long timeout) noexcept;
/// up() - release one unit: to the first sleeper if any (woken with one FUTEX_WAKE), else to
/// count. Context: never sleeps; may be called by any thread (no owner). Ordering: release.
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
