// Behaviour of kprim::semaphore (kprim/semaphore.hpp): counting under oversubscription,
// down_trylock's 0/1 convention, FIFO hand-off, down_timeout, interruptible/killable downs.
#include <kprim/semaphore.hpp>

#include "lock_stress.hpp"
#include "sleepwake_test.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using kprim::test::eventually;
using kprim::test::kill_wait;

unsigned sleepers(kprim::semaphore& s) {
  std::lock_guard g(s.lock);
  unsigned n = 0;
  for (kprim::list_head* p = s.wait_list.next; p != &s.wait_list; p = p->next) ++n;
  return n;
}

TEST(Semaphore, CountsUnitsUnderOversubscription) {
  constexpr unsigned kUnits = 3;
  DEFINE_SEMAPHORE(sem, kUnits);
  std::atomic<unsigned> inside{0}, max_inside{0};
  const unsigned iters = 20000 / kprim::test::sanitizer_slowdown;
  kprim::test::run_threads(kprim::test::oversubscribed_threads(), [&](unsigned) {
    for (unsigned i = 0; i < iters; ++i) {
      kprim::semaphore_guard g(sem);
      const unsigned now = inside.fetch_add(1) + 1;
      unsigned m = max_inside.load();
      while (now > m && !max_inside.compare_exchange_weak(m, now)) {
      }
      inside.fetch_sub(1);
    }
  });
  EXPECT_LE(max_inside.load(), kUnits);
  EXPECT_EQ(sem.count(), kUnits);
  EXPECT_EQ(sleepers(sem), 0u);
}

// The lock-free fast paths meet the queue: threads take units by down(), down_trylock() and
// down_timeout() (which gives up after 1 ms, clearing SEM_WAITERS when it was the last sleeper)
// while units come back with up(). A unit lost in a hand-off or counted twice shows as a wrong
// final count, more holders than units, or a sleeper left behind (a hang, ctest's timeout).
TEST(Semaphore, UnitsConservedWhenSleepersGiveUp) {
  constexpr unsigned kUnits = 2;
  DEFINE_SEMAPHORE(sem, kUnits);
  std::atomic<unsigned> inside{0}, max_inside{0}, timeouts{0};
  const unsigned iters = 20000 / kprim::test::sanitizer_slowdown;
  kprim::test::run_threads(kprim::test::oversubscribed_threads(), [&](unsigned tid) {
    for (unsigned i = 0; i < iters; ++i) {
      bool got = true;
      switch ((tid + i) % 3) {
        case 0:
          kprim::down(&sem);
          break;
        case 1:
          got = kprim::down_trylock(&sem) == 0;
          break;
        default:
          got = kprim::down_timeout(&sem, 1) == 0;
          if (!got) timeouts.fetch_add(1);
      }
      if (!got) continue;
      const unsigned now = inside.fetch_add(1) + 1;
      unsigned m = max_inside.load();
      while (now > m && !max_inside.compare_exchange_weak(m, now)) {
      }
      inside.fetch_sub(1);
      kprim::up(&sem);
    }
  });
  EXPECT_LE(max_inside.load(), kUnits);
  EXPECT_EQ(sem.count(), kUnits);
  EXPECT_EQ(sleepers(sem), 0u);
  EXPECT_EQ(sem.state.load() & kprim::SEM_WAITERS, 0u) << "no sleeper, no waiters flag";
}

TEST(Semaphore, TrylockConvention) {
  kprim::semaphore sem;
  kprim::sema_init(&sem, 1);
  EXPECT_EQ(kprim::down_trylock(&sem), 0);
  EXPECT_EQ(kprim::down_trylock(&sem), 1) << "1 means failure, as in the kernel";
  kprim::up(&sem);
  EXPECT_EQ(sem.count(), 1u);
}

