// kprim/completion.hpp - the kernel's struct completion: "wait until it is done", one-shot or
// counted (complete() releases one waiter, complete_all() every present and future waiter until
// reinit_completion()). Prefer it to a wait queue plus a flag, and to a semaphore used as an
// event; for a condition more complex than "done" use kprim/wait.hpp.
//
// Test: primitives/tests/completion_test.cpp. Benchmark: bench/bench_sleepwake.cpp.
//
// State: one 64-bit word, `state`. Its low 32 bits are `done` - the number of complete() calls
// not yet consumed by a waiter, or UINT_MAX after complete_all() (then no waiter consumes it) -
// and are also the futex word waiters sleep on (FUTEX_WAIT while done == 0). Its high 32 bits
// count the sleepers: waiters registered in the slow path (asleep or about to be). Every
// transition is one CAS on the whole word, so complete() sees in the value it replaced whether
// anybody may sleep: with nobody registered it is that one atomic; with sleepers, one FUTEX_WAKE
// of one thread (the kernel's futex queue is FIFO among equal priorities). The woken waiter
// takes its unit and unregisters in one CAS: no lock anywhere. As in the kernel, a waiter
// arriving while a woken one is still on its way may take the unit first; the woken one then
// sleeps again, so every complete() is consumed by exactly one wait. A sleeper interrupted or
// timed out takes a unit that is there rather than fail (the wake-up wins). Sleep and signal
// rules (TASK_* states, jiffies, what interrupts a sleep): kprim/wait.hpp.
#pragma once

#include <kprim/context.hpp>
#include <kprim/wait.hpp>

#include <atomic>
#include <bit>
#include <climits>
#include <cstdint>

namespace kprim {

struct completion {
  completion() noexcept = default;
  completion(const completion&) = delete;
  completion& operator=(const completion&) = delete;
  static constexpr std::uint64_t one_sleeper = std::uint64_t{1} << 32;
  std::atomic<std::uint64_t> state{0};
  /// done - the count (low half); UINT_MAX after complete_all().
  [[nodiscard]] unsigned done() const noexcept {
    return static_cast<unsigned>(state.load(std::memory_order_relaxed));
  }
  /// sleepers - waiters registered in the slow path (for tests and diagnostics).
  [[nodiscard]] unsigned sleepers() const noexcept {
    return static_cast<unsigned>(state.load(std::memory_order_relaxed) >> 32);
  }
  /// done_word() - the futex word: the low half of `state` in memory.
  [[nodiscard]] std::uint32_t* done_word() noexcept {
    return reinterpret_cast<std::uint32_t*>(&state) + (std::endian::native == std::endian::little ? 0 : 1);
  }
};
static_assert(UINT_MAX == 0xffffffffu, "complete_all() saturates done at UINT_MAX");
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && std::atomic<std::uint64_t>::is_always_lock_free,
              "done and the sleeper count share one lock-free 64-bit word");

#define DECLARE_COMPLETION(name) ::kprim::completion name
#define DECLARE_COMPLETION_ONSTACK(name) ::kprim::completion name

/// init_completion() - not done, no waiters. Requires: nobody uses it.
void init_completion(completion* x) noexcept;
/// reinit_completion() - done = 0 for reuse after complete_all(). Requires: no waiters queued
/// (the kernel's rule; waiters that already returned are fine). Sleeper count kept.
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
/// completion_done() - true if a waiter would not sleep now (snapshot, acquire load).
[[nodiscard]] bool completion_done(completion* x) noexcept;
/// complete() - make one more waiter's wait succeed; wakes the first queued waiter, if any.
/// Context: never sleeps, lock-free: one CAS, plus one FUTEX_WAKE(1) when sleepers are
/// registered. Ordering: release.
void complete(completion* x) noexcept;
/// complete_all() - every present and future wait succeeds until reinit_completion(). One CAS
/// plus one FUTEX_WAKE(all) when sleepers are registered.
void complete_all(completion* x) noexcept;

}  // namespace kprim
