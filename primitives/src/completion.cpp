// Out-of-line kprim::completion (kprim/completion.hpp), after kernel/sched/completion.c:
// `done` lives under the wait queue's lock; waiters sleep as exclusive entries on their own
// futex words, so complete() wakes exactly one thread, after dropping the lock (see wait.hpp).
#include <kprim/completion.hpp>
#include <kprim/futex.hpp>

#include <memory>

namespace kprim {

namespace {

// Returns 0 (consumed), -EINTR or -ETIME. Mirrors do_wait_for_common(): after each wake-up
// `done` is re-read under the lock and wins over a signal or timeout that arrived meanwhile.
int wait_common(completion* x, unsigned state, long timeout) noexcept {
  const detail::wait_deadline dl(timeout);
  wait_queue_head_t* wq = &x->wait;
  wq->lock.lock();
  if (x->done == 0) {
    wait_queue_entry e;
    e.flags = WQ_FLAG_EXCLUSIVE;
    do {
      if (list_empty(&e.entry)) {  // first time, or woken but the unit went to try_wait
        detail::wait_waker_done(&e);
        list_add_tail(&e.entry, &wq->head);
        wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
        e.woken.store(0, std::memory_order_relaxed);
      }
      wq->lock.unlock();
      const int r = detail::sleep_on_word(e.woken, state, dl);
      wq->lock.lock();
      if (x->done != 0) break;
      if (r != 0) {
        if (!list_empty(&e.entry)) {
          list_del_init(&e.entry);
          wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) - 1,
                              std::memory_order_relaxed);
        }
        wq->lock.unlock();
        detail::wait_waker_done(&e);
        return r;
      }
    } while (true);
    if (!list_empty(&e.entry)) {  // done set by a complete() that woke someone else
      list_del_init(&e.entry);
      wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) - 1,
                          std::memory_order_relaxed);
    }
    if (x->done != UINT_MAX) --x->done;
    wq->lock.unlock();
    detail::wait_waker_done(&e);  // e dies here: its waker must be done with it
    return 0;
  }
  if (x->done != UINT_MAX) --x->done;
  wq->lock.unlock();
  return 0;
}

long with_left(int r, const detail::wait_deadline& dl) noexcept {
  if (r == -ETIME) return 0;
  if (r != 0) return -ERESTARTSYS;
  const long left = dl.remaining();
  return left > 0 ? left : 1;
}

}  // namespace

void init_completion(completion* x) noexcept {
  std::destroy_at(x);
  std::construct_at(x);
}

void reinit_completion(completion* x) noexcept {
  spin_guard<spinlock_t> g(x->wait.lock);
  x->done = 0;
}

void wait_for_completion(completion* x) noexcept {
  might_sleep();
  (void)wait_common(x, TASK_UNINTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT);
}

unsigned long wait_for_completion_timeout(completion* x, long timeout) noexcept {
  might_sleep();
  const detail::wait_deadline dl(timeout);
  return static_cast<unsigned long>(with_left(wait_common(x, TASK_UNINTERRUPTIBLE, timeout), dl));
}

int wait_for_completion_interruptible(completion* x) noexcept {
  might_sleep();
  return wait_common(x, TASK_INTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT) == 0 ? 0 : -ERESTARTSYS;
}

long wait_for_completion_interruptible_timeout(completion* x, long timeout) noexcept {
  might_sleep();
  const detail::wait_deadline dl(timeout);
  return with_left(wait_common(x, TASK_INTERRUPTIBLE, timeout), dl);
}

int wait_for_completion_killable(completion* x) noexcept {
  might_sleep();
  return wait_common(x, TASK_KILLABLE, MAX_SCHEDULE_TIMEOUT) == 0 ? 0 : -ERESTARTSYS;
}

bool try_wait_for_completion(completion* x) noexcept {
  spin_guard<spinlock_t> g(x->wait.lock);
  if (x->done == 0) return false;
  if (x->done != UINT_MAX) --x->done;
  return true;
}

bool completion_done(completion* x) noexcept {
  spin_guard<spinlock_t> g(x->wait.lock);
  return x->done != 0;
}

namespace {
// Unqueue up to n waiters (0: all) and mark them (woken 0 -> 1) with the lock held; the
// caller wakes the first kBatch after unlocking (wake_batch), the rest are woken here.
constexpr int kBatch = 16;
struct batch {
  wait_queue_entry* e[kBatch];
  int n = 0;
};
void wake_locked(wait_queue_head_t* wq, int n, batch& b) noexcept {
  int woken = 0;
  while (!list_empty(&wq->head)) {
    list_head* pos = wq->head.next;
    auto* e = reinterpret_cast<wait_queue_entry*>(reinterpret_cast<char*>(pos) -
                                                  offsetof(wait_queue_entry, entry));
    list_del_init(pos);
    e->woken.store(1, std::memory_order_release);
    if (b.n < kBatch) {
      b.e[b.n++] = e;
    } else {
      futex_wake(e->woken, 1);
      e->woken.store(2, std::memory_order_release);
    }
    ++woken;
    if (n != 0 && woken == n) break;
  }
  wq->nr_queued.store(wq->nr_queued.load(std::memory_order_relaxed) - static_cast<unsigned>(woken),
                      std::memory_order_relaxed);
}
void wake_batch(batch& b) noexcept {
  for (int i = 0; i < b.n; ++i) {
    futex_wake(b.e[i]->woken, 1);
    b.e[i]->woken.store(2, std::memory_order_release);  // the owner may drop its entry now
  }
}
}  // namespace

void complete(completion* x) noexcept {
  batch b;
  x->wait.lock.lock();
  if (x->done != UINT_MAX) ++x->done;
  wake_locked(&x->wait, 1, b);
  x->wait.lock.unlock();
  wake_batch(b);
}

void complete_all(completion* x) noexcept {
  batch b;
  x->wait.lock.lock();
  x->done = UINT_MAX;
  wake_locked(&x->wait, 0, b);
  x->wait.lock.unlock();
  wake_batch(b);
}

}  // namespace kprim
