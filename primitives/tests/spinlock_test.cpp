// Behaviour of the spinlock family (kprim/spinlock.hpp): mutual exclusion under
// oversubscription, trylock semantics, the qspinlock queue, the kernel API and guards.
#include <kprim/spinlock.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace {

using kprim::test::protected_state;
using kprim::test::run_threads;
using kprim::test::sanitizer_slowdown;

template <class L>
struct SpinlockTest : ::testing::Test {};

// Locks whose waiting loops yield: safe to oversubscribe. The pure-spin qspinlock is the
// kernel's loop, tested at one thread per core only (oversubscribed it waits out time slices).
template <class L>
constexpr bool oversubscribe = true;
template <>
constexpr bool oversubscribe<kprim::basic_qspinlock<kprim::spin_policy::spin>> = false;
template <>
constexpr bool oversubscribe<kprim::basic_ticket_spinlock<kprim::spin_policy::spin>> = false;

// Strict FIFO hands the lock to descheduled waiters when oversubscribed (a scheduler wait per
// hand-over, with or without yielding: bench_locks locks/contended/kprim_ticket at 2x and 4x
// nproc threads): fewer rounds.
template <class L>
constexpr unsigned stress_iters = 200000;
template <>
constexpr unsigned stress_iters<kprim::ticket_spinlock> = 4000;
// The pure-spin lock burns whole time slices whenever its holder is descheduled (the
// stress yields inside the critical section on purpose): a short run.
template <>
constexpr unsigned stress_iters<kprim::basic_qspinlock<kprim::spin_policy::spin>> = 2000;
// The pure-spin ticket lock waits in smp_cond_load_acquire() (WFE on arm64): FIFO and
// pure spin together, the shortest run.
template <>
constexpr unsigned stress_iters<kprim::basic_ticket_spinlock<kprim::spin_policy::spin>> = 1000;

using Locks = ::testing::Types<kprim::qspinlock, kprim::basic_qspinlock<kprim::spin_policy::spin>,
                               kprim::basic_qspinlock<kprim::spin_policy::virt>, kprim::ticket_spinlock,
                               kprim::basic_ticket_spinlock<kprim::spin_policy::spin>,
                               kprim::tas_spinlock, kprim::ttas_spinlock>;
TYPED_TEST_SUITE(SpinlockTest, Locks);

TYPED_TEST(SpinlockTest, MutualExclusionUnderOversubscription) {
  TypeParam lock;
  protected_state st;
  const unsigned threads = oversubscribe<TypeParam> ? kprim::test::oversubscribed_threads()
                                                    : std::max(2u, std::thread::hardware_concurrency());
  const unsigned iters = stress_iters<TypeParam> / sanitizer_slowdown;
  run_threads(threads, [&](unsigned) {
    for (unsigned i = 0; i < iters; ++i) {
      kprim::spin_lock(&lock);
      st.critical_section();
      kprim::spin_unlock(&lock);
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(st.count, std::uint64_t{threads} * iters);
  EXPECT_FALSE(kprim::spin_is_locked(&lock));
}

TYPED_TEST(SpinlockTest, TrylockTakesAFreeLockOnlyOnce) {
  TypeParam lock;
  EXPECT_FALSE(kprim::spin_is_locked(&lock));
  ASSERT_TRUE(kprim::spin_trylock(&lock));
  EXPECT_TRUE(kprim::spin_is_locked(&lock));
  EXPECT_FALSE(kprim::spin_trylock(&lock));
  bool other = true;
  std::thread([&] { other = kprim::spin_trylock(&lock); }).join();
  EXPECT_FALSE(other);
  kprim::spin_unlock(&lock);
  EXPECT_FALSE(kprim::spin_is_locked(&lock));
  std::thread([&] {  // the taker unlocks: a lock handed to another thread is a bad unlock (lockdep, TSan)
    other = kprim::spin_trylock(&lock);
    if (other) kprim::spin_unlock(&lock);
  })
      .join();
  EXPECT_TRUE(other);
  EXPECT_FALSE(kprim::spin_is_locked(&lock));
}

TYPED_TEST(SpinlockTest, TrylockStressKeepsExclusion) {
  TypeParam lock;
  protected_state st;
  const unsigned iters = stress_iters<TypeParam> / 10 / sanitizer_slowdown;
  std::atomic<std::uint64_t> taken{0};
  run_threads(oversubscribe<TypeParam> ? 4 : 2, [&](unsigned t) {
    for (unsigned i = 0; i < iters; ++i) {
      if (t % 2 == 0) {
        kprim::spin_lock(&lock);
      } else if (!kprim::spin_trylock(&lock)) {
        continue;
      }
      st.critical_section();
      taken.fetch_add(1, std::memory_order_relaxed);
      kprim::spin_unlock(&lock);
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(st.count, taken.load());
}

TYPED_TEST(SpinlockTest, GuardsAreLockable) {
  TypeParam lock;
  {
    kprim::spin_guard g(lock);
    EXPECT_TRUE(lock.is_locked());
  }
  EXPECT_FALSE(lock.is_locked());
  {
    std::scoped_lock g(lock);
    EXPECT_TRUE(lock.is_locked());
  }
  EXPECT_FALSE(lock.is_locked());
  kprim::spin_lock_init(&lock);
  EXPECT_FALSE(lock.is_locked());
}

// Holding the lock while three threads arrive drives them through the pending byte and the
// MCS queue; all of them get the lock once the holder lets go.
TEST(Qspinlock, ContendersQueueBehindTheHolderAndAllGetIn) {
  kprim::qspinlock lock;
  lock.lock();
  std::atomic<unsigned> in{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      lock.lock();
      in.fetch_add(1);
      lock.unlock();
    });
  while (!lock.is_contended()) std::this_thread::yield();
  EXPECT_EQ(in.load(), 0u);
  lock.unlock();
  for (auto& t : ts) t.join();
  EXPECT_EQ(in.load(), 3u);
  EXPECT_FALSE(lock.is_locked());
}

}  // namespace
