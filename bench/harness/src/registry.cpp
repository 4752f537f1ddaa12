// Google Benchmark glue: kprim's flags, benchmark names, counters, and the family main().
#include <kprim/bench/registry.hpp>
#include <kprim/bench/topology.hpp>

#include <fcntl.h>
#include <regex.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

// Google Benchmark 1.7.1 exports its flags (BM_DECLARE_* in its commandlineflags.h, not in
// benchmark.h); main() reads the values Initialize() settled on (command line over environment).
namespace benchmark {
extern bool FLAGS_benchmark_enable_random_interleaving;
extern std::string FLAGS_benchmark_out;
extern std::string FLAGS_benchmark_out_format;
}  // namespace benchmark

namespace kprim::bench {

/// A compiled --kprim_inject REGEX.
struct injection {
  regex_t re{};
  bool ok = false;
  explicit injection(const std::string& pattern, std::string& error) {
    const int rc = regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB);
    ok = rc == 0;
    if (!ok) {
      char msg[256];
      regerror(rc, &re, msg, sizeof msg);
      error = msg;
    }
  }
  ~injection() {
    if (ok) regfree(&re);
  }
  injection(const injection&) = delete;
  injection& operator=(const injection&) = delete;
  [[nodiscard]] bool matches(const std::string& name) const { return regexec(&re, name.c_str(), 0, nullptr, 0) == 0; }
};

namespace {

options g_options;

bool parse_uint(std::string_view s, unsigned long long lo, unsigned long long hi, unsigned long long& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= lo && out <= hi;
}

// --kprim_inject's NS: digits, optionally '.' and 1..3 more digits, 0.001..1000000.
bool parse_ns(std::string_view s, double& out) {
  const auto dot = s.find('.');
  unsigned long long whole = 0, frac = 0;
  const std::string_view w = s.substr(0, dot);
  if (!parse_uint(w, 0, 1000000, whole)) return false;
  if (dot != std::string_view::npos) {
    const std::string_view f = s.substr(dot + 1);
    if (f.empty() || f.size() > 3 || !parse_uint(f, 0, 999, frac)) return false;
    for (std::size_t i = f.size(); i < 3; ++i) frac *= 10;
  }
  const unsigned long long milli = whole * 1000 + frac;
  if (milli < 1 || milli > 1000000ull * 1000) return false;
  out = static_cast<double>(milli) / 1000.0;
  return true;
}

// nproc from hwloc's allowed cpuset (HWLOC_SYNTHETIC / HWLOC_XMLFILE steer it); the sweep
// itself is default_thread_sweep() (topology.hpp).
std::vector<unsigned> default_threads() { return default_thread_sweep(nproc()); }

// KPRIM_PROGRESS_FILE: one byte appended per finished trial (report() and report_loop()), so
// ./kbench run can show done/planned trials while Google Benchmark, interleaving repetitions,
// prints a benchmark's lines only after its last one. O_APPEND: the processes of one run share
// the file; a failed write costs a progress tick, never the trial.
int progress_fd() {
  static const int fd = [] {
    const char* path = std::getenv("KPRIM_PROGRESS_FILE");
    return path && *path ? ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
  }();
  return fd;
}

void progress_tick() {
  if (const int fd = progress_fd(); fd >= 0) [[maybe_unused]]
    const auto n = ::write(fd, ".", 1);
}

}  // namespace

const options& current_options() noexcept { return g_options; }

