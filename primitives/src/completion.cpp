// Out-of-line kprim::completion (kprim/completion.hpp). The kernel keeps `done` under the wait
// queue's lock (kernel/sched/completion.c); here done and the sleeper count share one 64-bit
// word and its low half is the futex word, so neither side ever takes a lock: complete() is one
// CAS (and one FUTEX_WAKE if the CAS saw sleepers), a woken waiter one CAS.
#include <kprim/completion.hpp>

#include <memory>

namespace kprim {

namespace {

constexpr std::uint64_t kOne = completion::one_sleeper;

[[nodiscard]] constexpr std::uint32_t done_of(std::uint64_t v) noexcept {
  return static_cast<std::uint32_t>(v);
}

// The value after one wait consumes a unit from v (done != 0): done - 1, or unchanged done
// after complete_all(); `registered` also drops this waiter from the sleeper count.
[[nodiscard]] constexpr std::uint64_t consumed(std::uint64_t v, bool registered) noexcept {
  return v - (done_of(v) == UINT_MAX ? 0 : 1) - (registered ? kOne : 0);
}

// Try to consume a unit; v is the caller's latest view of the state (updated on failure).
bool try_consume(completion* x, std::uint64_t& v, bool registered) noexcept {
  while (done_of(v) != 0)
    if (x->state.compare_exchange_weak(v, consumed(v, registered), std::memory_order_acquire,
                                       std::memory_order_relaxed))
      return true;
  return false;
}

// Returns 0 (consumed), -EINTR or -ETIME. As in do_wait_for_common(), a unit present after an
// interruption or a timeout wins over it: nothing complete() gave is lost to a waiter leaving.
[[gnu::noinline]] int wait_slow(completion* x, unsigned state, const detail::wait_deadline& dl) noexcept {
  std::uint64_t v = x->state.fetch_add(kOne, std::memory_order_relaxed) + kOne;  // register
  std::uint32_t* word = x->done_word();
  for (;;) {
    if (try_consume(x, v, true)) return 0;
    // done == 0 in v; the kernel re-checks it atomically with going to sleep.
    const int r = detail::futex_sleep(word, 0, state, dl);
    v = x->state.load(std::memory_order_relaxed);
    if (r == 0) continue;
    for (;;) {  // leaving: consume a unit if one arrived, else unregister
      if (try_consume(x, v, true)) return 0;
      if (x->state.compare_exchange_weak(v, v - kOne, std::memory_order_relaxed)) return r;
    }
  }
}

int wait_common(completion* x, unsigned state, const detail::wait_deadline& dl) noexcept {
  std::uint64_t v = x->state.load(std::memory_order_relaxed);
  if (try_consume(x, v, false)) return 0;  // the fast path: a unit is there
  return wait_slow(x, state, dl);
}

long with_left(int r, const detail::wait_deadline& dl) noexcept {
  if (r == -ETIME) return 0;
  if (r != 0) return -ERESTARTSYS;
  const long left = dl.remaining();
  return left > 0 ? left : 1;
}

int untimed(completion* x, unsigned state) noexcept {
  return wait_common(x, state, detail::wait_deadline(MAX_SCHEDULE_TIMEOUT));
}

}  // namespace

void init_completion(completion* x) noexcept {
  std::destroy_at(x);
  std::construct_at(x);
}

void reinit_completion(completion* x) noexcept {
  std::uint64_t v = x->state.load(std::memory_order_relaxed);
  while (!x->state.compare_exchange_weak(v, v & ~std::uint64_t{0xffffffffu}, std::memory_order_relaxed)) {
  }
}

void wait_for_completion(completion* x) noexcept {
  might_sleep();
  (void)untimed(x, TASK_UNINTERRUPTIBLE);
}

unsigned long wait_for_completion_timeout(completion* x, long timeout) noexcept {
  might_sleep();
  const detail::wait_deadline dl(timeout);
  return static_cast<unsigned long>(with_left(wait_common(x, TASK_UNINTERRUPTIBLE, dl), dl));
}

int wait_for_completion_interruptible(completion* x) noexcept {
  might_sleep();
  return untimed(x, TASK_INTERRUPTIBLE) == 0 ? 0 : -ERESTARTSYS;
}

long wait_for_completion_interruptible_timeout(completion* x, long timeout) noexcept {
  might_sleep();
  const detail::wait_deadline dl(timeout);
  return with_left(wait_common(x, TASK_INTERRUPTIBLE, dl), dl);
}

int wait_for_completion_killable(completion* x) noexcept {
  might_sleep();
  return untimed(x, TASK_KILLABLE) == 0 ? 0 : -ERESTARTSYS;
}

bool try_wait_for_completion(completion* x) noexcept {
  std::uint64_t v = x->state.load(std::memory_order_relaxed);
  return try_consume(x, v, false);
}

bool completion_done(completion* x) noexcept {
  return done_of(x->state.load(std::memory_order_acquire)) != 0;
}

void complete(completion* x) noexcept {
  std::uint64_t v = x->state.load(std::memory_order_relaxed);
  // Saturated by complete_all(): nothing to add, and every sleeper was already woken (a later
  // one finds done != 0 and does not sleep). The release pairs with the waiter's acquire CAS.
  while (done_of(v) != UINT_MAX &&
         !x->state.compare_exchange_weak(v, v + 1, std::memory_order_release, std::memory_order_relaxed)) {
  }
  if (done_of(v) != UINT_MAX && (v >> 32) != 0) detail::futex_wake_at(x->done_word(), 1);
}

void complete_all(completion* x) noexcept {
  std::uint64_t v = x->state.load(std::memory_order_relaxed);
  while (!x->state.compare_exchange_weak(v, v | 0xffffffffu, std::memory_order_release,
                                         std::memory_order_relaxed)) {
  }
  if ((v >> 32) != 0) detail::futex_wake_at(x->done_word(), INT_MAX);
}

}  // namespace kprim
