// 1,024 live threads, oversubscribed on two CPUs (the process is confined to two of its
// allowed CPUs for each test): thread-slot ids stay unique and dense, per-CPU counters stay
// exact, and the qspinlock excludes and encodes slot ids up to 1,024 in its tail.
// Each thread does few operations, so every test ends in seconds, also under TSan.
#include <kprim/percpu.hpp>
#include <kprim/spinlock.hpp>
#include <kprim/thread_slot.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <set>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kThreads = 1024;

/// Confines the test (and the threads it starts, which inherit the mask) to two CPUs.
class Scale1024 : public ::testing::Test {
 protected:
  void SetUp() override {
    CPU_ZERO(&saved_);
    ASSERT_EQ(::sched_getaffinity(0, sizeof saved_, &saved_), 0);
    cpu_set_t two;
    CPU_ZERO(&two);
    for (int c = 0, n = 0; c < CPU_SETSIZE && n < 2; ++c)
      if (CPU_ISSET(c, &saved_)) {
        CPU_SET(c, &two);
        ++n;
      }
    ASSERT_EQ(::sched_setaffinity(0, sizeof two, &two), 0);
  }
  void TearDown() override { ::sched_setaffinity(0, sizeof saved_, &saved_); }

 private:
  cpu_set_t saved_;
};

/// Start n threads running body(tid); each first arrives at `all_live`, so body runs only once
/// all n exist at the same time. Joins them.
template <class Body>
void run_live(unsigned n, Body body) {
  std::latch all_live(n);
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (unsigned t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      all_live.arrive_and_wait();
      body(t);
    });
  for (auto& th : ts) th.join();
}

TEST_F(Scale1024, ThreadSlotsUniqueAndDense) {
  const unsigned mine = kprim::this_thread_slot();
  std::vector<unsigned> slot(kThreads);
  std::latch claimed(kThreads);
  run_live(kThreads, [&](unsigned t) {
    slot[t] = kprim::this_thread_slot();
    EXPECT_EQ(kprim::this_thread_slot(), slot[t]);  // stable within the thread
    claimed.arrive_and_wait();  // every slot held at once before any thread exits
  });
  std::set<unsigned> ids(slot.begin(), slot.end());
  ids.insert(mine);
  ASSERT_EQ(ids.size(), kThreads + 1) << "a slot id was handed to two live threads";
  // Dense: the live threads of this process (this one and the 1,024) hold exactly 0..1024.
  EXPECT_EQ(*ids.begin(), 0u);
  EXPECT_EQ(*ids.rbegin(), kThreads);
  // Exited threads gave theirs back: a new thread gets the lowest free id again.
  unsigned next = ~0u;
  std::thread([&] { next = kprim::this_thread_slot(); }).join();
  EXPECT_EQ(next, mine == 0 ? 1u : 0u);
}

TEST_F(Scale1024, PerCpuCountersExact) {
  constexpr unsigned kOps = 64;
  kprim::per_cpu<std::uint64_t> hits(0), adds(0);
  run_live(kThreads, [&](unsigned t) {
    for (unsigned i = 0; i < kOps; ++i) {
      kprim::this_cpu_inc(hits);
      kprim::this_cpu_add(adds, std::uint64_t{t} + 1);
      if (i % 16 == 0) std::this_thread::yield();  // migrate and interleave on purpose
    }
  });
  EXPECT_EQ(kprim::per_cpu_sum(hits), std::uint64_t{kThreads} * kOps);
  EXPECT_EQ(kprim::per_cpu_sum(adds), std::uint64_t{kOps} * kThreads * (kThreads + 1) / 2);
}

TEST_F(Scale1024, QspinlockExcludes) {
  constexpr unsigned kOps = 16;
  kprim::qspinlock lock;
  kprim::test::protected_state st;
  run_live(kThreads, [&](unsigned) {
    for (unsigned i = 0; i < kOps; ++i) {
      lock.lock();
      st.critical_section();
      lock.unlock();
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(st.count, std::uint64_t{kThreads} * kOps);
  EXPECT_FALSE(lock.is_locked());
}

/// The lock word, read whole (qspinlock is a standard-layout class whose only member is its
/// qspinlock_word, so the two are pointer-interconvertible).
std::uint32_t word_of(kprim::qspinlock& l) {
  return std::atomic_ref<std::uint32_t>(reinterpret_cast<kprim::qspinlock_word*>(&l)->val)
      .load(std::memory_order_acquire);
}

TEST_F(Scale1024, QspinlockTailHoldsSlotsUpTo1024) {
  static_assert(std::is_standard_layout_v<kprim::qspinlock>);
  kprim::qspinlock lock;
  std::vector<unsigned> slot(kThreads);
  std::atomic<unsigned> chosen{~0u};  // the slot that is to queue, once every slot is known
  std::latch claimed(kThreads + 1);
  std::atomic<bool> done{false};
  std::uint32_t seen = 0;
  std::thread driver([&] {
    run_live(kThreads, [&](unsigned t) {
      slot[t] = kprim::this_thread_slot();
      claimed.arrive_and_wait();
      // The thread with the highest slot queues behind the held lock; the others wait.
      unsigned c;
      while ((c = chosen.load(std::memory_order_acquire)) == ~0u) std::this_thread::yield();
      if (c == slot[t]) {
        lock.lock();
        lock.unlock();
        done.store(true, std::memory_order_release);
      }
    });
  });
  lock.lock();  // held by this thread: the chosen thread must queue
  claimed.arrive_and_wait();
  const unsigned high = *std::max_element(slot.begin(), slot.end());
  EXPECT_GE(high, kThreads - 1);  // 1,024 distinct live slots reach at least 1,023
  chosen.store(high, std::memory_order_release);
  // Wait (bounded, generously: only a hang fails) for the queued tail to appear.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (((seen = word_of(lock)) & kprim::qspin::tail_mask) == 0 &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
  const unsigned tail_slot = (seen >> kprim::qspin::tail_slot_offset) - 1;
  const unsigned tail_idx = (seen >> kprim::qspin::tail_idx_offset) & (kprim::qspin::max_nodes - 1);
  EXPECT_EQ(tail_slot, high) << std::hex << seen;
  EXPECT_EQ(tail_idx, 0u);
  EXPECT_EQ(seen & kprim::qspin::locked_mask, kprim::qspin::locked_val);
  EXPECT_FALSE(done.load());
  lock.unlock();
  driver.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(word_of(lock), 0u);  // the last waiter cleared the tail
  // Every slot id up to the limit fits the 14-bit field: slot + 1 round-trips.
  for (unsigned s : {0u, 255u, 1023u, 1024u, kprim::max_thread_slots - 1}) {
    const std::uint32_t tail = (s + 1) << kprim::qspin::tail_slot_offset;
    EXPECT_EQ((tail & kprim::qspin::tail_mask) >> kprim::qspin::tail_slot_offset, s + 1);
    EXPECT_EQ(tail & kprim::qspin::locked_pending_mask, 0u);
  }
}

}  // namespace