bool parse_options(int& argc, char** argv, options& out, std::string& error, std::span<const family_flag> family) {
  out.threads = default_threads();
  std::vector<std::string_view> family_values(family.size());
  for (std::size_t f = 0; f < family.size(); ++f) family_values[f] = family[f].fallback;
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
                      " (the per-trial limit)")
                         .c_str());
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
    } else if (key == "--kprim_inject") {
      const auto colon = val.rfind(':');
      if (colon == std::string_view::npos) return bad("expects REGEX:NS, no ':' found");
      const std::string pattern(val.substr(0, colon));
      if (pattern.empty()) return bad("expects REGEX:NS with a non-empty REGEX");
      double ns = 0, fraction = 0;
      std::string_view size = val.substr(colon + 1);
      if (!size.empty() && size.back() == '%') {
        // The relative form: P% of the point's own time per operation (calibrate_relative()).
        if (!parse_ns(size.substr(0, size.size() - 1), fraction) || fraction < 0.1 || fraction > 1000)
          return bad("expects REGEX:P% with P in percent, 0.1..1000 (at most 3 decimals)");
        fraction /= 100;
      } else if (!parse_ns(size, ns)) {
        return bad("expects REGEX:NS with NS in ns, 0.001..1000000 (at most 3 decimals), or REGEX:P%");
      }
      std::string why;
      auto re = std::make_shared<const injection>(pattern, why);
      if (!re->ok) return bad(("REGEX is not a POSIX extended regular expression: " + why).c_str());
      out.inject = std::string(val);
      out.inject_ns = ns;
      out.inject_fraction = fraction;
      out.inject_re = std::move(re);
    } else if (key == "--kprim_locks") {
      if (!parse_uint(val, 1, 65536, v)) return bad("expects a lock count, 1..65536");
      out.locks = static_cast<std::uint32_t>(v);
    } else if (const auto f = std::find_if(family.begin(), family.end(), [&](const family_flag& ff) { return ff.key == key; });
               f != family.end()) {
      family_values[static_cast<std::size_t>(f - family.begin())] = val;
    } else {
      error = "unknown flag " + std::string(key) +
              " (kprim flags: --kprim_trial_ms, --kprim_threads, --kprim_pin, --kprim_cs, --kprim_gap, --kprim_locks, "
              "--kprim_latency, --kprim_inject";
      for (const family_flag& ff : family) error += ", " + std::string(ff.key);
      error += ")";
      return false;
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  for (std::size_t f = 0; f < family.size(); ++f) {
    error = family[f].parse(family_values[f]);
    if (!error.empty()) return false;
  }
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

namespace {
/// What Google Benchmark appends to a register_trial() benchmark's name.
constexpr const char* registered_suffix = "/iterations:1/manual_time";
}  // namespace

double injected_ns(const options& o, std::string_view full_name) {
  if (o.inject_re == nullptr || o.inject_ns <= 0) return 0;
  return o.inject_re->matches(std::string(full_name)) ? o.inject_ns : 0;
}

namespace {
/// The CPU ns of `calls` inject_work(n) calls each stored to a volatile, as the worker loop does.
double inject_calls_ns(std::uint64_t calls, std::uint64_t n) {
  [[maybe_unused]] volatile std::uint64_t sink = 0;
  std::uint64_t v = 0;
  const std::uint64_t t0 = thread_cpu_ns();
  for (std::uint64_t i = 0; i < calls; ++i) {
    v = inject_work(v, n);
    sink = v;
  }
  return static_cast<double>(thread_cpu_ns() - t0);
}
}  // namespace

const inject_rate& inject_calibration() noexcept {
  static const inject_rate rate = [] {
    // The fastest of 11 runs timed by the thread's CPU clock: calls of 0 units (the call's
    // own cost) and of 64 units; the difference is 64 units' cost. The fastest, not the
    // median: a dependent add costs one cycle, and what makes a run slower (host steal, which
    // a KVM guest's CPU clock counts as running; a busy sibling) is not the work's cost. On
    // a loaded host the medians read 1.75..2.42 units/ns in 8 processes, so the NS the
    // relative form settled on in one process was up to a third more or less work in the
    // gate's re-runs, which convert it again.
    constexpr std::uint64_t calls = 1 << 15, units = 64;
    constexpr int runs = 11;
    double fixed = 0, full = 0;
    inject_calls_ns(calls, units);  // warm-up
    for (int i = 0; i < runs; ++i) {
      const double f = inject_calls_ns(calls, 0) / calls, u = inject_calls_ns(calls, units) / calls;
      fixed = i == 0 ? f : std::min(fixed, f);
      full = i == 0 ? u : std::min(full, u);
    }
    inject_rate r;
    r.fixed_ns = fixed;
    r.units_per_ns = full > r.fixed_ns ? static_cast<double>(units) / (full - r.fixed_ns) : 1.0;
    return r;
  }();
  return rate;
}

void set_inject_ns(trial_config& cfg, double ns) noexcept {
  if (ns <= 0) {
    cfg.inject_q8 = cfg.inject_fixed_q8 = 0;
    return;
  }
  const inject_rate& r = inject_calibration();
  // Budget per operation and a call's fixed cost, both in 1/256 units; at least 1 so an
  // injected trial always takes the injecting loop.
  cfg.inject_q8 = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(ns * r.units_per_ns * 256)));
  cfg.inject_fixed_q8 = static_cast<std::uint64_t>(std::llround(r.fixed_ns * r.units_per_ns * 256));
}

