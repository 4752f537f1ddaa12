// Behaviour of kprim/percpu_counter.hpp: exact sums under self-migration and oversubscription
// (unit, mixed-sign and over-batch amounts), monotonic concurrent sums, the read() error bound,
// compare and set - on the detected path and with the atomic fallback forced.
#include <kprim/percpu_counter.hpp>

#include "percpu_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace {

using kprim::percpu_counter;
using kprim::test::oversubscribed_threads;
using kprim::test::run_migrating;
using kprim::test::sanitizer_slowdown;

const unsigned iters = 300000 / sanitizer_slowdown;

class PercpuCounter : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { kprim::percpu_force_atomic(GetParam()); }
  void TearDown() override { kprim::percpu_force_atomic(false); }
};

std::int64_t error_bound() {
  return kprim::percpu_counter_batch() * static_cast<std::int64_t>(kprim::nr_cpu_ids());
}

TEST_P(PercpuCounter, SingleThread) {
  percpu_counter c(10);
  EXPECT_EQ(kprim::percpu_counter_sum(c), 10);
  for (int i = 0; i < 1000; ++i) kprim::percpu_counter_inc(c);
  kprim::percpu_counter_sub(c, 5);
  kprim::percpu_counter_dec(c);
  EXPECT_EQ(kprim::percpu_counter_sum(c), 1004);
  EXPECT_LT(std::abs(kprim::percpu_counter_read(c) - 1004), error_bound());
  EXPECT_EQ(kprim::percpu_counter_compare(c, 1004), 0);
  EXPECT_EQ(kprim::percpu_counter_compare(c, 1003), 1);
  EXPECT_EQ(kprim::percpu_counter_compare(c, 1 << 30), -1);
  kprim::percpu_counter_add(c, 1 << 20);  // beyond any batch: folds at once
  EXPECT_EQ(kprim::percpu_counter_sum(c), 1004 + (1 << 20));
  kprim::percpu_counter_set(c, -7);
  EXPECT_EQ(kprim::percpu_counter_sum(c), -7);
  EXPECT_EQ(kprim::percpu_counter_read(c), -7);
  EXPECT_EQ(kprim::percpu_counter_read_positive(c), 0);
  EXPECT_EQ(kprim::percpu_counter_sum_positive(c), 0);
}

// Adds of 1, -1, 3 and occasionally more than a batch, from threads that re-pin themselves.
// Meanwhile a reader checks that the exact sum of an increment-only counter never goes back.
TEST_P(PercpuCounter, ExactSumUnderMigration) {
  percpu_counter mixed, up;
  const unsigned threads = oversubscribed_threads();
  const std::int64_t big = 5 * kprim::percpu_counter_batch();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> regressions{0};
  std::thread reader([&] {
    std::int64_t last = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const std::int64_t s = kprim::percpu_counter_sum(up);
      if (s < last) regressions.fetch_add(1);
      last = s;
      std::this_thread::yield();
    }
  });
  run_migrating(threads, iters, 256, [&](unsigned, unsigned i) {
    kprim::percpu_counter_inc(up);
    switch (i % 4) {
      case 0:
        kprim::percpu_counter_add(mixed, 3);
        break;
      case 1:
        kprim::percpu_counter_dec(mixed);
        break;
      case 2:
        kprim::percpu_counter_add(mixed, i % 1024 == 2 ? big : -1);
        break;
      default:
        kprim::percpu_counter_add_batch(mixed, -1, 8);
        break;
    }
  });
  stop.store(true);
  reader.join();
  std::int64_t expect_mixed = 0;
  for (unsigned i = 0; i < iters; ++i)
    expect_mixed += i % 4 == 0 ? 3 : (i % 4 == 3 || i % 4 == 1 || i % 1024 != 2) ? -1
                                                                                 : big;
  expect_mixed *= threads;
  const std::int64_t expect_up = std::int64_t{threads} * iters;
  EXPECT_EQ(kprim::percpu_counter_sum(up), expect_up);
  EXPECT_EQ(kprim::percpu_counter_sum(mixed), expect_mixed);
  EXPECT_EQ(regressions.load(), 0u);
  EXPECT_LT(std::abs(kprim::percpu_counter_read(up) - expect_up), error_bound());
  EXPECT_LT(std::abs(kprim::percpu_counter_read(mixed) - expect_mixed), error_bound());
  EXPECT_EQ(kprim::percpu_counter_compare(up, expect_up), 0);
}

// Signals land inside the bounded-add sequence (and the fold's exchange): restarts must
// neither lose nor repeat an add. Runs until a few restarts happened (bounded by signals).
TEST(PercpuCounterRseq, SignalRestartsKeepSumExact) {
  if (kprim::percpu_live_path() != kprim::percpu_path::rseq)
    GTEST_SKIP() << "rseq path not live: " << kprim::percpu_path_name();
  percpu_counter c;
  std::int64_t done = 0;
  const std::uint64_t before = kprim::percpu_rseq_aborts();
  const unsigned sent = kprim::test::signal_storm(
      [&](const std::atomic<bool>& stop) {
        std::int64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          kprim::percpu_counter_add(c, 3);
          n += 3;
        }
        done = n;
      },
      [&](unsigned sent) { return sent >= 100 && kprim::percpu_rseq_aborts() - before >= 3; }, 50000);
  EXPECT_GE(kprim::percpu_rseq_aborts() - before, 3u) << "after " << sent << " signals";
  EXPECT_EQ(kprim::percpu_counter_sum(c), done);
}

INSTANTIATE_TEST_SUITE_P(DetectedAndForced, PercpuCounter, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "forced_atomic" : "detected"; });

}  // namespace
