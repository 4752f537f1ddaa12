// Out-of-line kprim::semaphore (kprim/semaphore.hpp): every operation takes the spinlock, as in
// kernel/locking/semaphore.c; sleepers wait on their own futex word, so up() wakes exactly one.
#include <kprim/futex.hpp>
#include <kprim/semaphore.hpp>

#include <cstddef>
#include <memory>

namespace kprim {

namespace {

// One sleeper, on its own stack, queued at the tail of wait_list.
struct semaphore_waiter {
  list_head list;
  std::atomic<std::uint32_t> up{0};  // 0 -> 1 by up() when it hands this sleeper the unit
};

semaphore_waiter* first_waiter(semaphore* sem) noexcept {
  return reinterpret_cast<semaphore_waiter*>(reinterpret_cast<char*>(sem->wait_list.next) -
                                             offsetof(semaphore_waiter, list));
}

[[gnu::cold, gnu::noinline]] int down_common(semaphore* sem, unsigned state, long timeout) noexcept {
  // Entered with sem->lock held and count == 0; returns with it released.
  const detail::wait_deadline dl(timeout);
  semaphore_waiter w;
  list_add_tail(&w.list, &sem->wait_list);
  for (;;) {
    sem->lock.unlock();
    const int r = detail::sleep_on_word(w.up, state, dl);
    sem->lock.lock();
    // up() sets w.up under this lock, so this read decides: handed a unit, or still queued.
    if (w.up.load(std::memory_order_relaxed) != 0) {
      sem->lock.unlock();
      return 0;
    }
    if (r != 0) {
      list_del(&w.list);
      sem->lock.unlock();
      return r;  // -EINTR or -ETIME
    }
  }
}

int down_state(semaphore* sem, unsigned state, long timeout) noexcept {
  sem->lock.lock();
  if (sem->count > 0) {  // count > 0 => nobody queued: taking it jumps no sleeper
    --sem->count;
    sem->lock.unlock();
    return 0;
  }
  return down_common(sem, state, timeout);
}

}  // namespace

void sema_init(semaphore* sem, unsigned val) noexcept {
  std::destroy_at(sem);
  std::construct_at(sem, val);
}

void down(semaphore* sem) noexcept {
  might_sleep();
  (void)down_state(sem, TASK_UNINTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT);
}

int down_interruptible(semaphore* sem) noexcept {
  might_sleep();
  return down_state(sem, TASK_INTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT);
}

int down_killable(semaphore* sem) noexcept {
  might_sleep();
  return down_state(sem, TASK_KILLABLE, MAX_SCHEDULE_TIMEOUT);
}

int down_timeout(semaphore* sem, long timeout) noexcept {
  might_sleep();
  return down_state(sem, TASK_UNINTERRUPTIBLE, timeout);
}

int down_trylock(semaphore* sem) noexcept {
  spin_guard<spinlock_t> g(sem->lock);
  if (sem->count == 0) return 1;
  --sem->count;
  return 0;
}

void up(semaphore* sem) noexcept {
  spin_guard<spinlock_t> g(sem->lock);
  if (list_empty(&sem->wait_list)) {
    ++sem->count;
    return;
  }
  semaphore_waiter* w = first_waiter(sem);
  list_del(&w->list);
  w->up.store(1, std::memory_order_release);  // hand-off: count stays 0
  // Under the lock: the sleeper returns only after taking the lock, so w is still alive here.
  futex_wake(w->up, 1);
}

}  // namespace kprim