void inject_into(const options& o, const case_id& id, trial_config& cfg) {
  const double ns = injected_ns(o, id.name() + registered_suffix);
  if (ns > 0) set_inject_ns(cfg, ns);
}

std::shared_ptr<relative_injection> relative_injection_for(const options& o, const case_id& id) {
  if (o.inject_re == nullptr || o.inject_fraction <= 0 || !o.inject_re->matches(id.name() + registered_suffix))
    return nullptr;
  // Keyed by the name with a twin's "_aa" dropped: X and X_aa share one state. Registration
  // and the trials run on the main thread, so the map needs no lock.
  static std::vector<std::pair<std::string, std::weak_ptr<relative_injection>>> states;
  case_id key = id;
  constexpr std::string_view twin = "_aa";
  if (key.contender.size() > twin.size() && key.contender.ends_with(twin)) key.contender.resize(key.contender.size() - twin.size());
  const std::string name = key.name();
  for (auto& [k, weak] : states)
    if (k == name)
      if (auto shared = weak.lock()) return shared;
  auto made = std::make_shared<relative_injection>();
  made->fraction = o.inject_fraction;
  states.emplace_back(name, made);
  return made;
}

double pooled_relative_ns(double ns, double first_ns, double fraction, std::span<const relative_probe> pairs) noexcept {
  std::vector<double> slopes;
  for (const relative_probe& p : pairs)
    if (p.plain_ns > 0 && p.injected_ns > 0 && p.at_ns > 0) slopes.push_back((p.injected_ns / p.plain_ns - 1) / p.at_ns);
  const double lo = std::max(0.001, first_ns / 10), hi = std::min(1000000.0, first_ns * 10);
  if (slopes.empty()) return ns;
  std::sort(slopes.begin(), slopes.end());
  const std::size_t m = slopes.size();
  const double k = m % 2 ? slopes[m / 2] : (slopes[m / 2 - 1] + slopes[m / 2]) / 2;
  // Nothing measured (the work hidden by the point, or noise): more work, bounded.
  if (k <= 0) return std::clamp(ns == first_ns ? 3 * ns : ns, lo, hi);
  return std::clamp(fraction / k, lo, hi);
}

double probe_ns_per_op(const trial_result& r) noexcept {
  const std::uint64_t total = r.total();
  if (r.abandoned || !r.error.empty() || total == 0) return 0.0;
  const double s = r.ops.size() == 1 && r.worker_cpu_s > 0 ? r.worker_cpu_s : r.trial_s;
  return s * 1e9 / static_cast<double>(total);
}

void report_loop(benchmark::State& state, const loop_result& r) {
  progress_tick();
  state.SetIterationTime(r.ops > 0 ? r.wall_s / r.ops : r.wall_s);
  auto& c = state.counters;
  c["ops"] = r.ops;
  c["ops_per_s"] = r.ops / r.wall_s;
  c["ns_per_op"] = r.ops > 0 ? 1e9 * r.wall_s / r.ops : 0;
  c["kprim_threads"] = r.threads;
}

void set_cpu_time(benchmark::State& state, double cpu_s, double ops) {
  state.counters[cpu_time_counter] = ops > 0 ? cpu_s * 1e9 / ops : cpu_s * 1e9;
}

namespace {
/// The keys of a Google Benchmark 1.7.1 JSON entry (counters are keys beside them).
constexpr const char* gb_fields[] = {
    "name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
    "iterations", "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label"};
}  // namespace

