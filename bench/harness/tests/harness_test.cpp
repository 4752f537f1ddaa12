// Harness pieces: fairness arithmetic, histogram percentiles, sampling stride, option parsing,
// benchmark names, and trials that end on time even when a lock never hands over.
#include <kprim/bench/harness.hpp>
#include <kprim/bench/registry.hpp>
#include <kprim/bench/floor.hpp>
#include <kprim/bench/topology.hpp>
#include <kprim/testing/emulation.hpp>

#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <sstream>
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
                          "--kprim_pin=diagonal", "--kprim_locks=0", "--kprim_frobnicate=1", "--kprim_gap=-1",
                          "--kprim_inject=locks", "--kprim_inject", "--kprim_inject=locks:0", "--kprim_inject=locks:1000001",
                          "--kprim_inject=locks:x", "--kprim_inject=locks:", "--kprim_inject=:500", "--kprim_inject=(locks:500",
                          "--kprim_inject=a{2,1}:5", "--kprim_inject=locks:0.0", "--kprim_inject=locks:0.0001",
                          "--kprim_inject=locks:1.", "--kprim_inject=locks:.5", "--kprim_inject=locks:1e3",
                          "--kprim_inject=locks:%", "--kprim_inject=locks:0.05%", "--kprim_inject=locks:1001%",
                          "--kprim_inject=locks:-5%", "--kprim_inject=locks:5%%", "--kprim_inject=locks:x%"}) {
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

// A family's own flag (bench_slab's --kprim_malloc) is removed with the kprim flags; its
// parse() sees the last value given, or the fallback when none is, and its error is the line.
std::string g_family_value;
std::string parse_family_value(std::string_view v) {
  g_family_value = std::string(v);
  return v == "bad" ? "--kprim_colour expects red or blue (got 'bad')" : "";
}
constexpr kb::family_flag colour_flag[] = {{"--kprim_colour", "red", parse_family_value}};

TEST(Options, FamilyFlagsAreRemovedAndParsedOnceFromTheLastValueOrTheFallback) {
  {
    std::string a0 = "bench", a1 = "--kprim_colour=blue", a2 = "--benchmark_filter=x", a3 = "--kprim_colour=green";
    char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
    int argc = 4;
    kb::options o;
    std::string err;
    ASSERT_TRUE(kb::parse_options(argc, argv, o, err, colour_flag)) << err;
    EXPECT_EQ(argc, 2);
    EXPECT_STREQ(argv[1], "--benchmark_filter=x");
    EXPECT_EQ(g_family_value, "green");
  }
  {
    std::string a0 = "bench";
    char* argv[] = {a0.data(), nullptr};
    int argc = 1;
    kb::options o;
    std::string err;
    ASSERT_TRUE(kb::parse_options(argc, argv, o, err, colour_flag)) << err;
    EXPECT_EQ(g_family_value, "red");
  }
  {
    std::string a0 = "bench", a1 = "--kprim_colour=bad";
    char* argv[] = {a0.data(), a1.data(), nullptr};
    int argc = 2;
    kb::options o;
    std::string err;
    EXPECT_FALSE(kb::parse_options(argc, argv, o, err, colour_flag));
    EXPECT_EQ(err, "--kprim_colour expects red or blue (got 'bad')");
  }
  {  // without the family's flags it is an unknown kprim flag; the message names family flags
    std::string a0 = "bench", a1 = "--kprim_colour=blue", a2 = "--kprim_shade=1";
    char* argv[] = {a0.data(), a1.data(), nullptr};
    int argc = 2;
    kb::options o;
    std::string err;
    EXPECT_FALSE(kb::parse_options(argc, argv, o, err));
    char* argv2[] = {a0.data(), a2.data(), nullptr};
    argc = 2;
    EXPECT_FALSE(kb::parse_options(argc, argv2, o, err, colour_flag));
    EXPECT_NE(err.find("--kprim_colour"), std::string::npos) << err;
  }
}

// Contender tables walk their rows in order; fixed_string names join at compile time.
template <kb::fixed_string Name>
struct named_row {
  static constexpr auto name = Name;
};
TEST(ContenderTable, ForEachVisitsRowsInOrderAndNamesAreFixedStrings) {
  using rows = kb::contender_table<named_row<"a">, named_row<"bc">, named_row<"d">>;
  static_assert(rows::size == 3);
  std::string seen;
  rows::for_each([&]<class R>() { seen += std::string(R::name) + ","; });
  EXPECT_EQ(seen, "a,bc,d,");
  constexpr auto joined = kb::fixed_string("rcu_") + kb::fixed_string<5>::of(std::string_view("memb"));
  static_assert(std::string_view(joined) == "rcu_memb" && joined.size() == 8);
  const kb::case_id id{"f", "w", named_row<"bc">::name, 2, {}};
  EXPECT_EQ(id.name(), "f/w/bc/threads:2");
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

/// Records, per thread, how many operations it had done at each boundary() call: the gaps
/// between consecutive boundaries and the first and last positions.
template <std::uint64_t Every>
struct bounded {
  static constexpr std::uint64_t boundary_every = Every;
  struct alignas(64) per_thread {
    std::uint64_t ops = 0, boundaries = 0, first_at = ~std::uint64_t{0}, last_at = 0, max_gap = 0;
  };
  std::vector<per_thread> t;
  explicit bounded(unsigned n) : t(n) {}
  void boundary(kb::worker& w) {
    per_thread& p = t[w.tid];
    if (p.boundaries++ == 0) p.first_at = p.ops;
    else p.max_gap = std::max(p.max_gap, p.ops - p.last_at);
    p.last_at = p.ops;
  }
  void acquire(kb::worker& w) { ++t[w.tid].ops; }
  void release(kb::worker&) {}
};
static_assert(kb::boundary_workload<bounded<8>>);
static_assert(!kb::boundary_workload<counting>);

TEST(Trial, BoundaryHookRunsFirstLastAndAtMostEveryNOperations) {
  for (bool sample : {true, false}) {
    kb::trial_config cfg;
    cfg.threads = 3;  // more than the 2 vCPUs of the CI machine
    cfg.duration = 20ms;
    cfg.sample_latency = sample;
    bounded<37> w(cfg.threads);
    auto r = kb::run_trial(cfg, w);
    ASSERT_FALSE(r.abandoned);
    for (unsigned i = 0; i < cfg.threads; ++i) {
      const auto& p = w.t[i];
      SCOPED_TRACE(testing::Message() << "thread " << i << " sample_latency " << sample);
      EXPECT_EQ(p.ops, r.ops[i]);
      EXPECT_EQ(p.first_at, 0u);       // before the first operation
      EXPECT_EQ(p.last_at, r.ops[i]);  // after the last one
      EXPECT_LE(p.max_gap, 37u);
      // Every 37 operations (sampled ones may come sooner), plus the first and the last.
      EXPECT_GE(p.boundaries, r.ops[i] / 37 + 1);
    }
  }
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
  // Long enough that a worker is scheduled at least once on a loaded machine (at 5 ms a
  // thread descheduled for the whole trial read ops 0 at load 11).
  cfg.duration = 100ms;
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

namespace {

// ---- effective parallelism -------------------------------------------------------------

TEST(CpuUtil, WorkerCpuOverThreadsTimesWall) {
  EXPECT_DOUBLE_EQ(kb::cpu_utilisation(1.0, 2, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(kb::cpu_utilisation(0.5, 2, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(kb::cpu_utilisation(0.2, 8, 0.1), 0.25);  // 8 threads on 2 cores
  EXPECT_EQ(kb::cpu_utilisation(1.0, 0, 0.5), 0.0);
  EXPECT_EQ(kb::cpu_utilisation(1.0, 2, 0.0), 0.0);
  auto r = with_ops({10, 20});
  r.worker_cpu_s = 0.25;  // trial_s 0.5
  EXPECT_DOUBLE_EQ(r.cpu_util(), 0.25);
}

TEST(Steal, ParsesTheAggregateCpuLine) {
  const char* text =
      "cpu  4705 356 584 3699176 23060 0 10 200 7 0\n"
      "cpu0 1393280 32966 572056 13343292 6130 0 17875 100 0 0\n"
      "intr 1462898 0 0\n";
  kb::cpu_ticks t;
  ASSERT_TRUE(kb::parse_proc_stat(text, t));
  EXPECT_EQ(t.total, 4705u + 356 + 584 + 3699176 + 23060 + 0 + 10 + 200);  // guest is inside user
  EXPECT_EQ(t.steal, 200u);
  // An old kernel writes user nice system idle only: steal is 0.
  ASSERT_TRUE(kb::parse_proc_stat("cpu 1 2 3 4\n", t));
  EXPECT_EQ(t.total, 10u);
  EXPECT_EQ(t.steal, 0u);
  // The aggregate line need not come first; per-CPU lines are not it.
  ASSERT_TRUE(kb::parse_proc_stat("intr 5\ncpu0 9 9 9 9 9 9 9 9\ncpu\t1 1 1 1 1 1 1 3\n", t));
  EXPECT_EQ(t.steal, 3u);
  EXPECT_EQ(t.total, 10u);
  for (const char* bad : {"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu a b c d\n", "cpux 1 2 3 4\n"})
    EXPECT_FALSE(kb::parse_proc_stat(bad, t)) << bad;
}

TEST(Steal, PercentOfTheTicksBetweenTwoReadings) {
  EXPECT_DOUBLE_EQ(kb::steal_percent({1000, 10}, {1200, 30}), 10.0);
  EXPECT_DOUBLE_EQ(kb::steal_percent({1000, 10}, {1200, 10}), 0.0);
  EXPECT_EQ(kb::steal_percent({1000, 10}, {1000, 10}), 0.0);  // no tick in between
  EXPECT_EQ(kb::steal_percent({1000, 10}, {900, 20}), 0.0);   // went backwards
  EXPECT_EQ(kb::steal_percent({1000, 10}, {1100, 5}), 0.0);
  kb::cpu_ticks here;
  ASSERT_TRUE(kb::read_proc_stat(here));  // Linux
  EXPECT_GT(here.total, 0u);
}

TEST(CpuUtil, TrialRecordsItsWorkersCpuTime) {
  kb::trial_config cfg;
  cfg.threads = 2;
  cfg.duration = 30ms;
  counting w;
  auto r = kb::run_trial(cfg, w);
  ASSERT_FALSE(r.abandoned);
  EXPECT_GT(r.worker_cpu_s, 0.0);
  // Physics: a worker runs at most from the release to the end of the drain.
  EXPECT_LE(r.worker_cpu_s, cfg.threads * (r.trial_s + r.drain_s) + 0.002);
  EXPECT_GT(r.cpu_util(), 0.0);
  EXPECT_GE(r.steal_pct, 0.0);
  EXPECT_LE(r.steal_pct, 100.0);
}

// ---- reporters ---------------------------------------------------------------------------

using run = benchmark::BenchmarkReporter::Run;

run with_counters(std::initializer_list<std::pair<const char*, double>> c) {
  run r;
  r.time_unit = benchmark::kNanosecond;
  r.iterations = 1;
  r.real_accumulated_time = 1e-6;
  r.cpu_accumulated_time = 5e-3;  // the driver's CPU time: to be replaced
  for (const auto& [k, v] : c) r.counters[k] = v;
  return r;
}

TEST(Reporters, CpuTimeComesFromTheWorkersCounter) {
  std::vector<run> runs{with_counters({{kb::cpu_time_counter, 250.0}, {"ops", 10}}),
                        with_counters({{"ops", 10}})};
  runs.push_back(with_counters({{kb::cpu_time_counter, 300.0}}));
  runs.back().run_type = run::RT_Aggregate;
  runs.back().aggregate_name = "mean";
  runs.back().iterations = 3;  // an aggregate over 3 repetitions
  runs.push_back(with_counters({{kb::cpu_time_counter, 0.05}}));
  runs.back().run_type = run::RT_Aggregate;
  runs.back().aggregate_name = "cv";
  runs.back().aggregate_unit = benchmark::kPercentage;
  runs.back().iterations = 3;
  kb::finish_runs(runs);
  EXPECT_NEAR(runs[0].GetAdjustedCPUTime(), 250.0, 1e-9);
  EXPECT_EQ(runs[0].counters.count(kb::cpu_time_counter), 0u);
  EXPECT_EQ(runs[0].counters.at("ops").value, 10.0);
  EXPECT_DOUBLE_EQ(runs[1].cpu_accumulated_time, 5e-3);  // no counter: left as it was
  EXPECT_NEAR(runs[2].GetAdjustedCPUTime(), 300.0, 1e-9);
  EXPECT_DOUBLE_EQ(runs[3].cpu_accumulated_time, 0.05);
  for (const auto& r : runs) EXPECT_FALSE(r.error_occurred);
}

TEST(Reporters, NonFiniteValuesAreDropped) {
  std::vector<run> runs{with_counters({{"abandoned_cv", std::nan("")},
                                       {"big", std::numeric_limits<double>::infinity()},
                                       {"fine", 1.5}})};
  runs[0].real_accumulated_time = std::nan("");
  kb::finish_runs(runs);
  EXPECT_EQ(runs[0].counters.size(), 1u);
  EXPECT_EQ(runs[0].counters.at("fine").value, 1.5);
  EXPECT_EQ(runs[0].real_accumulated_time, 0.0);
}

TEST(Reporters, CountersNamedLikeGoogleBenchmarkFieldsAreRefused) {
  for (const char* field : {"threads", "iterations", "real_time", "cpu_time", "name", "repetitions",
                            "family_index", "error_message"}) {
    std::vector<run> runs{with_counters({{field, 2}, {"kprim_threads", 2}})};
    EXPECT_EQ(kb::reserved_counter(runs[0].counters), field);
    kb::finish_runs(runs);
    EXPECT_TRUE(runs[0].error_occurred) << field;
    EXPECT_NE(runs[0].error_message.find(std::string("'") + field + "'"), std::string::npos) << runs[0].error_message;
    EXPECT_EQ(runs[0].counters.count(field), 0u);
  }
  EXPECT_EQ(kb::reserved_counter(with_counters({{"kprim_threads", 2}, {"kprim_iterations", 1}}).counters), "");
}

/// Publishes a counter that would overwrite Google Benchmark's `iterations` field.
struct clashing : counting {
  void publish(benchmark::State& s, const kb::trial_result&) { s.counters["iterations"] = 7; }
};

TEST(Reporters, RegisterTrialRefusesAClashingCounterWithAnErrorNamingIt) {
  kb::trial_config cfg;
  cfg.duration = 2ms;
  kb::register_trial(kb::case_id{"test", "clash", "counting", 1, {}}, cfg, [] { return std::make_unique<clashing>(); });
  capture c;
  run_benchmarks("^test/clash/", c);
  ASSERT_EQ(c.runs.size(), 1u);
  EXPECT_TRUE(c.runs[0].error_occurred);
  EXPECT_NE(c.runs[0].error_message.find("'iterations'"), std::string::npos) << c.runs[0].error_message;
}

// A benchmark that is not a harness trial publishes the core counters through report_loop():
// manual time per operation and ops, ops_per_s, ns_per_op, kprim_threads, nothing else.
TEST(Reporters, ReportLoopSetsManualTimePerOperationAndTheCoreCounters) {
  benchmark::RegisterBenchmark("test/loop/counting/threads:2", [](benchmark::State& state) {
    for (auto _ : state) kb::report_loop(state, {4000, 0.002, 2});
  })->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
  capture c;
  run_benchmarks("^test/loop/", c);
  ASSERT_EQ(c.runs.size(), 1u);
  const auto& r = c.runs[0];
  ASSERT_FALSE(r.error_occurred) << r.error_message;
  EXPECT_NEAR(r.GetAdjustedRealTime(), 500.0, 1e-6);
  EXPECT_EQ(r.counters.size(), 4u);
  EXPECT_EQ(r.counters.at("ops").value, 4000.0);
  EXPECT_NEAR(r.counters.at("ops_per_s").value, 2e6, 1e-6);
  EXPECT_NEAR(r.counters.at("ns_per_op").value, 500.0, 1e-9);
  EXPECT_EQ(r.counters.at("kprim_threads").value, 2.0);
}

/// Sets Google Benchmark's repetitions for the scope of a test.
struct repetitions {
  explicit repetitions(int n) { set(n); }
  ~repetitions() { set(1); }
  static void set(int n) {
    // Initialize() keeps argv[0] as the executable name that JSONReporter::ReportContext
    // prints later: it must outlive this call (a local string was a dangling stack pointer).
    static char a0[] = "test";
    std::string a1 = "--benchmark_repetitions=" + std::to_string(n);
    char* argv[] = {a0, a1.data(), nullptr};
    int argc = 2;
    benchmark::Initialize(&argc, argv);
  }
};

TEST(Reporters, WrappedRunsCarryWorkersCpuTimeAndAggregatesOfIt) {
  kb::trial_config cfg;
  cfg.threads = 2;
  cfg.duration = 5ms;
  kb::register_trial(kb::case_id{"test", "cputime", "counting", 2, {}}, cfg, [] { return std::make_unique<counting>(); });
  repetitions three(3);
  auto inner = std::make_unique<capture>();
  capture& c = *inner;
  auto wrapped = kb::wrap_reporter(std::move(inner));
  run_benchmarks("^test/cputime/", *wrapped);
  std::vector<double> cpu;
  const run *mean = nullptr, *cv = nullptr;
  for (const auto& r : c.runs) {
    ASSERT_FALSE(r.error_occurred) << r.error_message;
    EXPECT_EQ(r.counters.count(kb::cpu_time_counter), 0u);
    if (r.run_type == run::RT_Iteration) {
      const double want = r.counters.at("worker_cpu_s").value * 1e9 / r.counters.at("ops").value;
      EXPECT_NEAR(r.GetAdjustedCPUTime(), want, want * 1e-9);
      EXPECT_EQ(r.counters.at("kprim_threads").value, 2.0);
      EXPECT_GT(r.counters.at("cpu_util").value, 0.0);
      EXPECT_EQ(r.counters.count("steal_pct"), 1u);
      cpu.push_back(r.GetAdjustedCPUTime());
    } else if (r.aggregate_name == "mean") {
      mean = &r;
    } else if (r.aggregate_name == "cv") {
      cv = &r;
    }
  }
  ASSERT_EQ(cpu.size(), 3u);
  ASSERT_NE(mean, nullptr);
  ASSERT_NE(cv, nullptr);
  const double m = (cpu[0] + cpu[1] + cpu[2]) / 3;
  EXPECT_NEAR(mean->GetAdjustedCPUTime(), m, m * 1e-9);
  double ss = 0;
  for (double x : cpu) ss += (x - m) * (x - m);
  EXPECT_NEAR(cv->cpu_accumulated_time, std::sqrt(ss / 2) / m, 1e-9);
  // The counter `abandoned` is 0 in every repetition: its cv (0/0) is left out, not NaN.
  EXPECT_EQ(cv->counters.count("abandoned"), 0u);
}

TEST(Reporters, WrappedJsonIsStrict) {
  kb::trial_config cfg;
  cfg.duration = 2ms;
  kb::register_trial(kb::case_id{"test", "json", "counting", 1, {}}, cfg, [] { return std::make_unique<counting>(); });
  repetitions two(2);
  std::ostringstream out, err;
  auto json = kb::wrap_reporter(std::make_unique<benchmark::JSONReporter>());
  json->SetOutputStream(&out);
  json->SetErrorStream(&err);
  run_benchmarks("^test/json/", *json);
  const std::string text = out.str();
  EXPECT_NE(text.find("\"test/json/counting/threads:1/iterations:1/manual_time_cv\""), std::string::npos);
  EXPECT_NE(text.find("\"cpu_util\""), std::string::npos);
  // Google Benchmark writes a non-finite double as NaN, -NaN, Infinity or -Infinity.
  for (const char* bad : {": NaN", ": -NaN", ": Infinity", ": -Infinity", kb::cpu_time_counter})
    EXPECT_EQ(text.find(bad), std::string::npos) << bad;
  std::size_t threads_keys = 0;
  for (auto at = text.find("\"threads\":"); at != std::string::npos; at = text.find("\"threads\":", at + 1)) ++threads_keys;
  EXPECT_EQ(threads_keys, 6u);  // Google Benchmark's own field only: 2 repetitions, mean, median, stddev, cv
}

TEST(Interleaving, OnUnlessTheCommandLineSetsIt) {
  unsetenv("BENCHMARK_ENABLE_RANDOM_INTERLEAVING");
  std::string a0 = "bench", a1 = "--benchmark_filter=x";
  char* argv[] = {a0.data(), a1.data(), nullptr};
  auto args = kb::benchmark_args(2, argv);
  ASSERT_EQ(args.size(), 4u);
  EXPECT_STREQ(args[2], "--benchmark_enable_random_interleaving=true");
  EXPECT_EQ(args[3], nullptr);
  for (const char* given : {"--benchmark_enable_random_interleaving=false", "--benchmark_enable_random_interleaving"}) {
    std::string g = given;
    char* argv2[] = {a0.data(), g.data(), nullptr};
    auto kept = kb::benchmark_args(2, argv2);
    ASSERT_EQ(kept.size(), 3u) << given;
    EXPECT_STREQ(kept[1], given);
  }
  std::string other = "--benchmark_enable_random_interleaving_not";
  char* argv3[] = {a0.data(), other.data(), nullptr};
  EXPECT_EQ(kb::benchmark_args(2, argv3).size(), 4u);
}

// ---- fault injection ---------------------------------------------------------------------

kb::options parsed(std::string flag) {
  std::string a0 = "bench";
  char* argv[] = {a0.data(), flag.data(), nullptr};
  int argc = 2;
  kb::options o;
  std::string err;
  EXPECT_TRUE(kb::parse_options(argc, argv, o, err)) << err;
  return o;
}

TEST(Inject, ParsesRegexAndNanoseconds) {
  const auto o = parsed("--kprim_inject=^locks/contended/kprim_qspinlock/threads:2/:20000");
  EXPECT_EQ(o.inject, "^locks/contended/kprim_qspinlock/threads:2/:20000");
  EXPECT_DOUBLE_EQ(o.inject_ns, 20000.0);
  EXPECT_DOUBLE_EQ(kb::injected_ns(o, "locks/contended/kprim_qspinlock/threads:2/cs:0/gap:0/locks:1/iterations:1/manual_time"), 20000.0);
  EXPECT_EQ(kb::injected_ns(o, "locks/contended/kprim_qspinlock/threads:4/cs:0/gap:0/locks:1/iterations:1/manual_time"), 0.0);
  EXPECT_EQ(kb::injected_ns(kb::options{}, "locks/contended/kprim_qspinlock/threads:2/"), 0.0);
  // The last colon separates NS, so a REGEX may hold colons; it is an extended regex.
  const auto p = parsed("--kprim_inject=threads:(1|2)/.*manual_time$:5");
  EXPECT_DOUBLE_EQ(p.inject_ns, 5.0);
  EXPECT_DOUBLE_EQ(kb::injected_ns(p, "x/y/z/threads:2/iterations:1/manual_time"), 5.0);
  EXPECT_EQ(kb::injected_ns(p, "x/y/z/threads:3/iterations:1/manual_time"), 0.0);
  // Fractions of a ns, down to 0.001.
  EXPECT_DOUBLE_EQ(parsed("--kprim_inject=a:0.65").inject_ns, 0.65);
  EXPECT_DOUBLE_EQ(parsed("--kprim_inject=a:0.001").inject_ns, 0.001);
  EXPECT_DOUBLE_EQ(parsed("--kprim_inject=a:2.5").inject_ns, 2.5);
}

TEST(Inject, RelativeFormIsAFractionSharedByTheControlTwin) {
  const auto o = parsed("--kprim_inject=^test/inject/counting(_aa)?/:20%");
  EXPECT_DOUBLE_EQ(o.inject_fraction, 0.20);
  EXPECT_EQ(o.inject_ns, 0.0);
  EXPECT_EQ(o.inject, "^test/inject/counting(_aa)?/:20%");
  EXPECT_DOUBLE_EQ(parsed("--kprim_inject=a:0.1%").inject_fraction, 0.001);
  EXPECT_DOUBLE_EQ(parsed("--kprim_inject=a:1000%").inject_fraction, 10.0);
  // The NS form's budget is not set by the relative form: the probes size it.
  kb::trial_config cfg;
  kb::inject_into(o, kb::case_id{"test", "inject", "counting", 1, {}}, cfg);
  EXPECT_EQ(cfg.inject_q8, 0u);
  const auto x = kb::relative_injection_for(o, kb::case_id{"test", "inject", "counting", 1, {}});
  const auto twin = kb::relative_injection_for(o, kb::case_id{"test", "inject", "counting_aa", 1, {}});
  const auto other = kb::relative_injection_for(o, kb::case_id{"test", "inject", "counting", 2, {}});
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x, twin);  // one state: identical code, identical injection
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other, x);
  EXPECT_DOUBLE_EQ(x->fraction, 0.20);
  EXPECT_EQ(kb::relative_injection_for(o, kb::case_id{"test", "plain", "counting", 1, {}}), nullptr);
  EXPECT_EQ(kb::relative_injection_for(parsed("--kprim_inject=^test/:5"), kb::case_id{"test", "inject", "counting", 1, {}}),
            nullptr);
}

TEST(Inject, RelativeNsIsAskedOverThePooledSlope) {
  // Pairs at 1 ns measured +5%, +5.5%, +4.5% (slope 0.05 per ns), at 2 ns +10%, +30% (an
  // outlier): the median slope over all five is 0.05, so 20% asks for 4 ns.
  const kb::relative_probe pairs[] = {{10, 10.5, 1}, {10, 10.55, 1}, {10, 10.45, 1}, {10, 11, 2}, {10, 13, 2}};
  EXPECT_NEAR(kb::pooled_relative_ns(2.0, 1.0, 0.20, pairs), 4.0, 1e-9);
  // One noisy round alone would have moved NS by its own error (+30% at 2 ns: 1.33 ns);
  // pooled with the others the outlier is one vote of five.
  EXPECT_NEAR(kb::pooled_relative_ns(2.0, 1.0, 0.20, std::span(pairs + 4, 1)), 2.0 * 0.20 / 0.30, 1e-9);
  // Kept within a tenth and ten times the first guess.
  const kb::relative_probe tiny[] = {{10, 10.001, 1}};
  EXPECT_NEAR(kb::pooled_relative_ns(1.0, 1.0, 0.20, tiny), 10.0, 1e-9);
  const kb::relative_probe much[] = {{10, 100, 1}};
  EXPECT_NEAR(kb::pooled_relative_ns(1.0, 1.0, 0.20, much), 0.1, 1e-9);
  // Nothing measured (slope <= 0): three times the first guess, then kept.
  const kb::relative_probe none[] = {{10, 9.9, 1}};
  EXPECT_NEAR(kb::pooled_relative_ns(1.0, 1.0, 0.20, none), 3.0, 1e-9);
  EXPECT_NEAR(kb::pooled_relative_ns(3.0, 1.0, 0.20, none), 3.0, 1e-9);
  // Failed probes (0 ns) and pairs without work are left out; none left keeps NS.
  const kb::relative_probe failed[] = {{0, 20, 1}, {10, 0, 1}, {10, 12, 0}};
  EXPECT_EQ(kb::pooled_relative_ns(3.0, 1.0, 0.20, failed), 3.0);
}

TEST(Inject, ProbeTimeIsCpuTimeForOneThreadAndWallTimeForMore) {
  kb::trial_result one;
  one.ops = {1000};
  one.trial_s = 2e-6;       // preempted for half the trial
  one.worker_cpu_s = 1e-6;  // on a CPU for 1 us
  EXPECT_NEAR(kb::probe_ns_per_op(one), 1.0, 1e-12);
  kb::trial_result two = one;
  two.ops = {500, 500};
  EXPECT_NEAR(kb::probe_ns_per_op(two), 2.0, 1e-12);
  two.error = "mutual exclusion broken";
  EXPECT_EQ(kb::probe_ns_per_op(two), 0.0);
  EXPECT_EQ(kb::probe_ns_per_op(kb::trial_result{}), 0.0);
}

TEST(Inject, CalibrateRelativeSettlesAPositiveNs) {
  kb::trial_config cfg;
  cfg.duration = 20ms;
  kb::relative_injection rel;
  rel.fraction = 1.0;  // double the time per operation: far above any load's noise
  auto make = [] { return std::make_unique<counting>(); };
  kb::calibrate_relative(rel, cfg, make);
  EXPECT_TRUE(rel.calibrated);
  EXPECT_GT(rel.ns, 0.0);
  // How close the probes came to the asked change is a timing, reported by the benchmark
  // (kprim_inject_probe_change), not asserted: under TSan or on a loaded machine the probes
  // can read anything. The step rule itself is checked above, without a clock.
  EXPECT_TRUE(std::isfinite(rel.probe_change));
}

TEST(Inject, BudgetIsNanosecondsTimesTheCalibratedRate) {
  const auto& rate = kb::inject_calibration();
  ASSERT_GT(rate.units_per_ns, 0.0);
  ASSERT_GE(rate.fixed_ns, 0.0);
  kb::trial_config a, b, none;
  kb::inject_into(parsed("--kprim_inject=^test/:0.5"), kb::case_id{"test", "inject", "counting", 1, {}}, a);
  kb::inject_into(parsed("--kprim_inject=^test/:2"), kb::case_id{"test", "inject", "counting", 1, {}}, b);
  kb::inject_into(parsed("--kprim_inject=^other/:2"), kb::case_id{"test", "inject", "counting", 1, {}}, none);
  EXPECT_EQ(none.inject_q8, 0u);
  ASSERT_GE(a.inject_q8, 1u);
  // Four times the ns, four times the budget (to the rounding of a 1/256 unit).
  EXPECT_NEAR(static_cast<double>(b.inject_q8), 4.0 * static_cast<double>(a.inject_q8), 2.0);
  EXPECT_EQ(a.inject_fixed_q8, b.inject_fixed_q8);
  EXPECT_EQ(a.cs, 0u);  // the plain critical-section work is untouched
}

TEST(Inject, AMatchingTrialDoesTheInjectedWorkInsideItsCriticalSection) {
  constexpr std::uint32_t ns = 20000;
  const auto o = parsed("--kprim_inject=^test/inject/counting/:" + std::to_string(ns));
  kb::trial_config plain;
  plain.duration = 50ms;
  plain.cs = 3;
  kb::trial_config other = plain, injected = plain;
  kb::inject_into(o, kb::case_id{"test", "other", "counting", 1, {}}, other);
  EXPECT_EQ(other.inject_q8, 0u);
  kb::inject_into(o, kb::case_id{"test", "inject", "counting", 1, {}}, injected);
  ASSERT_GT(injected.inject_q8, 0u);
  EXPECT_EQ(injected.cs, plain.cs);
  counting a, b;
  const auto fast = kb::run_trial(plain, a);
  const auto slow = kb::run_trial(injected, b);
  ASSERT_GT(fast.total(), 0u);
  ASSERT_GT(slow.total(), 0u);
  const double fast_ns = fast.trial_s * 1e9 / static_cast<double>(fast.total());
  const double slow_ns = slow.trial_s * 1e9 / static_cast<double>(slow.total());
  // The injected work dominates: at least half of it shows per operation.
  EXPECT_GE(slow_ns, ns / 2.0);
  EXPECT_GT(slow_ns, fast_ns);
}

}  // namespace

// The transfer floor is a measured one-way time: positive and finite wherever two PUs can be
// pinned, 0 (no figure) where they cannot; it never hangs (each wait is bounded).
TEST(TransferFloor, PositiveWhereTwoPusCanBePinnedElseZero) {
  const auto pairs = kprim::bench::representative_pairs();
  double ns = kprim::bench::transfer_floor_ns(200, 3);
  EXPECT_TRUE(std::isfinite(ns));
  if (pairs.empty()) {
    EXPECT_EQ(ns, 0.0);
  } else if (kprim::bench::pin_current_thread_to_pu(pairs.front().a)) {
    // A side preempted past the bounded wait gives "no figure" (0): on a loaded 2-vCPU machine
    // (ctest -j2 beside a build) that happens; five such attempts in a row would be a bug.
    for (int attempt = 1; ns == 0.0 && attempt < 5; ++attempt) ns = kprim::bench::transfer_floor_ns(200, 3);
#if defined(__SANITIZE_THREAD__)
    // Under ThreadSanitizer every atomic of the ping-pong goes through the runtime, and beside
    // another test on 2 vCPUs five bounded attempts in a row can all time out (CI saw it):
    // only "finite, and 0 or positive" is asserted there; release and asan assert a figure.
    EXPECT_GE(ns, 0.0);
#else
    EXPECT_GT(ns, 0.0);
#endif
  }
  EXPECT_EQ(kprim::bench::transfer_floor_ns(0, 3), 0.0);
}

// Emulation detection (issue 20), the provenance's kprim_emulated: ctest sets
// KPRIM_EXPECT_EMULATED=1 for every test of a cross build run under CMAKE_CROSSCOMPILING_EMULATOR
// (qemu-aarch64 on this x86-64 host) and leaves it unset natively, so both answers are checked.
TEST(Provenance, EmulationDetectedExactlyUnderTheEmulator) {
  const bool expected = std::getenv("KPRIM_EXPECT_EMULATED") != nullptr;
  const std::string kernel = kprim::test::kernel_arch();
  EXPECT_NE(kernel, "unknown") << "neither /proc/sys/kernel/arch nor /proc/cpuinfo told";
  EXPECT_EQ(kprim::test::running_emulated(), expected)
      << "binary " << kprim::test::binary_arch() << ", kernel " << kernel;
  EXPECT_EQ(kernel == kprim::test::binary_arch(), !expected);
}
