// Out-of-line kprim::semaphore (kprim/semaphore.hpp, where the state word, its invariant and
// every transition are drawn; the lock-free fast paths are inline there). kernel/locking/
// semaphore.c takes the spinlock for every operation; here the lock is taken only to queue,
// hand over, or leave. Sleepers wait on their own futex word, so up() wakes exactly one thread.
#include <kprim/semaphore.hpp>

#include <sched.h>

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

// `empty`, under the lock after unlinking a waiter: no sleeper left => SEM_WAITERS off, which
// frees any units up()s added meanwhile (they find W clear under the lock and leave them).
// Relaxed: up()'s fetch_add release heads a release sequence this RMW continues.
void waiter_gone(semaphore* sem) noexcept {
  if (list_empty(&sem->wait_list)) sem->state.fetch_and(~SEM_WAITERS, std::memory_order_relaxed);
}

// The optimistic phase (kprim/semaphore.hpp; the kernel mutex's optimistic spinning, without
// an owner to watch): poll for a free unit for a bounded time before queueing, so that fewer
// downs sleep and fewer up()s must hand off to a sleeper. true: a unit was taken. Tuned on
// bench_sleepwake counting at 8 threads on 2 vCPUs: without it ~1e-3 to 3e-3 hand-offs per op
// (0.19x sem_t's throughput, quiet); 256 rounds (a few us) and 8 yields: ~2e-5 (loaded machine,
// approximate); 1024 and 32 bought nothing more.
// The yields matter under oversubscription: the unit's holder is often runnable, not running.
constexpr unsigned kSpin = kSemSpin, kYield = kSemYield;

bool optimistic_down(semaphore* sem) noexcept {
  std::uint32_t v;
  for (unsigned i = 0; i < kSpin; ++i) {
    cpu_relax();
    v = sem->state.load(std::memory_order_relaxed);
    if (detail::sem_take(sem, v)) return true;
  }
  for (unsigned i = 0; i < kYield; ++i) {
    sched_yield();
    v = sem->state.load(std::memory_order_relaxed);
    if (detail::sem_take(sem, v)) return true;
  }
  return false;
}

}  // namespace

namespace detail {

int down_slowpath(semaphore* sem, unsigned state, long timeout) noexcept {
  const wait_deadline dl(timeout);
  if (optimistic_down(sem)) return 0;
  semaphore_waiter w;
  sem->lock.lock();
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  for (;;) {
    if (sem_take(sem, v)) {  // `take`: an up() got in before the lock, nobody queued
      sem->lock.unlock();
      return 0;
    }
    if (v & SEM_WAITERS) break;  // (c, 1): queue behind the others
    // `queue` (0, 0) -> (0, 1); fails, and we retry, if a fast up() adds a unit now.
    if (sem->state.compare_exchange_weak(v, SEM_WAITERS, std::memory_order_relaxed, std::memory_order_relaxed))
      break;
  }
  list_add_tail(&w.list, &sem->wait_list);
  sem->nr_sleeps.store(sem->nr_sleeps.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sem->lock.unlock();
  const int r = sleep_on_word(w.up, state, dl);
  if (r == 0) return 0;  // handed a unit; up()'s release pairs with sleep_on_word's acquire
  sem->lock.lock();
  // up() sets w.up under this lock, so this read decides: handed a unit, or still queued.
  if (w.up.load(std::memory_order_acquire) == 0) {
    list_del(&w.list);
    waiter_gone(sem);
    sem->lock.unlock();
    return r;  // -EINTR or -ETIME
  }
  sem->lock.unlock();
  return 0;
}

void up_slowpath(semaphore* sem) noexcept {
  std::uint32_t* word;
  {
    spin_guard<spinlock_t> g(sem->lock);
    const std::uint32_t v = sem->state.load(std::memory_order_relaxed);
    // (c, 0): the last sleeper left before we locked, and `empty` freed our unit. (0, 1): our
    // unit was converted by an earlier locker, or taken while W was clear, before a newcomer
    // queued; each unit is handed once, and W set means list non-empty.
    if (!(v & SEM_WAITERS) || v < SEM_UNIT) return;
    sem->state.fetch_sub(SEM_UNIT, std::memory_order_relaxed);  // `hand`: (c, 1) -> (c-1, 1)
    semaphore_waiter* w = first_waiter(sem);
    list_del(&w->list);
    waiter_gone(sem);
    word = reinterpret_cast<std::uint32_t*>(&w->up);
    w->up.store(1, std::memory_order_release);  // the hand-off; the last touch of w
    sem->nr_handoffs.store(sem->nr_handoffs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  futex_wake_at(word, 1);
}

}  // namespace detail

void sema_init(semaphore* sem, unsigned val) noexcept {
  std::destroy_at(sem);
  std::construct_at(sem, val);
}

}  // namespace kprim