std::string reserved_counter(const benchmark::UserCounters& counters) {
  for (const char* f : gb_fields)
    if (counters.count(f) != 0) return f;
  return {};
}

bool refuse_reserved_counters(benchmark::State& state) {
  const std::string bad = reserved_counter(state.counters);
  if (bad.empty()) return true;
  state.SkipWithError(("counter '" + bad + "' is named like a Google Benchmark field; name it kprim_" + bad).c_str());
  return false;
}

void finish_runs(std::vector<benchmark::BenchmarkReporter::Run>& runs) {
  using run = benchmark::BenchmarkReporter::Run;
  for (run& r : runs) {
    auto& c = r.counters;
    if (const auto it = c.find(cpu_time_counter); it != c.end()) {
      const double ns = it->second.value;
      if (r.run_type == run::RT_Aggregate && r.aggregate_unit == benchmark::kPercentage)
        r.cpu_accumulated_time = ns;  // a coefficient of variation: no unit, written as it is
      else                            // reporters divide by the iterations
        r.cpu_accumulated_time = ns * 1e-9 * static_cast<double>(r.iterations > 0 ? r.iterations : 1);
      c.erase(it);
    }
    if (const std::string bad = reserved_counter(c); !bad.empty()) {
      for (const char* f : gb_fields) c.erase(f);
      if (!r.error_occurred) {
        r.error_occurred = true;
        r.error_message = "counter '" + bad + "' is named like a Google Benchmark field; name it kprim_" + bad;
      }
    }
    std::erase_if(c, [](const auto& kv) { return !std::isfinite(kv.second.value); });
    if (!std::isfinite(r.real_accumulated_time)) r.real_accumulated_time = 0;
    if (!std::isfinite(r.cpu_accumulated_time)) r.cpu_accumulated_time = 0;
  }
}

namespace {

/// Passes every batch of runs through finish_runs() to the reporter it wraps. Google
/// Benchmark points a file reporter's streams at --benchmark_out (SetOutputStream() is not
/// virtual), so the streams are handed on when the run starts.
class finishing_reporter final : public benchmark::BenchmarkReporter {
 public:
  finishing_reporter(benchmark::BenchmarkReporter* inner, std::unique_ptr<benchmark::BenchmarkReporter> owned)
      : owned_(std::move(owned)), inner_(inner) {}
  bool ReportContext(const Context& context) override {
    inner_->SetOutputStream(&GetOutputStream());
    inner_->SetErrorStream(&GetErrorStream());
    return inner_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& report) override {
    std::vector<Run> runs = report;
    finish_runs(runs);
    inner_->ReportRuns(runs);
  }
  void Finalize() override { inner_->Finalize(); }

 private:
  std::unique_ptr<benchmark::BenchmarkReporter> owned_;
  benchmark::BenchmarkReporter* inner_;
};

/// The reporter Google Benchmark itself would write --benchmark_out with.
std::unique_ptr<benchmark::BenchmarkReporter> file_reporter_for(const std::string& format) {
  if (format == "console") return std::make_unique<benchmark::ConsoleReporter>(benchmark::ConsoleReporter::OO_None);
  if (format == "csv") {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return std::make_unique<benchmark::CSVReporter>();
#pragma GCC diagnostic pop
  }
  return std::make_unique<benchmark::JSONReporter>();  // Initialize() accepts only these three
}

}  // namespace

std::vector<char*> benchmark_args(int argc, char** argv) {
  static constexpr std::string_view flag = "--benchmark_enable_random_interleaving";
  static std::string on = std::string(flag) + "=true";
  std::vector<char*> args(argv, argv + argc);
  bool given = std::getenv("BENCHMARK_ENABLE_RANDOM_INTERLEAVING") != nullptr;
  for (int i = 1; i < argc && !given; ++i) {
    const std::string_view a = argv[i];
    given = a.rfind(flag, 0) == 0 && (a.size() == flag.size() || a[flag.size()] == '=');
  }
  if (!given) args.push_back(on.data());
  args.push_back(nullptr);
  return args;
}

