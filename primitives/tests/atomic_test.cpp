// kprim/atomic.hpp: values of every operation, wrapping, the conditional ops, and the
// ordering guarantees that can be observed (the "never" direction only).
#include <kprim/atomic.hpp>
#include <kprim/testing/litmus.hpp>

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

TEST(Atomic, ReadSetInit) {
  atomic_t v = ATOMIC_INIT(3);
  EXPECT_EQ(atomic_read(&v), 3);
  atomic_set(&v, -4);
  EXPECT_EQ(atomic_read(&v), -4);
  atomic_set_release(&v, 8);
  EXPECT_EQ(atomic_read_acquire(&v), 8);
}

TEST(Atomic, NonValueReturningOps) {
  atomic_t v = ATOMIC_INIT(10);
  atomic_add(5, &v);
  EXPECT_EQ(atomic_read(&v), 15);
  atomic_sub(7, &v);
  EXPECT_EQ(atomic_read(&v), 8);
  atomic_inc(&v);
  EXPECT_EQ(atomic_read(&v), 9);
  atomic_dec(&v);
  EXPECT_EQ(atomic_read(&v), 8);
  atomic_or(0x3, &v);
  EXPECT_EQ(atomic_read(&v), 0xb);
  atomic_and(0x9, &v);
  EXPECT_EQ(atomic_read(&v), 0x9);
  atomic_andnot(0x1, &v);
  EXPECT_EQ(atomic_read(&v), 0x8);
  atomic_xor(0xc, &v);
  EXPECT_EQ(atomic_read(&v), 0x4);
}

TEST(Atomic, ReturnAndFetchVariants) {
  atomic_t v = ATOMIC_INIT(1);
  EXPECT_EQ(atomic_add_return(2, &v), 3);
  EXPECT_EQ(atomic_add_return_relaxed(2, &v), 5);
  EXPECT_EQ(atomic_add_return_acquire(2, &v), 7);
  EXPECT_EQ(atomic_add_return_release(2, &v), 9);
  EXPECT_EQ(atomic_sub_return(4, &v), 5);
  EXPECT_EQ(atomic_inc_return(&v), 6);
  EXPECT_EQ(atomic_dec_return_relaxed(&v), 5);
  EXPECT_EQ(atomic_fetch_add(10, &v), 5);
  EXPECT_EQ(atomic_fetch_sub_release(5, &v), 15);
  EXPECT_EQ(atomic_fetch_inc(&v), 10);
  EXPECT_EQ(atomic_fetch_dec_acquire(&v), 11);
  EXPECT_EQ(atomic_read(&v), 10);
  EXPECT_EQ(atomic_fetch_or(0x5, &v), 10);  // 0b1010 | 0b0101
  EXPECT_EQ(atomic_fetch_and(0x6, &v), 0xf);
  EXPECT_EQ(atomic_fetch_andnot_relaxed(0x2, &v), 0x6);
  EXPECT_EQ(atomic_fetch_xor(0x5, &v), 0x4);
  EXPECT_EQ(atomic_read(&v), 0x1);
}

TEST(Atomic, XchgCmpxchgTryCmpxchg) {
  atomic_t v = ATOMIC_INIT(1);
  EXPECT_EQ(atomic_xchg(&v, 2), 1);
  EXPECT_EQ(atomic_xchg_relaxed(&v, 3), 2);
  EXPECT_EQ(atomic_cmpxchg(&v, 3, 4), 3);  // success returns old
  EXPECT_EQ(atomic_cmpxchg(&v, 3, 5), 4);  // failure returns current, stores nothing
  EXPECT_EQ(atomic_read(&v), 4);
  int old = 4;
  EXPECT_TRUE(atomic_try_cmpxchg(&v, &old, 6));
  EXPECT_EQ(old, 4);
  old = 1;
  EXPECT_FALSE(atomic_try_cmpxchg_acquire(&v, &old, 7));
  EXPECT_EQ(old, 6);  // updated to what was seen
  EXPECT_TRUE(atomic_try_cmpxchg_release(&v, &old, 7));
  EXPECT_EQ(atomic_cmpxchg_relaxed(&v, 7, 8), 7);
}

