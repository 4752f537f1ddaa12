// Behaviour of kprim::mutex (kprim/mutex.hpp) and its OSQ: exclusion under oversubscription,
// trylock semantics, sleeping waiters, and hand-off to a waiter that keeps losing.
#include <kprim/mutex.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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

// Hand-off, scripted: T sleeps as the first waiter; main keeps unlocking (which wakes T) and
// at once re-taking the lock (a steal). Once T has waited past the starvation bound it asks for
// HANDOFF on its next loss; main's next unlock must then give the lock to T, so T sees the
// value main wrote before that unlock, never a later one.
TEST(Mutex, HandoffGivesTheLockToAStarvedWaiter) {
  kprim::mutex m;
  std::atomic<int> foreign{0};
  std::atomic<int> seen_by_waiter{-1};
  m.lock();
  std::thread t([&] {
    m.lock();
    seen_by_waiter = foreign.load();
    m.unlock();
  });
  wait_for_flags(m, kprim::mutex::flag_waiters);  // T is on the wait list
  int steals = 0;
  while (!(m.owner_word() & kprim::mutex::flag_handoff)) {
    foreign = ++steals;
    m.unlock();  // wakes T ...
    m.lock();    // ... and steals the lock back (or waits for T, if T got in first)
    if (seen_by_waiter.load() != -1) {
      // T ran first and took the free lock before the steal: fine, and nothing to hand off.
      m.unlock();
      t.join();
      EXPECT_EQ(seen_by_waiter.load(), steals);
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  foreign = -2;
  m.unlock();  // HANDOFF is set: hands the lock to T
  m.lock();    // waits for T
  foreign = -3;
  m.unlock();
  t.join();
  EXPECT_EQ(seen_by_waiter.load(), -2);
  EXPECT_EQ(m.owner_word(), 0u);
}

// An unlock that wakes the first waiter clears WAITERS (the owner's next unlocks stay on the
// fast path); the woken waiter, taking the lock with another still queued, must set it again,
// or that other one would never be woken. Two sleepers behind main's lock: whichever gets the
// lock first sees WAITERS in the owner word, the second sees no flags at all.
TEST(Mutex, WokenWaiterRestoresWaitersForTheOnesBehind) {
  kprim::mutex m;
  std::atomic<int> order{0};
  std::uintptr_t word_of[2] = {1, 1};
  const std::uint64_t sleeps_before = kprim::mutex_stat_read().sleeps;
  m.lock();
  auto waiter = [&] {
    m.lock();
    const std::uintptr_t self = reinterpret_cast<std::uintptr_t>(kprim::current());
    word_of[order.fetch_add(1)] = m.owner_word() ^ self;  // the flags while we own it
    m.unlock();
  };
  std::thread a(waiter), b(waiter);
  // Both asleep (or about to be: counted just before the futex wait).
  while (kprim::mutex_stat_read().sleeps < sleeps_before + 2) std::this_thread::yield();
  EXPECT_EQ(order.load(), 0);
  m.unlock();
  a.join();
  b.join();
  ASSERT_EQ(order.load(), 2);
  EXPECT_TRUE(word_of[0] & kprim::mutex::flag_waiters) << std::hex << word_of[0];
  EXPECT_EQ(word_of[1], 0u) << std::hex << word_of[1];
  EXPECT_EQ(m.owner_word(), 0u);
}

// The slow-path counters move with contention: sleepers count sleeps, their unlocker wake-ups.
TEST(Mutex, StatCountsSleepsAndWakeups) {
  const kprim::mutex_stat before = kprim::mutex_stat_read();
  kprim::mutex m;
  m.lock();
  std::thread t([&] {
    m.lock();
    m.unlock();
  });
  while (kprim::mutex_stat_read().sleeps == before.sleeps) std::this_thread::yield();
  m.unlock();
  t.join();
  const kprim::mutex_stat after = kprim::mutex_stat_read();
  EXPECT_GE(after.slowpath, before.slowpath + 1);
  EXPECT_GE(after.unlock_slowpath, before.unlock_slowpath + 1);
  EXPECT_GE(after.wakeups, before.wakeups + 1);
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
