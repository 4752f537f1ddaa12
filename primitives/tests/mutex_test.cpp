// Behaviour of kprim::mutex (kprim/mutex.hpp) and its OSQ: exclusion under oversubscription,
// trylock semantics, sleeping waiters, and hand-off to a waiter that keeps losing.
#include <kprim/mutex.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace {

using kprim::test::protected_state;
using kprim::test::run_threads;
using kprim::test::sanitizer_slowdown;

void wait_for_flags(const kprim::mutex& m, std::uintptr_t f) {
  while ((m.owner_word() & f) != f) std::this_thread::yield();
}

TEST(Mutex, MutualExclusionUnderOversubscription) {
  kprim::mutex m;
  protected_state st;
  const unsigned threads = kprim::test::oversubscribed_threads();
  const unsigned iters = 50000 / sanitizer_slowdown;
  run_threads(threads, [&](unsigned) {
    for (unsigned i = 0; i < iters; ++i) {
      kprim::mutex_lock(&m);
      st.critical_section();
      kprim::mutex_unlock(&m);
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(st.count, std::uint64_t{threads} * iters);
  EXPECT_FALSE(kprim::mutex_is_locked(&m));
  EXPECT_EQ(m.owner_word(), 0u);
}

// Long critical sections: waiters exhaust their spin budget and sleep on the futex.
TEST(Mutex, SleepersAreWokenAndKeepExclusion) {
  kprim::mutex m;
  protected_state st;
  const unsigned iters = 300 / sanitizer_slowdown;
  run_threads(6, [&](unsigned) {
    for (unsigned i = 0; i < iters; ++i) {
      kprim::mutex_guard g(m);
      st.critical_section();
      for (int k = 0; k < 20000; ++k) kprim::cpu_relax();
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(st.count, 6u * iters);
  EXPECT_EQ(m.owner_word(), 0u);
}

TEST(Mutex, TrylockTakesAFreeLockOnlyOnce) {
  kprim::mutex m;
  ASSERT_TRUE(kprim::mutex_trylock(&m));
  EXPECT_TRUE(kprim::mutex_is_locked(&m));
  EXPECT_FALSE(kprim::mutex_trylock(&m));
  bool other = true;
  std::thread([&] { other = kprim::mutex_trylock(&m); }).join();
  EXPECT_FALSE(other);
  kprim::mutex_unlock(&m);
  EXPECT_FALSE(kprim::mutex_is_locked(&m));
  std::thread([&] {
    other = kprim::mutex_trylock(&m);
    if (other) kprim::mutex_unlock(&m);
  }).join();
  EXPECT_TRUE(other);
  std::scoped_lock g(m);  // Lockable
  EXPECT_TRUE(m.is_locked());
}

// A trylock succeeds on a lock that is free but still flagged WAITERS.
TEST(Mutex, TrylockTakesAFreeLockWithWaitersFlagged) {
  kprim::mutex m;
  m.lock();
  std::thread waiter([&] {
    m.lock();
    m.unlock();
  });
  wait_for_flags(m, kprim::mutex::flag_waiters);
  m.unlock();
  waiter.join();
  EXPECT_EQ(m.owner_word(), 0u);
}

// Hand-off, scripted: T sleeps as the first waiter; main unlocks and at once re-takes the
// lock (a steal). T wakes, loses, and sets HANDOFF; main's next unlock must give the lock to
// T, so T gets it after exactly two foreign acquisitions, before main's third lock returns.
TEST(Mutex, HandoffGivesTheLockToAStarvedWaiter) {
  kprim::mutex m;
  std::atomic<int> foreign{0};
  std::atomic<int> seen_by_waiter{-1};
  m.lock();
  foreign = 1;
  std::thread t([&] {
    m.lock();
    seen_by_waiter = foreign.load();
    m.unlock();
  });
  wait_for_flags(m, kprim::mutex::flag_waiters);  // T is on the wait list
  m.unlock();                                     // wakes T ...
  m.lock();                                       // ... and steals the lock back
  if (seen_by_waiter.load() != -1) {
    // T ran first and took the free lock before the steal: fine, and nothing to hand off.
    m.unlock();
    t.join();
    EXPECT_EQ(seen_by_waiter.load(), 1);
    return;
  }
  foreign = 2;
  wait_for_flags(m, kprim::mutex::flag_handoff);  // T woke, lost, asked for hand-off
  m.unlock();                                     // hands the lock to T
  m.lock();                                       // waits for T
  foreign = 3;
  m.unlock();
  t.join();
  EXPECT_EQ(seen_by_waiter.load(), 2);
  EXPECT_EQ(m.owner_word(), 0u);
}

// Every thread makes progress under a steady stream of lock stealers: each completes its
// share (a starved waiter would hang the test instead).
TEST(Mutex, EveryThreadFinishesUnderContention) {
  kprim::mutex m;
  std::uint64_t shared = 0;
  const unsigned iters = 20000 / sanitizer_slowdown;
  const unsigned threads = kprim::test::oversubscribed_threads();
  run_threads(threads, [&](unsigned) {
    for (unsigned i = 0; i < iters; ++i) {
      m.lock();
      ++shared;
      m.unlock();
    }
  });
  EXPECT_EQ(shared, std::uint64_t{threads} * iters);
}

TEST(Osq, OneSpinnerAtATime) {
  kprim::optimistic_spin_queue q;
  protected_state st;
  std::atomic<std::uint64_t> got{0};
  const unsigned iters = 20000 / sanitizer_slowdown;
  run_threads(4, [&](unsigned) {
    for (unsigned i = 0; i < iters; ++i) {
      if (!kprim::osq_lock(&q)) continue;  // gave up: unqueued, must not touch the state
      st.critical_section();
      got.fetch_add(1, std::memory_order_relaxed);
      kprim::osq_unlock(&q);
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(st.count, got.load());
  EXPECT_FALSE(kprim::osq_is_locked(&q));
}

}  // namespace