TEST(Atomic, AndTestAndNegative) {
  atomic_t v = ATOMIC_INIT(2);
  EXPECT_FALSE(atomic_dec_and_test(&v));
  EXPECT_TRUE(atomic_dec_and_test(&v));
  EXPECT_TRUE(atomic_inc_and_test((atomic_set(&v, -1), &v)));
  atomic_set(&v, 5);
  EXPECT_TRUE(atomic_sub_and_test(5, &v));
  EXPECT_TRUE(atomic_add_negative(-1, &v));
  EXPECT_FALSE(atomic_add_negative(1, &v));
}

TEST(Atomic, ConditionalOps) {
  atomic_t v = ATOMIC_INIT(0);
  EXPECT_FALSE(atomic_inc_not_zero(&v));
  EXPECT_EQ(atomic_read(&v), 0);
  atomic_set(&v, 1);
  EXPECT_TRUE(atomic_inc_not_zero(&v));
  EXPECT_EQ(atomic_read(&v), 2);
  EXPECT_FALSE(atomic_add_unless(&v, 5, 2));
  EXPECT_TRUE(atomic_add_unless(&v, 5, 3));
  EXPECT_EQ(atomic_fetch_add_unless(&v, 1, 100), 7);
  EXPECT_EQ(atomic_fetch_add_unless(&v, 1, 8), 8);
  EXPECT_EQ(atomic_read(&v), 8);

  atomic_set(&v, 1);
  EXPECT_EQ(atomic_dec_if_positive(&v), 0);
  EXPECT_EQ(atomic_dec_if_positive(&v), -1);  // would go negative: not stored
  EXPECT_EQ(atomic_read(&v), 0);

  EXPECT_TRUE(atomic_inc_unless_negative(&v));
  atomic_set(&v, -1);
  EXPECT_FALSE(atomic_inc_unless_negative(&v));
  EXPECT_TRUE(atomic_dec_unless_positive(&v));
  EXPECT_EQ(atomic_read(&v), -2);
  atomic_set(&v, 1);
  EXPECT_FALSE(atomic_dec_unless_positive(&v));
}

TEST(Atomic, ArithmeticWrapsLikeTheKernel) {
  atomic_t v = ATOMIC_INIT(INT_MAX);
  EXPECT_EQ(atomic_inc_return(&v), INT_MIN);
  EXPECT_EQ(atomic_sub_return(1, &v), INT_MAX);
  atomic_set(&v, INT_MAX);
  EXPECT_EQ(atomic_fetch_add_unless(&v, 1, 0), INT_MAX);
  EXPECT_EQ(atomic_read(&v), INT_MIN);
  atomic_set(&v, INT_MIN);
  EXPECT_EQ(atomic_dec_if_positive(&v), INT_MAX);  // INT_MIN - 1 wraps positive: stored
  EXPECT_EQ(atomic_read(&v), INT_MAX);
}

TEST(Atomic64, SixtyFourBitValues) {
  atomic64_t v = ATOMIC64_INIT(0);
  const long long big = 1ll << 40;
  atomic64_add(big, &v);
  EXPECT_EQ(atomic64_read(&v), big);
  EXPECT_EQ(atomic64_fetch_add(big, &v), big);
  EXPECT_EQ(atomic64_add_return(1, &v), 2 * big + 1);
  EXPECT_EQ(atomic64_xchg(&v, -big), 2 * big + 1);
  long long old = -big;
  EXPECT_TRUE(atomic64_try_cmpxchg(&v, &old, big));
  EXPECT_TRUE(atomic64_inc_not_zero(&v));
  EXPECT_EQ(atomic64_dec_if_positive(&v), big);
  EXPECT_EQ(alignof(atomic64_t), 8u);
}

