// Out-of-line half of kprim/wait.hpp: the timed futex sleep every kprim sleeping primitive
// uses, and the wait-queue list operations (all under the queue's spinlock).
#include <kprim/futex.hpp>
#include <kprim/wait.hpp>

#include <sched.h>

#include <ctime>
#include <memory>

namespace kprim {

namespace {
std::atomic<bool> g_fatal_signal{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set_fatal_signal_pending is async-signal-safe");

// The longest single FUTEX_WAIT of an untimed interruptible or killable sleep. Those still pass
// a timeout so that a caught signal always ends the wait with EINTR (a timed futex wait
// restarts through the restart block, which the kernel turns into EINTR when a handler ran,
// SA_RESTART or not); at expiry the sleep simply goes round again.
constexpr long forever_slice_s = 3600;

bool interrupts(unsigned state) noexcept {
  if (state & TASK_INTERRUPTIBLE) return true;
  return (state & TASK_WAKEKILL) && fatal_signal_pending();
}
}  // namespace

void set_fatal_signal_pending() noexcept { g_fatal_signal.store(true, std::memory_order_relaxed); }
void clear_fatal_signal_pending() noexcept { g_fatal_signal.store(false, std::memory_order_relaxed); }
bool fatal_signal_pending() noexcept { return g_fatal_signal.load(std::memory_order_relaxed); }

namespace detail {

void futex_wake_at(std::uint32_t* addr, int n) noexcept {
  ::syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

wait_deadline::wait_deadline(long timeout) noexcept
    : forever(timeout == MAX_SCHEDULE_TIMEOUT),
      at(std::chrono::steady_clock::now() +
         std::chrono::milliseconds(forever ? 0 : (timeout < 0 ? 0 : timeout))) {}

long wait_deadline::remaining() const noexcept {
  if (forever) return MAX_SCHEDULE_TIMEOUT;
  const auto left = at - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return 0;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
  return static_cast<long>((us + 999) / 1000);  // round up: not yet due reads as >= 1
}

int futex_sleep(std::uint32_t* addr, std::uint32_t expected, unsigned state,
                const wait_deadline& dl) noexcept {
  // A killable sleep with a fatal signal already recorded does not sleep at all, like the
  // kernel's signal_pending_state() check before schedule().
  if ((state & TASK_WAKEKILL) && fatal_signal_pending()) return -EINTR;
  timespec rel{};
  timespec* timeout = &rel;
  if (dl.forever) {
    if (state & (TASK_INTERRUPTIBLE | TASK_WAKEKILL))
      rel.tv_sec = forever_slice_s;
    else
      timeout = nullptr;  // signals cannot end it: no hrtimer on the hot path
  } else {
    const auto left = dl.at - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return -ETIME;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    rel.tv_sec = static_cast<time_t>(ns / 1000000000);
    rel.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  if (::syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, timeout, nullptr, 0) == 0) return 0;
  const int err = errno;
  if (err == ETIMEDOUT) return dl.forever ? 0 : -ETIME;
  if (err == EINTR && interrupts(state)) return -EINTR;
  return 0;  // EAGAIN (the word changed) or an EINTR this state ignores
}

int sleep_on_word(std::atomic<std::uint32_t>& word, unsigned state,
                  const wait_deadline& dl) noexcept {
  // The acquire loads pair with the waker's release store of the word.
  while (word.load(std::memory_order_acquire) == 0) {
    const int r = futex_sleep(reinterpret_cast<std::uint32_t*>(&word), 0, state, dl);
    if (r != 0 && word.load(std::memory_order_acquire) == 0) return r;
  }
  return 0;
}

int wait_sleep(wait_queue_head_t* wq, wait_queue_entry* e, unsigned state,
               const wait_deadline& dl, int* late_err) noexcept {
  const int r = sleep_on_word(e->woken, state, dl);
  if (r == 0) return 0;
  // Interrupted or timed out. Under the lock, either the entry is still queued (nobody woke
  // us: leave with the error) or a waker already took it off (the wake-up was ours: report
  // it, so an exclusive wake-up is not lost to a waiter that gives up).
  spin_guard<spinlock_t> g(wq->lock);
  if (!list_empty(&e->entry)) {
    list_del_init(&e->entry);
    wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return r;
  }
  *late_err = r;
  return 0;
}

}  // namespace detail

void init_waitqueue_head(wait_queue_head_t* wq) noexcept {
  std::destroy_at(wq);
  std::construct_at(wq);
}

void init_wait(wait_queue_entry* e) noexcept {
  INIT_LIST_HEAD(&e->entry);
  e->flags = 0;
  e->woken.store(0, std::memory_order_relaxed);
}

namespace {
wait_queue_entry* entry_of(list_head* p) noexcept {
  return reinterpret_cast<wait_queue_entry*>(reinterpret_cast<char*>(p) - offsetof(wait_queue_entry, entry));
}

void prepare(wait_queue_head_t* wq, wait_queue_entry* e, bool exclusive) noexcept {
  {
    spin_guard<spinlock_t> g(wq->lock);
    if (list_empty(&e->entry)) {
      if (exclusive) {
        e->flags |= WQ_FLAG_EXCLUSIVE;
        list_add_tail(&e->entry, &wq->head);
      } else {
        e->flags &= ~WQ_FLAG_EXCLUSIVE;
        list_add(&e->entry, &wq->head);
      }
      wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
    }
    // Asleep again (set_current_state). A waker that marked the entry's previous round may
    // still send its FUTEX_WAKE: that is one spurious return, which sleep_on_word absorbs.
    e->woken.store(0, std::memory_order_relaxed);
  }
  // set_current_state()'s smp_mb(): pairs with the waker's barrier before waitqueue_active()
  // (wq_has_sleeper); the spinlock alone would let the caller's condition load move up.
  smp_mb();
}
}  // namespace

void prepare_to_wait(wait_queue_head_t* wq, wait_queue_entry* e, unsigned) noexcept {
  prepare(wq, e, false);
}

void prepare_to_wait_exclusive(wait_queue_head_t* wq, wait_queue_entry* e, unsigned) noexcept {
  prepare(wq, e, true);
}

void finish_wait(wait_queue_head_t* wq, wait_queue_entry* e) noexcept {
  // woken != 0 is stored by the waker after it unlinked `e`, and the waker never touches `e`
  // again: nothing to undo and no lock to take (acquire: its list writes happened before).
  if (e->woken.load(std::memory_order_acquire) != 0) return;
  spin_guard<spinlock_t> g(wq->lock);
  if (!list_empty(&e->entry)) {
    list_del_init(&e->entry);
    wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
}

namespace {
/// The walk both wake-ups share, under wq->lock: unqueue and mark every non-exclusive
/// sleeper and up to nr_exclusive exclusive ones in queue order, handing each one's futex
/// word to `wake` (marked, an entry may be gone at once: only its word's address survives),
/// then count them out of nr_queued. Returns how many were woken.
template <class Wake>
int unqueue_sleepers(wait_queue_head_t* wq, int nr_exclusive, Wake wake) noexcept {
  int woken = 0;
  list_head* pos = wq->head.next;
  while (pos != &wq->head) {
    list_head* next = pos->next;
    wait_queue_entry* e = entry_of(pos);
    const bool exclusive = (e->flags & WQ_FLAG_EXCLUSIVE) != 0;
    auto* word = reinterpret_cast<std::uint32_t*>(&e->woken);
    list_del_init(pos);                            // autoremove: a second wake-up cannot pick the same sleeper
    e->woken.store(1, std::memory_order_release);  // the last touch of e
    wake(word);
    ++woken;
    if (exclusive && --nr_exclusive == 0) break;
    pos = next;
  }
  wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) - static_cast<unsigned>(woken),
                      std::memory_order_relaxed);
  return woken;
}
}  // namespace

int __wake_up_locked(wait_queue_head_t* wq, int nr_exclusive) noexcept {
  // The caller holds the lock for its own reasons: every FUTEX_WAKE goes out under it.
  return unqueue_sleepers(wq, nr_exclusive, [](std::uint32_t* word) { detail::futex_wake_at(word, 1); });
}

int __wake_up(wait_queue_head_t* wq, int nr_exclusive) noexcept {
  // Sleepers are unqueued and marked under the lock; the first kBatch are woken after it (the
  // kernel's wake_q), so a woken thread does not find the lock still held by its waker, any
  // beyond under it. Only the futex words' addresses are kept: once marked, an entry may be
  // gone (see the header).
  constexpr int kBatch = 16;
  std::uint32_t* batch[kBatch];
  int batched = 0;
  wq->lock.lock();
  const int woken = unqueue_sleepers(wq, nr_exclusive, [&](std::uint32_t* word) {
    if (batched < kBatch)
      batch[batched++] = word;
    else
      detail::futex_wake_at(word, 1);
  });
  wq->lock.unlock();
  for (int i = 0; i < batched; ++i) detail::futex_wake_at(batch[i], 1);
  return woken;
}

}  // namespace kprim
