// 1,024 live threads, oversubscribed on two CPUs (the process is confined to two of its
// allowed CPUs for each test): thread-slot ids stay unique and dense, per-CPU counters stay
// exact, and the qspinlock excludes and encodes slot ids up to 1,024 in its tail.
// Each thread does few operations, so every test ends in seconds, also under TSan.
#include <kprim/percpu.hpp>
#include <kprim/spinlock.hpp>
#include <kprim/thread_slot.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
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

/// Confines the test (and the threads it starts, which inherit the mask) to two CPUs, and
/// gives new threads 1 MiB stacks instead of 8 MiB (pthread_setattr_default_np, which
/// std::thread honours): ThreadSanitizer clears a finished thread's whole stack shadow, which
/// at 8 MiB made thread start and exit dominate these tests.
class Scale1024 : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pthread_getattr_default_np(&saved_attr_), 0);
    pthread_attr_t small;
    ASSERT_EQ(::pthread_getattr_default_np(&small), 0);
    ASSERT_EQ(::pthread_attr_setstacksize(&small, 1024 * 1024), 0);
    ASSERT_EQ(::pthread_setattr_default_np(&small), 0);
    ::pthread_attr_destroy(&small);
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
  void TearDown() override {
    ::sched_setaffinity(0, sizeof saved_, &saved_);
    ::pthread_setattr_default_np(&saved_attr_);
    ::pthread_attr_destroy(&saved_attr_);
  }

 private:
  cpu_set_t saved_;
  pthread_attr_t saved_attr_;
};

/// The lock word, read whole (qspinlock is a standard-layout class whose only member is its
/// qspinlock_word, so the two are pointer-interconvertible).
std::uint32_t word_of(kprim::qspinlock& l) {
  return std::atomic_ref<std::uint32_t>(reinterpret_cast<kprim::qspinlock_word*>(&l)->val)
      .load(std::memory_order_acquire);
}

// One set of 1,024 threads goes through every phase (starting a thread is what costs under
// ThreadSanitizer: about 10 ms each on the reference VM), the phases separated by latches so
// that all 1,024 are alive in each:
//   1. each claims its thread slot;
//   2. each adds to two per-CPU counters with this_cpu_inc / this_cpu_add;
//   3. all contend on one qspinlock around a critical section that detects overlap;
//   4. while this thread holds a second qspinlock, the thread with the highest slot queues on
//      it, and the tail this thread reads back decodes to that slot.
TEST_F(Scale1024, SlotsPerCpuAndQspinlockWith1024LiveThreads) {
  static_assert(std::is_standard_layout_v<kprim::qspinlock>);
  constexpr unsigned kPerCpuOps = 64, kLockOps = 16;
  const unsigned mine = kprim::this_thread_slot();
  std::vector<unsigned> slot(kThreads);
  kprim::per_cpu<std::uint64_t> hits(0), adds(0);
  kprim::qspinlock lock, held;
  kprim::test::protected_state st;
  std::latch live(kThreads), slots_known(kThreads + 1), counted(kThreads), locked(kThreads);
  std::atomic<unsigned> chosen{~0u};  // the slot that is to queue on `held`
  std::atomic<bool> queued_done{false};

  held.lock();  // phase 4's lock, held by this thread throughout phases 1-3
  std::vector<std::thread> ts;
  ts.reserve(kThreads);
  for (unsigned t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      live.arrive_and_wait();
      // 1. Slots.
      slot[t] = kprim::this_thread_slot();
      EXPECT_EQ(kprim::this_thread_slot(), slot[t]);  // stable within the thread
      slots_known.arrive_and_wait();
      // 2. Per-CPU counters, yielding now and then to migrate and interleave.
      for (unsigned i = 0; i < kPerCpuOps; ++i) {
        kprim::this_cpu_inc(hits);
        kprim::this_cpu_add(adds, std::uint64_t{t} + 1);
        if (i % 16 == 0) std::this_thread::yield();
      }
      counted.arrive_and_wait();
      // 3. Mutual exclusion.
      for (unsigned i = 0; i < kLockOps; ++i) {
        lock.lock();
        st.critical_section();
        lock.unlock();
      }
      locked.arrive_and_wait();
      // 4. The highest slot queues behind `held`; the others are done.
      unsigned c;
      while ((c = chosen.load(std::memory_order_acquire)) == ~0u) std::this_thread::yield();
      if (c == slot[t]) {
        held.lock();
        held.unlock();
        queued_done.store(true, std::memory_order_release);
      }
    });

  slots_known.arrive_and_wait();
  {
    SCOPED_TRACE("thread slots");
    std::set<unsigned> ids(slot.begin(), slot.end());
    ids.insert(mine);
    EXPECT_EQ(ids.size(), kThreads + 1) << "a slot id was handed to two live threads";
    // Dense: the live threads of this process (this one and the 1,024) hold exactly 0..1024.
    EXPECT_EQ(*ids.begin(), 0u);
    EXPECT_EQ(*ids.rbegin(), kThreads);
  }
  const unsigned high = *std::max_element(slot.begin(), slot.end());
  EXPECT_GE(high, kThreads - 1);                  // 1,024 distinct live slots reach at least 1,023
  chosen.store(high, std::memory_order_release);  // read only after phase 3
  // Wait (bounded, generously: only a hang fails) for the chosen thread's tail to appear.
  std::uint32_t seen = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (((seen = word_of(held)) & kprim::qspin::tail_mask) == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  {
    SCOPED_TRACE("qspinlock tail");
    EXPECT_EQ((seen >> kprim::qspin::tail_slot_offset) - 1, high) << std::hex << seen;
    EXPECT_EQ((seen >> kprim::qspin::tail_idx_offset) & (kprim::qspin::max_nodes - 1), 0u);
    EXPECT_EQ(seen & kprim::qspin::locked_mask, kprim::qspin::locked_val);
    EXPECT_FALSE(queued_done.load());
  }
  held.unlock();
  for (auto& th : ts) th.join();

  EXPECT_TRUE(queued_done.load());
  EXPECT_EQ(word_of(held), 0u);  // the last waiter cleared the tail
  {
    SCOPED_TRACE("per-CPU counters");
    EXPECT_EQ(kprim::per_cpu_sum(hits), std::uint64_t{kThreads} * kPerCpuOps);
    EXPECT_EQ(kprim::per_cpu_sum(adds), std::uint64_t{kPerCpuOps} * kThreads * (kThreads + 1) / 2);
  }
  {
    SCOPED_TRACE("qspinlock exclusion");
    EXPECT_EQ(st.violations.load(), 0u);
    EXPECT_EQ(st.count, std::uint64_t{kThreads} * kLockOps);
    EXPECT_FALSE(lock.is_locked());
  }
  // Exited threads gave their slots back: a new thread gets the lowest free id again.
  unsigned next = ~0u;
  std::thread([&] { next = kprim::this_thread_slot(); }).join();
  EXPECT_EQ(next, mine == 0 ? 1u : 0u);
}

TEST(QspinlockTail, EverySlotIdUpToTheLimitFits) {
  // slot + 1 occupies bits 18-31 without touching locked, pending or the node index.
  for (unsigned s : {0u, 255u, 1023u, 1024u, kprim::max_thread_slots - 1}) {
    const std::uint32_t tail = (s + 1) << kprim::qspin::tail_slot_offset;
    EXPECT_EQ((tail & kprim::qspin::tail_mask) >> kprim::qspin::tail_slot_offset, s + 1);
    EXPECT_EQ(tail & kprim::qspin::locked_pending_mask, 0u);
  }
  static_assert(kprim::max_thread_slots >= 1024);
}

}  // namespace
