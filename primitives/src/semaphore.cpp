// Out-of-line kprim::semaphore (kprim/semaphore.hpp). kernel/locking/semaphore.c takes the
// spinlock for every operation; here the count has lock-free fast paths while nobody sleeps
// (what makes sem_t cheap), and the lock is taken only to queue, hand over, or leave. Sleepers
// wait on their own futex word, so up() wakes exactly one thread.
#include <kprim/semaphore.hpp>

#include <sched.h>

#include <cstddef>
#include <memory>

namespace kprim {

namespace {

constexpr std::uint32_t kUnit = 2;  // one unit in `state` (count lives above SEM_WAITERS)

// One sleeper, on its own stack, queued at the tail of wait_list.
struct semaphore_waiter {
  list_head list;
  std::atomic<std::uint32_t> up{0};  // 0 -> 1 by up() when it hands this sleeper the unit
};

semaphore_waiter* first_waiter(semaphore* sem) noexcept {
  return reinterpret_cast<semaphore_waiter*>(reinterpret_cast<char*>(sem->wait_list.next) -
                                             offsetof(semaphore_waiter, list));
}

// Take a unit if count > 0 (SEM_WAITERS is then clear by the invariant). v: the caller's view.
bool take_unit(semaphore* sem, std::uint32_t& v) noexcept {
  while (v >= kUnit)
    if (sem->state.compare_exchange_weak(v, v - kUnit, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}

// Under the lock, after unlinking a waiter: no sleeper left => SEM_WAITERS off (count is 0
// while it is set and no fast path writes then, so a plain store is enough).
void waiter_gone(semaphore* sem) noexcept {
  if (list_empty(&sem->wait_list)) sem->state.store(0, std::memory_order_relaxed);
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
    if (take_unit(sem, v)) return true;
  }
  for (unsigned i = 0; i < kYield; ++i) {
    sched_yield();
    v = sem->state.load(std::memory_order_relaxed);
    if (take_unit(sem, v)) return true;
  }
  return false;
}

[[gnu::cold, gnu::noinline]] int down_common(semaphore* sem, unsigned state, long timeout) noexcept {
  const detail::wait_deadline dl(timeout);
  if (optimistic_down(sem)) return 0;
  semaphore_waiter w;
  sem->lock.lock();
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  for (;;) {
    if (take_unit(sem, v)) {  // an up() got in before the lock
      sem->lock.unlock();
      return 0;
    }
    // count == 0: announce a sleeper (fails, and we retry, if a fast up() adds a unit now).
    if (v == SEM_WAITERS ||
        sem->state.compare_exchange_weak(v, SEM_WAITERS, std::memory_order_relaxed, std::memory_order_relaxed))
      break;
  }
  list_add_tail(&w.list, &sem->wait_list);
  sem->nr_sleeps.store(sem->nr_sleeps.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sem->lock.unlock();
  const int r = detail::sleep_on_word(w.up, state, dl);
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

int down_state(semaphore* sem, unsigned state, long timeout) noexcept {
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  if (take_unit(sem, v)) return 0;  // count > 0 => nobody queued: taking it jumps no sleeper
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
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  return take_unit(sem, v) ? 0 : 1;
}

void up(semaphore* sem) noexcept {
  std::uint32_t v = sem->state.load(std::memory_order_relaxed);
  while (!(v & SEM_WAITERS))  // nobody sleeps: count + 1 (release pairs with take_unit)
    if (sem->state.compare_exchange_weak(v, v + kUnit, std::memory_order_release, std::memory_order_relaxed))
      return;
  std::uint32_t* word;
  {
    spin_guard<spinlock_t> g(sem->lock);
    v = sem->state.load(std::memory_order_relaxed);
    if (!(v & SEM_WAITERS)) {  // the last sleeper left before we locked: back to count
      sem->state.fetch_add(kUnit, std::memory_order_release);
      return;
    }
    semaphore_waiter* w = first_waiter(sem);
    list_del(&w->list);
    waiter_gone(sem);
    word = reinterpret_cast<std::uint32_t*>(&w->up);
    w->up.store(1, std::memory_order_release);  // hand-off: count stays 0; the last touch of w
    sem->nr_handoffs.store(sem->nr_handoffs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  detail::futex_wake_at(word, 1);
}

}  // namespace kprim
