// Harness pieces: fairness arithmetic, histogram percentiles, sampling stride, option parsing,
// benchmark names, and trials that end on time even when a lock never hands over.
#include <kprim/bench/harness.hpp>
#include <kprim/bench/registry.hpp>

#include <gtest/gtest.h>

#include <sched.h>

#include <memory>
#include <string>
#include <vector>
#include <thread>

namespace kb = kprim::bench;
using namespace std::chrono_literals;

namespace {

kb::trial_result with_ops(std::vector<std::uint64_t> ops) {
  kb::trial_result r;
  r.ops = std::move(ops);
  r.trial_s = 0.5;
  return r;
}

TEST(Fairness, EqualSharesAreFair) {
  auto r = with_ops({100, 100, 100, 100});
  EXPECT_DOUBLE_EQ(r.fairness(), 1.0);
  EXPECT_DOUBLE_EQ(r.share_min(), 1.0);
  EXPECT_DOUBLE_EQ(r.share_max(), 1.0);
  EXPECT_EQ(r.total(), 400u);
  EXPECT_DOUBLE_EQ(r.ops_per_s(), 800.0);
}

TEST(Fairness, OneThreadDoingEverythingScoresOneOverN) {
  auto r = with_ops({400, 0, 0, 0});
  EXPECT_DOUBLE_EQ(r.fairness(), 0.25);
  EXPECT_DOUBLE_EQ(r.share_min(), 0.0);
  EXPECT_DOUBLE_EQ(r.share_max(), 4.0);
}

TEST(Fairness, JainIndexOfUnevenShares) {
  auto r = with_ops({1, 3});  // (1+3)^2 / (2 * (1+9)) = 0.8
  EXPECT_NEAR(r.fairness(), 0.8, 1e-12);
  EXPECT_NEAR(r.share_min(), 0.5, 1e-12);
  EXPECT_NEAR(r.share_max(), 1.5, 1e-12);
}

TEST(Fairness, NoOperationsIsZeroNotNaN) {
  auto r = with_ops({0, 0});
  EXPECT_EQ(r.fairness(), 0.0);
  EXPECT_EQ(r.share_max(), 0.0);
}

TEST(Histogram, BucketsCoverEveryValueWithBoundedError) {
  using H = kb::latency_histogram;
  unsigned prev = 0;
  for (std::uint64_t v = 0; v < (1u << 20); v += 1 + v / 64) {
    const unsigned i = H::index_of(v);
    EXPECT_GE(i, prev) << v;  // monotone
    prev = i;
    EXPECT_GE(H::upper_bound_of(i), v) << v;
    if (i > 0) {
      EXPECT_LT(H::upper_bound_of(i - 1), v) << v;
    }
    EXPECT_LE(static_cast<double>(H::upper_bound_of(i) - v), 0.0625 * static_cast<double>(v) + 1.0) << v;
  }
  EXPECT_EQ(H::index_of(~std::uint64_t{0}), H::bucket_count - 1);
}

TEST(Histogram, PercentilesOfAUniformRange) {
  kb::latency_histogram h;
  for (std::uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.max(), 10000u);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.5)), 5000.0, 5000.0 * 0.0625);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 9900.0, 9900.0 * 0.0625);
  EXPECT_EQ(h.percentile(1.0), 10000u);
  EXPECT_LE(h.percentile(0.999), 10000u);
}

TEST(Histogram, EmptyAndMerged) {
  kb::latency_histogram a, b;
  EXPECT_EQ(a.percentile(0.5), 0u);
  for (int i = 0; i < 90; ++i) a.record(10);
  for (int i = 0; i < 10; ++i) b.record(1000000);
  a.merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.percentile(0.5), 10u);
  EXPECT_GE(a.percentile(0.95), 1000000u * 15 / 16);
  EXPECT_EQ(a.max(), 1000000u);
}

TEST(Sampling, StrideKeepsClockCostUnderTwoPercent) {
  for (double clock : {15.0, 40.0, 100.0}) {
    for (double per_op : {1.0, 3.0, 20.0, 300.0, 5000.0}) {
      const auto s = kb::sample_stride(clock, per_op);
      EXPECT_EQ(s & (s - 1), 0u) << "power of two";
      EXPECT_LE(clock / (static_cast<double>(s) * per_op), 0.02 + 1e-12) << clock << " " << per_op;
    }
  }
  EXPECT_EQ(kb::sample_stride(20.0, 1e6), 1u);  // slow operations: time every one
}

