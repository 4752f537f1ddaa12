// Behaviour of seqcount_t and seqlock_t (kprim/seqlock.hpp): readers never keep a torn value,
// and the sequence is odd exactly while a write is in progress. Part of test_rwlocks.
#include <kprim/seqlock.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

namespace {

using kprim::test::run_threads;
using kprim::test::sanitizer_slowdown;

// Seqlock: writers keep (x, 2x, ~x) consistent; readers copy the triple out through relaxed
// atomics and must never return a torn copy after read_seqretry() said it was stable.
TEST(Seqlock, ReadersNeverKeepATornValue) {
  kprim::seqlock_t sl;
  std::uint64_t x = 0, y = 0, z = ~std::uint64_t{0};
  std::atomic<std::uint64_t> torn{0}, retries{0}, reads{0};
  const unsigned writer_iters = 100000 / sanitizer_slowdown, reader_iters = 200000 / sanitizer_slowdown;
  const unsigned threads = kprim::test::oversubscribed_threads();
  auto load = [](std::uint64_t& v) { return std::atomic_ref<std::uint64_t>(v).load(std::memory_order_relaxed); };
  auto store = [](std::uint64_t& v, std::uint64_t n) {
    std::atomic_ref<std::uint64_t>(v).store(n, std::memory_order_relaxed);
  };
  run_threads(threads, [&](unsigned t) {
    if (t < 2) {
      for (unsigned i = 0; i < writer_iters; ++i) {
        kprim::write_seqlock(&sl);
        const std::uint64_t n = load(x) + 1;
        store(x, n);
        store(y, 2 * n);
        store(z, ~n);
        kprim::write_sequnlock(&sl);
      }
    } else {
      for (unsigned i = 0; i < reader_iters; ++i) {
        std::uint64_t a, b, c;
        std::uint32_t seq;
        do {
          seq = kprim::read_seqbegin(&sl);
          a = load(x);
          b = load(y);
          c = load(z);
          retries.fetch_add(1, std::memory_order_relaxed);
        } while (kprim::read_seqretry(&sl, seq));
        if (b != 2 * a || c != ~a) torn.fetch_add(1, std::memory_order_relaxed);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(reads.load(), std::uint64_t{threads - 2} * reader_iters);
  EXPECT_EQ(x, 2u * writer_iters);
  EXPECT_EQ(sl.seqcount.sequence.load() % 2, 0u);
}

TEST(Seqcount, SequenceIsOddOnlyInsideAWrite) {
  kprim::seqcount_t s;
  const std::uint32_t start = kprim::read_seqcount_begin(&s);
  EXPECT_FALSE(kprim::read_seqcount_retry(&s, start));
  kprim::write_seqcount_begin(&s);
  EXPECT_EQ(s.sequence.load() % 2, 1u);
  kprim::write_seqcount_end(&s);
  EXPECT_TRUE(kprim::read_seqcount_retry(&s, start));
  EXPECT_EQ(kprim::read_seqcount_begin(&s), start + 2);
}

}  // namespace