std::unique_ptr<benchmark::BenchmarkReporter> wrap_reporter(std::unique_ptr<benchmark::BenchmarkReporter> inner) {
  benchmark::BenchmarkReporter* p = inner.get();
  return std::make_unique<finishing_reporter>(p, std::move(inner));
}

std::unique_ptr<benchmark::BenchmarkReporter> wrap_reporter(benchmark::BenchmarkReporter& inner) {
  return std::make_unique<finishing_reporter>(&inner, nullptr);
}

void report(benchmark::State& state, const trial_result& r, unsigned threads) {
  progress_tick();
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
  c["kprim_threads"] = threads;
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
  c["worker_cpu_s"] = r.worker_cpu_s;
  c["cpu_util"] = cpu_utilisation(r.worker_cpu_s, threads, r.trial_s);
  c["steal_pct"] = r.steal_pct;
  set_cpu_time(state, r.worker_cpu_s, static_cast<double>(total));
}

namespace {
std::span<const family_flag> g_help_family;

// Google Benchmark's --help prints its own flags and calls exit(0) inside Initialize(); kprim's
// flags are appended from an atexit handler so that one --help lists both.
void print_kprim_help() {
  std::fputs(
      "\nkprim flags (removed before Google Benchmark reads the rest):\n"
      "  --kprim_trial_ms=MS        one trial's duration, 1..600000 ms (default 200; ./kbench run passes 100)\n"
      "  --kprim_threads=N[,N...]   thread counts of the sweep (default 1..nproc, 2x and 4x nproc)\n"
      "  --kprim_pin=MODE           thread placement: none (default), compact or spread (hwloc)\n"
      "  --kprim_cs=UNITS           work inside the critical section, 0..1000000 units\n"
      "  --kprim_gap=UNITS          work between operations, 0..1000000 units\n"
      "  --kprim_locks=N            locks the workers spread over, 1..65536 (default 1)\n"
      "  --kprim_latency=on|off     per-operation latency percentiles (default on)\n"
      "  --kprim_inject=REGEX:NS    fault injection: NS ns (0.001..1000000) of work inside the critical\n"
      "                             section of benchmarks whose name matches the POSIX regex;\n"
      "                             REGEX:P% sizes NS in the run so their ns/op grows by P% (0.1..1000)\n"
      "environment: KPRIM_PROGRESS_FILE=PATH appends one byte per finished trial (./kbench run's progress)\n",
      stdout);
  for (const family_flag& f : g_help_family)
    std::fprintf(stdout, "  %.*s=VALUE    this family's own flag (default %.*s)\n", static_cast<int>(f.key.size()),
                 f.key.data(), static_cast<int>(f.fallback.size()), f.fallback.data());
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv, void (*register_fn)(), std::span<const family_flag> family) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0) {
      g_help_family = family;
      std::atexit(print_kprim_help);
      break;
    }
  }
  std::string error;
  if (!parse_options(argc, argv, g_options, error, family)) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "bench", error.c_str());
    return 2;
  }
  // Random interleaving by default: a machine's drift or regime change then spreads over all
  // benchmarks and repetitions instead of landing on one contender's back-to-back runs.
  std::vector<char*> args = benchmark_args(argc, argv);
  int nargs = static_cast<int>(args.size()) - 1;
  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 2;
  g_options.random_interleaving = benchmark::FLAGS_benchmark_enable_random_interleaving;
  add_context();
  register_fn();
  // Google Benchmark keeps its default display reporter for the life of the process.
  auto display = wrap_reporter(*benchmark::CreateDefaultDisplayReporter());
  // Google Benchmark exits when given a file reporter without --benchmark_out.
  std::unique_ptr<benchmark::BenchmarkReporter> file;
  if (!benchmark::FLAGS_benchmark_out.empty()) file = wrap_reporter(file_reporter_for(benchmark::FLAGS_benchmark_out_format));
  benchmark::RunSpecifiedBenchmarks(display.get(), file.get());
  benchmark::Shutdown();
  return 0;
}

}  // namespace kprim::bench
