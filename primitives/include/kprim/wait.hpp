// kprim/wait.hpp - the kernel's wait queues (wait_queue_head_t, wait_event*(), wake_up*()) and
// the sleeping rules shared by kprim/semaphore.hpp and kprim/completion.hpp: task states,
// jiffies, the user-space meaning of "a signal is pending". Use it where a kernel driver would
// sleep until a condition holds; for one-shot "it is done" events use kprim/completion.hpp, for
// a counted resource kprim/semaphore.hpp, for mutual exclusion kprim/mutex.hpp.
//
// Test: primitives/tests/wait_test.cpp. Benchmark: bench/bench_sleepwake.cpp.
//
// Design. A wait_queue_head_t is a spinlock_t and a list of wait_queue_entry, each with its own
// 32-bit futex word `woken` (0: asleep or about to be, 1: woken). Every waker removes the entry
// it wakes from the list (the kernel's autoremove_wake_function) and sets woken = 1 (release)
// under the queue's lock, then, after unlocking (the kernel's wake_q: the woken thread does not
// meet a lock still held by its waker), calls FUTEX_WAKE on the word's address. It never reads
// or writes the entry after the unlock: the owner may already have returned and the entry died.
// A FUTEX_WAKE on such an address is harmless - the kernel only looks the address up; at worst a
// later futex sleeper at the same address wakes spuriously, which every futex wait must absorb
// (futex.hpp; glibc's own sem_post and pthread_cond rely on the same rule). So the woken
// sleeper's success path takes no lock at all: it sees woken != 0, re-checks its condition and,
// when it holds, finish_wait() sees woken != 0 too (the entry is off the list) and returns at
// once (the kernel's list_empty_careful() check). Waking one sleeper is one futex word and one
// system call: nobody else wakes up (no herd).
// A wake-up meeting a signal or a timeout. A sleeper whose sleep ends in error re-takes the
// lock: still queued means nobody picked it (it leaves with the error; a later wake_up() finds
// the next waiter). Already unqueued means a waker picked it at the same moment, and for an
// exclusive waiter that wake-up may be the only one: the waiter re-checks its condition and,
// if it holds, consumes the wake-up and succeeds (the kernel's prepare_to_wait_event() rule);
// if not, it returns the error and passes the wake-up on to the next exclusive waiter (the
// kernel's abort_exclusive_wait()). So no exclusive wake-up is lost to a waiter that gives up.
//
// Interruptible sleeps in user space ("a pending signal"). kprim installs no signal handler and
// never changes a program's dispositions or masks. A sleep is interrupted when a signal is
// *caught* by a handler on the sleeping thread (the program's own handler, installed with or
// without SA_RESTART: every kprim sleep passes a timeout to FUTEX_WAIT, and the kernel answers
// a caught signal during a timed futex wait with EINTR whatever SA_RESTART says). Signals that
// are blocked on that thread, ignored, handled on another thread, or stop/continue the process
// do not interrupt. A TASK_INTERRUPTIBLE sleep then returns -ERESTARTSYS (wait_event_*,
// completion) or -EINTR (down_interruptible). A TASK_KILLABLE sleep is interrupted only when, in
// addition, fatal_signal_pending() is true: the program says a fatal signal arrived by calling
// set_fatal_signal_pending() (async-signal-safe) from its own handler, e.g. for SIGTERM - a real
// SIGKILL ends the process and needs no answer. TASK_UNINTERRUPTIBLE sleeps go back to sleep.
#pragma once

#include <kprim/barrier.hpp>
#include <kprim/context.hpp>
#include <kprim/list.hpp>
#include <kprim/spinlock.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>

