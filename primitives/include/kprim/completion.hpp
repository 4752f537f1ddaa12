// kprim/completion.hpp - the kernel's struct completion: "wait until it is done", one-shot or
// counted (complete() releases one waiter, complete_all() every present and future waiter until
// reinit_completion()). Prefer it to a wait queue plus a flag, and to a semaphore used as an
// event; for a condition more complex than "done" use kprim/wait.hpp.
//
// Test: primitives/tests/completion_test.cpp. Benchmark: bench/bench_sleepwake.cpp.
//
// State, under wait.lock: done = number of complete() calls not yet consumed by a waiter, or
// UINT_MAX after complete_all() (then no waiter consumes it). Waiters queue as exclusive
// entries on `wait` (FIFO); complete() wakes the first, complete_all() all of them. Sleep and
// signal rules (TASK_* states, jiffies, what interrupts a sleep): kprim/wait.hpp.
#pragma once

#include <kprim/context.hpp>
#include <kprim/wait.hpp>

#include <climits>

namespace kprim {

struct completion {
  completion() noexcept = default;
  completion(const completion&) = delete;
  completion& operator=(const completion&) = delete;
  unsigned done = 0;
  wait_queue_head_t wait;
};
static_assert(UINT_MAX == 0xffffffffu, "complete_all() saturates done at UINT_MAX");

#define DECLARE_COMPLETION(name) ::kprim::completion name
#define DECLARE_COMPLETION_ONSTACK(name) ::kprim::completion name

/// init_completion() - not done, no waiters. Requires: nobody uses it.
void init_completion(completion* x) noexcept;
/// reinit_completion() - done = 0 for reuse after complete_all(). Requires: no waiters queued
/// (the kernel's rule; waiters that already returned are fine).
void reinit_completion(completion* x) noexcept;

/// wait_for_completion() - sleep until a complete() is available and consume it (or until
/// complete_all()). Context: may sleep, uninterruptible. Ordering: acquire (pairs with the
/// release of complete()'s lock): what the completer wrote before complete() is visible.
void wait_for_completion(completion* x) noexcept;
/// wait_for_completion_timeout() - at most `timeout` jiffies (ms): 0 on timeout, else the
/// jiffies left (at least 1).
[[nodiscard]] unsigned long wait_for_completion_timeout(completion* x, long timeout) noexcept;
/// wait_for_completion_interruptible() - 0, or -ERESTARTSYS when a caught signal came first
/// (nothing consumed, the waiter removed).
[[nodiscard]] int wait_for_completion_interruptible(completion* x) noexcept;
/// wait_for_completion_interruptible_timeout() - -ERESTARTSYS, 0 (timeout) or jiffies left.
[[nodiscard]] long wait_for_completion_interruptible_timeout(completion* x, long timeout) noexcept;
/// wait_for_completion_killable() - 0, or -ERESTARTSYS on a fatal signal (kprim/wait.hpp).
[[nodiscard]] int wait_for_completion_killable(completion* x) noexcept;
/// try_wait_for_completion() - consume one complete() without sleeping: true if there was one.
[[nodiscard]] bool try_wait_for_completion(completion* x) noexcept;
/// completion_done() - true if a waiter would not sleep now (snapshot, under the lock).
[[nodiscard]] bool completion_done(completion* x) noexcept;
/// complete() - make one more waiter's wait succeed; wakes the first queued waiter, if any.
/// Context: never sleeps (spinlock plus at most one FUTEX_WAKE). Ordering: release.
void complete(completion* x) noexcept;
/// complete_all() - every present and future wait succeeds until reinit_completion().
void complete_all(completion* x) noexcept;

}  // namespace kprim