// Sleepers queued one by one (each observed asleep before the next starts) are served in
// that order by successive up() calls; a newcomer's trylock cannot steal a handed-over unit.
TEST(Semaphore, FifoHandOff) {
  DEFINE_SEMAPHORE(sem, 0);
  constexpr unsigned kWaiters = 6;
  std::vector<unsigned> order;
  std::mutex order_mu;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < kWaiters; ++i) {
    ts.emplace_back([&, i] {
      kprim::down(&sem);
      std::lock_guard g(order_mu);
      order.push_back(i);
    });
    eventually([&] { return sleepers(sem) == i + 1; });
  }
  for (unsigned i = 0; i < kWaiters; ++i) {
    kprim::up(&sem);
    EXPECT_EQ(kprim::down_trylock(&sem), 1) << "the unit went to a sleeper, not to count";
    eventually([&] {
      std::lock_guard g(order_mu);
      return order.size() == i + 1;
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(order.size(), kWaiters);
  for (unsigned i = 0; i < kWaiters; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(sem.count(), 0u);
}

// up() adds its unit with one fetch_add and only then takes the lock to hand it to the queued
// sleeper; in that window the unit sits in count with SEM_WAITERS set. A down_trylock() loop
// racing every up() must never take it: each unit goes to the sleeper queued for it.
TEST(Semaphore, FastPathsNeverStealPastSleeper) {
  DEFINE_SEMAPHORE(sem, 0);
  const unsigned rounds = 200 / kprim::test::sanitizer_slowdown;
  std::atomic<bool> stop{false};
  std::atomic<unsigned> stolen{0}, served{0};
  std::thread thief([&] {
    while (!stop.load(std::memory_order_relaxed))
      if (kprim::down_trylock(&sem) == 0) stolen.fetch_add(1);
  });
  for (unsigned i = 0; i < rounds; ++i) {
    std::thread sleeper([&] {
      kprim::down(&sem);
      served.fetch_add(1);
    });
    eventually([&] { return sleepers(sem) == 1; });
    kprim::up(&sem);
    eventually([&] { return served.load() == i + 1 || stolen.load() != 0; });
    if (served.load() != i + 1) {  // the thief took it: stop the thief, free the sleeper
      stop.store(true);
      thief.join();
      kprim::up(&sem);
    }
    sleeper.join();
    if (stolen.load() != 0) break;
  }
  stop.store(true);
  if (thief.joinable()) thief.join();
  EXPECT_EQ(stolen.load(), 0u) << "a trylock took a unit meant for a queued sleeper";
  EXPECT_EQ(served.load(), rounds);
  EXPECT_EQ(sem.state.load() & kprim::SEM_WAITERS, 0u);
}

TEST(Semaphore, DownTimeoutHonoured) {
  DEFINE_SEMAPHORE(sem, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(kprim::down_timeout(&sem, kprim::msecs_to_jiffies(50)), -ETIME);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 5050ms);
  EXPECT_EQ(sleepers(sem), 0u);
  kprim::up(&sem);
  EXPECT_EQ(kprim::down_timeout(&sem, 1), 0);
  EXPECT_EQ(sem.count(), 0u);
}

class SemSignal : public ::testing::TestWithParam<bool> {};

TEST_P(SemSignal, InterruptibleReturnsEintrAndTakesNothing) {
  kprim::test::sigusr1_handler h(GetParam());
  DEFINE_SEMAPHORE(sem, 0);
  const long r = kprim::test::interrupt_wait([&] { return kprim::down_interruptible(&sem); });
  EXPECT_EQ(r, -EINTR);
  EXPECT_EQ(sleepers(sem), 0u);
  kprim::up(&sem);
  EXPECT_EQ(sem.count(), 1u) << "no stale waiter received the unit";
  EXPECT_EQ(kprim::down_trylock(&sem), 0);
}

TEST_P(SemSignal, KillableOnlyOnFatal) {
  kprim::test::sigusr1_handler h(GetParam());
  DEFINE_SEMAPHORE(sem, 0);
  EXPECT_EQ(kill_wait([&] { return kprim::down_killable(&sem); }, [&] { return sleepers(sem) == 1; }),
            -EINTR);
  EXPECT_EQ(sleepers(sem), 0u);
  EXPECT_EQ(sem.count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(SaRestart, SemSignal, ::testing::Bool(),
                         [](const auto& i) { return i.param ? "with_SA_RESTART" : "without_SA_RESTART"; });

}  // namespace