namespace kprim {

/// ERESTARTSYS - the kernel's "interrupted by a signal" code (include/linux/errno.h: 512);
/// user-space errno.h does not define it. Returned negative, like every kprim error.
inline constexpr int ERESTARTSYS = 512;

/// Task states as the kernel spells them; kprim looks only at the interruptible/killable bits.
inline constexpr unsigned TASK_INTERRUPTIBLE = 0x0001;
inline constexpr unsigned TASK_UNINTERRUPTIBLE = 0x0002;
inline constexpr unsigned TASK_WAKEKILL = 0x0100;
inline constexpr unsigned TASK_KILLABLE = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE;

/// Time in jiffies, HZ = 1000: one jiffy is one millisecond of CLOCK_MONOTONIC (steady_clock).
inline constexpr long HZ = 1000;
inline constexpr long MAX_SCHEDULE_TIMEOUT = LONG_MAX;
[[nodiscard]] constexpr long msecs_to_jiffies(long ms) noexcept { return ms < 0 ? 0 : ms; }
[[nodiscard]] constexpr long jiffies_to_msecs(long j) noexcept { return j; }

/// set_fatal_signal_pending() - record that a fatal signal arrived (process-wide, sticky until
/// clear_fatal_signal_pending()). Context: async-signal-safe (one lock-free atomic store).
void set_fatal_signal_pending() noexcept;
void clear_fatal_signal_pending() noexcept;
/// fatal_signal_pending() - true between set_ and clear_fatal_signal_pending(). Relaxed load.
[[nodiscard]] bool fatal_signal_pending() noexcept;

namespace detail {

/// wait_deadline - a timeout in jiffies turned into a steady_clock deadline at sleep entry, so
/// spurious returns and retries never extend it. MAX_SCHEDULE_TIMEOUT means no deadline.
struct wait_deadline {
  explicit wait_deadline(long timeout) noexcept;
  bool forever;
  std::chrono::steady_clock::time_point at;
  /// Jiffies left, rounded up (so a deadline not yet reached reports at least 1); 0 when past.
  [[nodiscard]] long remaining() const noexcept;
};

/// futex_sleep() - one FUTEX_WAIT on *addr == expected, bounded by `dl`. Returns 0 after a
/// wake-up, a spurious return or a changed word (the caller re-checks its condition), -EINTR
/// when a caught signal interrupted a sleep whose `state` allows it (see the header), -ETIME
/// at the deadline. An untimed TASK_UNINTERRUPTIBLE sleep passes no timeout (no hrtimer to arm
/// and cancel on the wake-up path); every other sleep passes one, so that a caught signal ends
/// it with EINTR whatever SA_RESTART says.
int futex_sleep(std::uint32_t* addr, std::uint32_t expected, unsigned state,
                const wait_deadline& dl) noexcept;

/// futex_wake_at() - FUTEX_WAKE up to n sleepers on `addr`. The address need not be live any
/// more (see the header: a dead entry's word is a harmless target).
void futex_wake_at(std::uint32_t* addr, int n) noexcept;

/// sleep_on_word() - sleep while word == 0. Returns 0 once word != 0 (acquire), -EINTR when a
/// caught signal interrupts a sleep whose `state` allows it (see the header), -ETIME at the
/// deadline. Spurious futex returns are absorbed here.
int sleep_on_word(std::atomic<std::uint32_t>& word, unsigned state,
                  const wait_deadline& dl) noexcept;

}  // namespace detail

/// WQ_FLAG_EXCLUSIVE - the entry counts against wake_up()'s nr_exclusive.
inline constexpr unsigned WQ_FLAG_EXCLUSIVE = 0x01;

/// wait_queue_entry - one sleeper. State: on its head's list <=> it may still be woken;
/// woken: 0 -> 1 by the waker (release, under the head's lock, together with list removal),
/// 1 -> 0 only by prepare_to_wait*() under the lock. woken != 0 (acquire) tells the owner,
/// without the lock, that the entry is off the list and no waker will touch it again.
/// Lives on the waiter's stack.
struct wait_queue_entry {
  wait_queue_entry() noexcept { INIT_LIST_HEAD(&entry); }
  wait_queue_entry(const wait_queue_entry&) = delete;
  wait_queue_entry& operator=(const wait_queue_entry&) = delete;
  list_head entry;
  unsigned flags = 0;
  std::atomic<std::uint32_t> woken{0};  // the futex word this sleeper waits on
};
using wait_queue_entry_t = wait_queue_entry;
static_assert(sizeof(std::atomic<std::uint32_t>) == 4, "futex words are 32 bits");

/// wait_queue_head - the queue. Invariant: head lists exactly the entries not yet woken or
/// removed; non-exclusive entries are added at the front, exclusive ones at the back, so a
/// wake-up walks every non-exclusive entry before it reaches its first exclusive one.
/// nr_queued mirrors the list length (written under lock) for waitqueue_active().
struct wait_queue_head {
  wait_queue_head() noexcept { INIT_LIST_HEAD(&head); }
  wait_queue_head(const wait_queue_head&) = delete;
  wait_queue_head& operator=(const wait_queue_head&) = delete;
  spinlock_t lock;
  list_head head;
  std::atomic<unsigned> nr_queued{0};
};
using wait_queue_head_t = wait_queue_head;

#define DECLARE_WAIT_QUEUE_HEAD(name) ::kprim::wait_queue_head_t name
#define DEFINE_WAIT(name) ::kprim::wait_queue_entry name

/// init_waitqueue_head() - empty queue. Requires: nobody sleeps on or wakes it.
void init_waitqueue_head(wait_queue_head_t* wq) noexcept;
/// init_wait() - an unqueued entry. Requires: not on any queue.
void init_wait(wait_queue_entry* e) noexcept;

/// prepare_to_wait() - queue `e` (non-exclusive) if it is not queued, mark it asleep, then a
/// full barrier (the kernel's set_current_state()): the caller's next load of its condition is
/// ordered after the entry is visible to wakers. Context: takes the queue's spinlock; does not
/// sleep. Pair: the waker's store to the condition, then wake_up().
void prepare_to_wait(wait_queue_head_t* wq, wait_queue_entry* e, unsigned state) noexcept;
/// prepare_to_wait_exclusive() - same, queued at the back as an exclusive waiter.
void prepare_to_wait_exclusive(wait_queue_head_t* wq, wait_queue_entry* e,
                               unsigned state) noexcept;
/// finish_wait() - unqueue `e` if still queued. Must be called before `e` goes out of scope;
/// after it returns no waker touches `e`. Context: lock-free when a waker already removed `e`
/// (woken != 0: the common case after a wake-up), else takes the spinlock.
void finish_wait(wait_queue_head_t* wq, wait_queue_entry* e) noexcept;

/// __wake_up() - wake every non-exclusive waiter and up to nr_exclusive exclusive ones
/// (0: all), in queue order. Returns how many were woken. Ordering: the lock acquisition
/// orders the caller's earlier condition stores before any woken waiter's re-check.
/// Context: spinlock plus one FUTEX_WAKE per woken waiter (after the unlock for the first 16);
/// never sleeps.
int __wake_up(wait_queue_head_t* wq, int nr_exclusive) noexcept;
inline int wake_up(wait_queue_head_t* wq) noexcept { return __wake_up(wq, 1); }
inline int wake_up_nr(wait_queue_head_t* wq, int nr) noexcept { return __wake_up(wq, nr); }
inline int wake_up_all(wait_queue_head_t* wq) noexcept { return __wake_up(wq, 0); }
inline int wake_up_interruptible(wait_queue_head_t* wq) noexcept { return __wake_up(wq, 1); }
inline int wake_up_interruptible_all(wait_queue_head_t* wq) noexcept { return __wake_up(wq, 0); }
/// __wake_up_locked() - __wake_up() by a caller that already holds wq->lock (the kernel's
/// wake_up_locked(), for wakers that change their condition under the queue's own lock). The
/// FUTEX_WAKEs are made under the lock.
int __wake_up_locked(wait_queue_head_t* wq, int nr_exclusive) noexcept;
inline int wake_up_locked(wait_queue_head_t* wq) noexcept { return __wake_up_locked(wq, 1); }
inline int wake_up_all_locked(wait_queue_head_t* wq) noexcept { return __wake_up_locked(wq, 0); }

/// waitqueue_active() - lock-free "is anybody queued?" (relaxed load). THE KERNEL'S CAVEAT: a
/// waker that skips wake_up() when this is false must put a full barrier (smp_mb()) between its store to the condition and this call;
/// otherwise the load can be satisfied before the store is visible, a waiter queued in between
/// re-checks the old condition, sleeps, and the wake-up is lost. The waiter's side of that
/// pairing is the barrier inside prepare_to_wait(). Without such a barrier call wake_up().
[[nodiscard]] inline bool waitqueue_active(const wait_queue_head_t* wq) noexcept {
  return wq->nr_queued.load(std::memory_order_relaxed) != 0;
}
/// wq_has_sleeper() - waitqueue_active() with the waker's full barrier built in.
[[nodiscard]] inline bool wq_has_sleeper(const wait_queue_head_t* wq) noexcept {
  smp_mb();
  return waitqueue_active(wq);
}

namespace detail {

/// wait_sleep() - sleep on e->woken. 0: woken (the entry is off the queue). Otherwise the
/// error (-EINTR/-ETIME); if the entry was still queued it is removed and the error returned;
/// if a waker got there first, 0 is returned and *late_err says what else happened, so the
/// caller re-checks its condition rather than dropping a wake-up meant for it.
int wait_sleep(wait_queue_head_t* wq, wait_queue_entry* e, unsigned state,
               const wait_deadline& dl, int* late_err) noexcept;

/// __wait_event() - the body of every wait_event*(): returns 0 (condition true), -EINTR or
/// -ETIME. The condition is evaluated with no lock held, after the barrier in prepare_to_wait.
template <class Cond>
int __wait_event(wait_queue_head_t* wq, Cond&& cond, unsigned state, bool exclusive,
                 const wait_deadline& dl) {
  wait_queue_entry e;
  int ret = 0;
  for (;;) {
    if (exclusive)
      prepare_to_wait_exclusive(wq, &e, state);
    else
      prepare_to_wait(wq, &e, state);
    if (cond()) break;
    int late = 0;
    ret = wait_sleep(wq, &e, state, dl, &late);
    if (ret != 0) break;
    if (late != 0) {
      // Woken and interrupted/timed out at once (see wait_sleep). The wake-up was ours: an
      // exclusive waiter must not drop it. If cond() holds we consume it and succeed (the
      // kernel's prepare_to_wait_event() rule); if not, we fail and pass the wake-up on to the
      // next exclusive waiter (the kernel's abort_exclusive_wait()), whose condition may hold.
      if (cond()) {
        ret = 0;
      } else {
        ret = late;
        if (exclusive) __wake_up(wq, 1);
      }
      break;
    }
    // Woken: the waker took `e` off the queue. Re-check before queueing again, so the common
    // case (the condition now holds) ends with a lock-free finish_wait().
    if (cond()) break;
  }
  finish_wait(wq, &e);
  return ret;
}

}  // namespace detail

/// wait_event() - sleep until cond() is true. cond is any callable returning bool (the
/// kernel's condition expression, written as a lambda); it may be evaluated many times.
/// Context: may sleep (might_sleep()); uninterruptible: signals do not end the wait.
/// Ordering: cond() is re-checked after the full barrier of prepare_to_wait(): a waker that
/// stores the condition and then calls wake_up() is never missed (no lost wake-up).
template <class Cond>
void wait_event(wait_queue_head_t& wq, Cond&& cond) {
  might_sleep();
  if (cond()) return;
  (void)detail::__wait_event(&wq, cond, TASK_UNINTERRUPTIBLE, false,
                             detail::wait_deadline(MAX_SCHEDULE_TIMEOUT));
}

/// wait_event_exclusive() - wait_event() as an exclusive waiter: wake_up() wakes one of these.
template <class Cond>
void wait_event_exclusive(wait_queue_head_t& wq, Cond&& cond) {
  might_sleep();
  if (cond()) return;
  (void)detail::__wait_event(&wq, cond, TASK_UNINTERRUPTIBLE, true,
                             detail::wait_deadline(MAX_SCHEDULE_TIMEOUT));
}

namespace detail {

/// A timed wait in `state`: the kernel's convention for the result - 0 if cond() is still
/// false when the timeout elapsed, -ERESTARTSYS if a signal ended it first (never for
/// TASK_UNINTERRUPTIBLE), otherwise the jiffies left, at least 1 (1 also when cond() became
/// true just as the time ran out).
template <class Cond>
long wait_event_timed(wait_queue_head_t& wq, Cond& cond, unsigned state, long timeout,
                      bool exclusive = false) {
  if (cond()) return timeout > 0 ? timeout : 1;
  const wait_deadline dl(timeout);
  const int r = __wait_event(&wq, cond, state, exclusive, dl);
  if (r == -ETIME) return cond() ? 1 : 0;
  if (r != 0) return -ERESTARTSYS;
  const long left = dl.remaining();
  return left > 0 ? left : 1;
}

/// An untimed wait in `state` that a signal may end: 0 once cond() is true, else -ERESTARTSYS.
template <class Cond>
int wait_event_signalled(wait_queue_head_t& wq, Cond& cond, unsigned state, bool exclusive = false) {
  if (cond()) return 0;
  const int r = __wait_event(&wq, cond, state, exclusive, wait_deadline(MAX_SCHEDULE_TIMEOUT));
  return r == 0 ? 0 : -ERESTARTSYS;
}

}  // namespace detail

/// wait_event_timeout() - wait_event() for at most `timeout` jiffies (ms). Returns the
/// kernel's convention: 0 if cond() is still false when the timeout elapsed, otherwise the
/// jiffies left, at least 1 (1 also when cond() became true just as the time ran out).
template <class Cond>
long wait_event_timeout(wait_queue_head_t& wq, Cond&& cond, long timeout) {
  might_sleep();
  return detail::wait_event_timed(wq, cond, TASK_UNINTERRUPTIBLE, timeout);
}

/// wait_event_interruptible() - wait_event() that a caught signal ends (see the header):
/// 0 once cond() is true, -ERESTARTSYS when interrupted first. The queue stays consistent.
template <class Cond>
int wait_event_interruptible(wait_queue_head_t& wq, Cond&& cond) {
  might_sleep();
  return detail::wait_event_signalled(wq, cond, TASK_INTERRUPTIBLE);
}

/// wait_event_interruptible_timeout() - -ERESTARTSYS, 0 (timeout, cond false) or jiffies left.
template <class Cond>
long wait_event_interruptible_timeout(wait_queue_head_t& wq, Cond&& cond, long timeout) {
  might_sleep();
  return detail::wait_event_timed(wq, cond, TASK_INTERRUPTIBLE, timeout);
}

/// wait_event_killable() - ended only by a fatal signal (see the header): 0 or -ERESTARTSYS.
template <class Cond>
int wait_event_killable(wait_queue_head_t& wq, Cond&& cond) {
  might_sleep();
  return detail::wait_event_signalled(wq, cond, TASK_KILLABLE);
}

/// wait_event_interruptible_exclusive() - wait_event_interruptible() as an exclusive waiter.
/// A wake-up that picked this waiter is never lost to the signal: if the signal and the
/// wake-up arrive together, cond() decides - true: 0 (the wake-up is consumed); false:
/// -ERESTARTSYS and the wake-up is passed on to the next exclusive waiter (abort_exclusive_wait).
template <class Cond>
int wait_event_interruptible_exclusive(wait_queue_head_t& wq, Cond&& cond) {
  might_sleep();
  return detail::wait_event_signalled(wq, cond, TASK_INTERRUPTIBLE, true);
}

/// wait_event_killable_exclusive() - wait_event_killable() as an exclusive waiter; the same
/// rule for a wake-up that meets a fatal signal.
template <class Cond>
int wait_event_killable_exclusive(wait_queue_head_t& wq, Cond&& cond) {
  might_sleep();
  return detail::wait_event_signalled(wq, cond, TASK_KILLABLE, true);
}

/// wait_event_idle_exclusive_timeout() - an uninterruptible exclusive wait of at most
/// `timeout` jiffies, with wait_event_timeout()'s return convention. A wake-up that meets the
/// timeout follows wait_event_interruptible_exclusive()'s rule (consumed, or passed on).
template <class Cond>
long wait_event_idle_exclusive_timeout(wait_queue_head_t& wq, Cond&& cond, long timeout) {
  might_sleep();
  return detail::wait_event_timed(wq, cond, TASK_UNINTERRUPTIBLE, timeout, true);
}

}  // namespace kprim