TEST(Options, ParsesAndRemovesKprimFlags) {
  std::string a0 = "bench", a1 = "--kprim_trial_ms=50", a2 = "--benchmark_filter=x", a3 = "--kprim_threads=1,4,16",
              a4 = "--kprim_pin=spread", a5 = "--kprim_cs=10";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), a5.data(), nullptr};
  int argc = 6;
  kb::options o;
  std::string err;
  ASSERT_TRUE(kb::parse_options(argc, argv, o, err)) << err;
  EXPECT_EQ(argc, 2);
  EXPECT_STREQ(argv[1], "--benchmark_filter=x");
  EXPECT_EQ(o.trial_ms, 50u);
  EXPECT_EQ(o.threads, (std::vector<unsigned>{1, 4, 16}));
  EXPECT_EQ(o.pin, kb::pin_policy::spread);
  EXPECT_EQ(o.cs, 10u);
}

TEST(Options, RejectsBadValuesAndUnknownFlagsWithOneLine) {
  for (const char* bad : {"--kprim_trial_ms=0", "--kprim_trial_ms=abc", "--kprim_threads=1,,2", "--kprim_threads=",
                          "--kprim_pin=diagonal", "--kprim_locks=0", "--kprim_frobnicate=1", "--kprim_gap=-1"}) {
    std::string a0 = "bench", a1 = bad;
    char* argv[] = {a0.data(), a1.data(), nullptr};
    int argc = 2;
    kb::options o;
    std::string err;
    EXPECT_FALSE(kb::parse_options(argc, argv, o, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
    EXPECT_EQ(err.find('\n'), std::string::npos) << bad;
  }
}

TEST(Names, SplitIntoFamilyWorkloadContenderAndKeyValueParameters) {
  kb::case_id id{"locks", "contended", "std_mutex", 8, {{"cs", "0"}, {"gap", "10"}, {"locks", "1"}}};
  EXPECT_EQ(id.name(), "locks/contended/std_mutex/threads:8/cs:0/gap:10/locks:1");
  // The grammar of results/SCHEMA.md: three plain fields, then key:value fields only.
  std::vector<std::string> parts;
  std::string name = id.name();
  for (std::size_t at = 0;;) {
    const auto slash = name.find('/', at);
    parts.push_back(name.substr(at, slash - at));
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  ASSERT_EQ(parts.size(), 7u);
  EXPECT_EQ(parts[0], "locks");
  EXPECT_EQ(parts[1], "contended");
  EXPECT_EQ(parts[2], "std_mutex");
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(parts[i].find(':'), std::string::npos);
  for (std::size_t i = 3; i < parts.size(); ++i) EXPECT_NE(parts[i].find(':'), std::string::npos) << parts[i];
}

/// Counts operations itself, so the harness's per-thread counts can be checked.
struct counting {
  std::atomic<std::uint64_t> n{0};
  void acquire(kb::worker&) { n.fetch_add(1, std::memory_order_relaxed); }
  void release(kb::worker&) {}
  std::string check(std::uint64_t total) const {
    return total == n.load() ? std::string{} : "count mismatch";
  }
};

TEST(Trial, CountsEveryOperationAndSamplesLatency) {
  kb::trial_config cfg;
  cfg.threads = 3;
  cfg.duration = 30ms;
  counting w;
  auto r = kb::run_trial(cfg, w);
  ASSERT_FALSE(r.abandoned);
  EXPECT_EQ(r.error, "");
  ASSERT_EQ(r.ops.size(), 3u);
  EXPECT_EQ(r.total(), w.n.load());
  EXPECT_GT(r.total(), 0u);
  EXPECT_GT(r.lat.count(), 0u);
  EXPECT_LE(r.lat.count(), r.total());
  EXPECT_GE(r.trial_s, 0.030);
}

/// A test-and-set lock whose holder re-takes it at once: it rarely hands over, so under
/// oversubscription most threads starve for the whole trial. The trial still ends.
struct hog_lock {
  std::atomic<bool> held{false};
  void acquire(kb::worker&) {
    while (held.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
  }
  void release(kb::worker&) { held.store(false, std::memory_order_release); }
};

TEST(Trial, UnfairLockUnderOversubscriptionStopsOnTime) {
  kb::trial_config cfg;
  cfg.threads = 4 * std::max(1u, std::thread::hardware_concurrency());
  cfg.duration = 50ms;
  hog_lock w;
  const auto t0 = kb::clock::now();
  auto r = kb::run_trial(cfg, w);
  const auto elapsed = kb::clock::now() - t0;
  EXPECT_FALSE(r.abandoned);
  EXPECT_LT(elapsed, cfg.duration + cfg.drain_limit);
  EXPECT_GT(r.total(), 0u);
}

/// A lock that never hands over: whoever gets it first keeps it, the others wait forever.
/// The watchdog must give up on them and the trial must still return.
struct never_hands_over {
  std::atomic<bool> taken{false};
  std::atomic<bool>* released;  // set by the test once the trial returned, freeing the workers
  void acquire(kb::worker&) {
    bool expect = false;
    if (taken.compare_exchange_strong(expect, true)) return;  // first taker: holds it forever
    while (!released->load()) std::this_thread::sleep_for(1ms);
  }
  void release(kb::worker&) {
    while (!released->load()) std::this_thread::sleep_for(1ms);  // the holder never lets go
  }
};

TEST(Trial, WatchdogAbandonsWorkersOfALockThatNeverHandsOver) {
  static std::atomic<bool> released{false};
  static never_hands_over hog;  // static: abandoned workers may still use it after the test
  auto* w = &hog;
  w->released = &released;
  kb::trial_config cfg;
  cfg.threads = 3;
  cfg.duration = 20ms;
  cfg.drain_limit = 100ms;
  const auto t0 = kb::clock::now();
  auto r = kb::run_trial(cfg, *w);
  const auto elapsed = kb::clock::now() - t0;
  EXPECT_TRUE(r.abandoned);
  EXPECT_GE(r.drain_s, 0.1);
  EXPECT_LT(elapsed, 5s);
  released = true;  // let the detached workers finish before the process exits
  std::this_thread::sleep_for(50ms);
}

TEST(Pinning, CompactAndSpreadBindAThreadToExactlyOnePU) {
  for (auto policy : {kb::pin_policy::compact, kb::pin_policy::spread}) {
    for (unsigned tid : {0u, 1u, 7u}) {
      int cpus = -1;
      bool ok = false;
      std::thread([&] {
        ok = kb::pin_current_thread(policy, tid);
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
      }).join();
      EXPECT_TRUE(ok);
      EXPECT_EQ(cpus, 1) << "tid " << tid;
    }
  }
  EXPECT_TRUE(kb::pin_current_thread(kb::pin_policy::none, 0));  // none: leaves placement alone
}

struct broken {
  void acquire(kb::worker&) {}
  void release(kb::worker&) {}
  std::string check(std::uint64_t) const { return "overlap seen"; }
};

TEST(Trial, InvariantViolationsComeBackAsErrors) {
  kb::trial_config cfg;
  cfg.duration = 5ms;
  broken w;
  EXPECT_EQ(kb::run_trial(cfg, w).error, "overlap seen");
}

/// Keeps every run Google Benchmark reports, prints nothing.
struct capture : benchmark::BenchmarkReporter {
  std::vector<Run> runs;
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& r) override { runs.insert(runs.end(), r.begin(), r.end()); }
};

/// Runs the registered benchmarks whose names match `filter` (a GB regex) into `c`.
void run_benchmarks(const std::string& filter, benchmark::BenchmarkReporter& c) {
  benchmark::RunSpecifiedBenchmarks(&c, filter);
}

TEST(Registry, ControlRegistersTheContenderAndItsAATwin) {
  kb::trial_config cfg;
  cfg.duration = 5ms;
  kb::register_control(kb::case_id{"test", "control", "tas", 1, {{"cs", "0"}}}, cfg,
                       [] { return std::make_unique<counting>(); });
  capture c;
  run_benchmarks("^test/control/", c);
  std::vector<std::string> names;
  for (const auto& r : c.runs) names.push_back(r.benchmark_name());
  EXPECT_EQ(names, (std::vector<std::string>{"test/control/tas/threads:1/cs:0/iterations:1/manual_time",
                                             "test/control/tas_aa/threads:1/cs:0/iterations:1/manual_time"}));
  for (const auto& r : c.runs) {
    EXPECT_FALSE(r.error_occurred) << r.error_message;
    EXPECT_GT(r.counters.at("ops").value, 0.0);
  }
}

}  // namespace