TEST(AtomicLong, LongSizedValues) {
  atomic_long_t v = ATOMIC_LONG_INIT(LONG_MAX - 1);
  EXPECT_EQ(atomic_long_inc_return(&v), LONG_MAX);
  EXPECT_EQ(atomic_long_inc_return(&v), LONG_MIN);
  EXPECT_TRUE(atomic_long_add_negative(0, &v));
  atomic_long_set(&v, 1);
  EXPECT_TRUE(atomic_long_dec_and_test(&v));
  EXPECT_EQ(atomic_long_fetch_or_acquire(6, &v), 0);
}

TEST(AtomicConcurrency, IncrementsAreNeverLost) {
  atomic_t v = ATOMIC_INIT(0);
  atomic64_t w = ATOMIC64_INIT(0);
  constexpr int threads = 4, per = 50000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per; ++i) {
        atomic_inc(&v);
        atomic64_add_return_relaxed(2, &w);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(atomic_read(&v), threads * per);
  EXPECT_EQ(atomic64_read(&w), 2ll * threads * per);
}

TEST(AtomicConcurrency, FetchAddHandsOutUniqueTickets) {
  atomic_t next = ATOMIC_INIT(0);
  constexpr int threads = 4, per = 20000;
  std::vector<std::vector<int>> got(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) got[t].push_back(atomic_fetch_inc(&next));
    });
  for (auto& t : ts) t.join();
  std::vector<char> seen(threads * per, 0);
  for (auto& g : got)
    for (int x : g) {
      ASSERT_GE(x, 0);
      ASSERT_LT(x, threads * per);
      ASSERT_EQ(seen[x]++, 0) << "ticket " << x << " handed out twice";
    }
}

TEST(AtomicConcurrency, CmpxchgLoopAddsExactly) {
  atomic_t v = ATOMIC_INIT(0);
  constexpr int threads = 4, per = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per; ++i) {
        int old = atomic_read(&v);
        while (!atomic_try_cmpxchg_relaxed(&v, &old, old + 3)) {
        }
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(atomic_read(&v), 3 * threads * per);
}

// Ordering, "never" direction only: release/acquire message passing and a fully ordered
// RMW in store buffering.
TEST(AtomicOrdering, SetReleaseReadAcquireNeverLosesTheMessage) {
  constexpr std::size_t n = KPRIM_TSAN ? 20000 : 200000;
  litmus::slots s(n);
  std::vector<atomic_t> flag(n);
  std::size_t ran = litmus::run(
      s, n, std::chrono::seconds(3),
      [&](litmus::slots& v, std::size_t i) {
        write_once(v.x[i], 42);
        atomic_set_release(&flag[i], 1);
      },
      [&](litmus::slots& v, std::size_t i) {
        v.r0[i] = atomic_read_acquire(&flag[i]);
        v.r1[i] = read_once(v.x[i]);
      });
  std::size_t bad = 0;
  for (std::size_t i = 0; i < ran; ++i) bad += (s.r0[i] == 1 && s.r1[i] != 42);
  EXPECT_EQ(bad, 0u) << "over " << ran << " iterations";
}

TEST(AtomicOrdering, FullyOrderedXchgForbidsStoreBuffering) {
  constexpr std::size_t n = KPRIM_TSAN ? 20000 : 200000;
  litmus::slots s(n);
  std::vector<atomic_t> x(n), y(n);
  std::size_t ran = litmus::run(
      s, n, std::chrono::seconds(3),
      [&](litmus::slots& v, std::size_t i) {
        (void)atomic_xchg(&x[i], 1);
        v.r0[i] = atomic_read(&y[i]);
      },
      [&](litmus::slots& v, std::size_t i) {
        atomic_inc(&y[i]);
        smp_mb__after_atomic();
        v.r1[i] = atomic_read(&x[i]);
      });
  std::size_t bad = 0;
  for (std::size_t i = 0; i < ran; ++i) bad += (s.r0[i] == 0 && s.r1[i] == 0);
  EXPECT_EQ(bad, 0u) << "over " << ran << " iterations";
}

}  // namespace
