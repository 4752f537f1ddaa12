// A 1,024-thread trial (the sweep's 4x nproc on a 256-PU machine) of a trivial workload
// completes on this machine: every worker starts, is released, stops and is joined.
#include <kprim/bench/harness.hpp>
#include <kprim/bench/topology.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace kb = kprim::bench;

namespace {

struct trivial {
  std::atomic<std::uint64_t> n{0};
  void acquire(kb::worker&) noexcept { n.fetch_add(1, std::memory_order_relaxed); }
  // Yielding: 1,024 runnable threads on two CPUs must not starve the driver's wake-up.
  void release(kb::worker&) noexcept { std::this_thread::yield(); }
  std::string check(std::uint64_t total) const {
    return n.load() == total ? std::string() : "operation count does not match the workload's";
  }
};

TEST(HarnessScale, ThousandTwentyFourThreadTrialCompletes) {
  kb::trial_config cfg;
  cfg.threads = 1024;
  static_assert(1024 <= kb::max_trial_threads);
  cfg.duration = std::chrono::milliseconds(2);
  cfg.drain_limit = std::chrono::seconds(60);  // a watchdog, not an expectation
  trivial w;
  const kb::trial_result r = kb::run_trial(cfg, w);
  ASSERT_FALSE(r.abandoned);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.ops.size(), 1024u);
  EXPECT_EQ(r.total(), w.n.load());
  EXPECT_GT(r.total(), 0u);
}

}  // namespace
