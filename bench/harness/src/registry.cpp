// Google Benchmark glue: kprim's flags, benchmark names, counters, and the family main().
#include <kprim/bench/registry.hpp>
#include <kprim/bench/topology.hpp>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <thread>

namespace kprim::bench {

namespace {

options g_options;

bool parse_uint(std::string_view s, unsigned long long lo, unsigned long long hi, unsigned long long& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= lo && out <= hi;
}

// nproc from hwloc's allowed cpuset (HWLOC_SYNTHETIC / HWLOC_XMLFILE steer it); the sweep
// itself is default_thread_sweep() (topology.hpp).
std::vector<unsigned> default_threads() { return default_thread_sweep(nproc()); }

}  // namespace

const options& current_options() noexcept { return g_options; }

bool parse_options(int& argc, char** argv, options& out, std::string& error) {
  out.threads = default_threads();
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--kprim_", 0) != 0) {
      argv[kept++] = argv[i];
      continue;
    }
    const auto eq = a.find('=');
    const std::string_view key = a.substr(0, eq);
    const std::string_view val = eq == std::string_view::npos ? std::string_view{} : a.substr(eq + 1);
    unsigned long long v = 0;
    auto bad = [&](const char* what) {
      error = std::string(key) + ": " + what + " (got '" + std::string(val) + "')";
      return false;
    };
    if (key == "--kprim_trial_ms") {
      if (!parse_uint(val, 1, 600000, v)) return bad("expects milliseconds, 1..600000");
      out.trial_ms = static_cast<unsigned>(v);
    } else if (key == "--kprim_threads") {
      std::vector<unsigned> t;
      std::string_view rest = val;
      while (true) {
        const auto c = rest.find(',');
        if (!parse_uint(rest.substr(0, c), 1, max_trial_threads, v))
          return bad(("expects a comma-separated list of thread counts, 1.." + std::to_string(max_trial_threads) +
                      " (the per-trial limit)").c_str());
        t.push_back(static_cast<unsigned>(v));
        if (c == std::string_view::npos) break;
        rest = rest.substr(c + 1);
      }
      out.threads = t;
    } else if (key == "--kprim_pin") {
      if (val == "none") out.pin = pin_policy::none;
      else if (val == "compact") out.pin = pin_policy::compact;
      else if (val == "spread") out.pin = pin_policy::spread;
      else return bad("expects none, compact or spread");
    } else if (key == "--kprim_cs" || key == "--kprim_gap") {
      if (!parse_uint(val, 0, 1000000, v)) return bad("expects work units, 0..1000000");
      (key == "--kprim_cs" ? out.cs : out.gap) = static_cast<std::uint32_t>(v);
    } else if (key == "--kprim_latency") {
      if (val == "on") out.latency = true;
      else if (val == "off") out.latency = false;
      else return bad("expects on or off");
    } else if (key == "--kprim_locks") {
      if (!parse_uint(val, 1, 65536, v)) return bad("expects a lock count, 1..65536");
      out.locks = static_cast<std::uint32_t>(v);
    } else {
      error = "unknown flag " + std::string(key) +
              " (kprim flags: --kprim_trial_ms, --kprim_threads, --kprim_pin, --kprim_cs, --kprim_gap, --kprim_locks, --kprim_latency)";
      return false;
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return true;
}

std::string case_id::name() const {
  std::string s = family + "/" + workload + "/" + contender + "/threads:" + std::to_string(threads);
  for (const auto& [k, v] : params) s += "/" + k + ":" + v;
  return s;
}

trial_config base_config(unsigned threads) {
  trial_config c;
  c.threads = threads;
  c.duration = std::chrono::milliseconds(g_options.trial_ms);
  // A collapsing fair lock drains one hand-over per scheduler slice; allow it generously,
  // but never unbounded.
  c.drain_limit = std::max<std::chrono::nanoseconds>(std::chrono::seconds(2), 10 * c.duration);
  c.cs = g_options.cs;
  c.gap = g_options.gap;
  c.pin = g_options.pin;
  c.sample_latency = g_options.latency;
  return c;
}

void report(benchmark::State& state, const trial_result& r, unsigned threads) {
  if (r.abandoned) {
    state.SkipWithError("trial abandoned: workers did not return within the drain limit");
    state.counters["abandoned"] = 1;
    return;
  }
  if (!r.error.empty()) {
    state.SkipWithError(("invariant violated: " + r.error).c_str());
    return;
  }
  const std::uint64_t total = r.total();
  const double ns_per_op = total > 0 ? r.trial_s * 1e9 / static_cast<double>(total) : r.trial_s * 1e9;
  state.SetIterationTime(ns_per_op * 1e-9);
  auto& c = state.counters;
  c["ops_per_s"] = r.ops_per_s();
  c["ns_per_op"] = ns_per_op;
  c["ops"] = static_cast<double>(total);
  c["threads"] = threads;
  c["trial_s"] = r.trial_s;
  c["drain_ms"] = r.drain_s * 1e3;
  c["abandoned"] = 0;
  c["fairness"] = r.fairness();
  c["share_min"] = r.share_min();
  c["share_max"] = r.share_max();
  c["lat_p50_ns"] = static_cast<double>(r.lat.percentile(0.50));
  c["lat_p99_ns"] = static_cast<double>(r.lat.percentile(0.99));
  c["lat_p999_ns"] = static_cast<double>(r.lat.percentile(0.999));
  c["lat_max_ns"] = static_cast<double>(r.lat.max());
  c["lat_samples"] = static_cast<double>(r.lat.count());
  c["clock_ns"] = r.clock_ns;
}

int main(int argc, char** argv, void (*register_fn)()) {
  std::string error;
  if (!parse_options(argc, argv, g_options, error)) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "bench", error.c_str());
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  add_context();
  register_fn();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace kprim::bench
