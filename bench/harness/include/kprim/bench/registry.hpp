// kprim/bench/registry.hpp: turns trials into Google Benchmark benchmarks, so users keep
// --benchmark_filter, --benchmark_repetitions and --benchmark_out. Each family's main() is
// kprim::bench::main(argc, argv, register_fn); register_fn walks the family's contender table
// (contender_table below), each row an adapter with a `static constexpr name`.
#pragma once

#include <kprim/bench/harness.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kprim::bench {

/// fixed_string<N> - a string literal as a value (N counts the terminating NUL), usable as a
/// template argument: a contender adapter takes its row name as one,
/// `std_style<std::mutex, "std_mutex">`, and publishes it as `static constexpr auto name = Name;`.
/// Converts to std::string_view and std::string; `+` joins two at compile time.
template <std::size_t N>
struct fixed_string {
  char chars[N] = {};

  constexpr fixed_string() = default;
  constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, chars); }  // NOLINT: implicit, as a literal
  /// of() - the first N - 1 characters of `s` (a constexpr string_view of that size).
  static constexpr fixed_string of(std::string_view s) {
    fixed_string f;
    std::copy_n(s.data(), N - 1, f.chars);
    return f;
  }
  [[nodiscard]] static constexpr std::size_t size() noexcept { return N - 1; }
  [[nodiscard]] constexpr const char* c_str() const noexcept { return chars; }
  constexpr operator std::string_view() const noexcept { return {chars, N - 1}; }
  operator std::string() const { return {chars, N - 1}; }
};

template <std::size_t A, std::size_t B>
constexpr fixed_string<A + B - 1> operator+(const fixed_string<A>& a, const fixed_string<B>& b) {
  fixed_string<A + B - 1> r;
  std::copy_n(a.chars, A - 1, r.chars);
  std::copy_n(b.chars, B, r.chars + A - 1);
  return r;
}

/// contender_table<C...> - a family's rows, in registration order. for_each(f) calls
/// `f.template operator()<C>()` for each row in order: pass a template lambda,
/// `table::for_each([&]<class C>() { register_row<C>(...); })`.
template <class... C>
struct contender_table {
  static constexpr std::size_t size = sizeof...(C);
  template <class F>
  static constexpr void for_each(F&& f) {
    (f.template operator()<C>(), ...);
  }
};

struct injection;  // a compiled --kprim_inject REGEX (registry.cpp)

/// Run-wide options, from kprim's own flags (parsed and removed from argv by main()):
///   --kprim_trial_ms=N       trial duration (default 200)
///   --kprim_threads=a,b,...  thread sweep (default: default_thread_sweep(), topology.hpp)
///   --kprim_pin=none|compact|spread
///   --kprim_cs=N --kprim_gap=N --kprim_locks=N   contended-workload knobs (0, 0, 1)
///   --kprim_latency=on|off   sample acquire latency (default on; off to check its overhead)
///   --kprim_inject=REGEX:NS  fault injection: trials whose full benchmark name (as in the
///                            results file, ".../iterations:1/manual_time") matches the POSIX
///                            extended REGEX do NS ns more work per operation inside the
///                            critical section (NS 0.001..1000000, up to 3 decimals: a budget
///                            below one call's fixed cost is spent on a share of the
///                            operations, see inject_work(); the name is unchanged, context
///                            kprim_inject, kprim_inject_unit)
///   --kprim_inject=REGEX:P%  the same, sized in this process so that the matching trials'
///                            time per operation grows by P% (0.1..1000, up to 3 decimals):
///                            before the first such trial, probe trials of the same workload
///                            with and without the injection, back to back, settle NS
///                            (calibrate_relative()); each injected entry records counters
///                            kprim_inject_ns (the NS used) and kprim_inject_probe_change (the
///                            per-operation time change the probes measured at that NS)
/// main() also turns on Google Benchmark's --benchmark_enable_random_interleaving unless the
/// command line (or BENCHMARK_ENABLE_RANDOM_INTERLEAVING) sets it.
struct options {
  unsigned trial_ms = 200;
  std::vector<unsigned> threads;
  pin_policy pin = pin_policy::none;
  std::uint32_t cs = 0;
  std::uint32_t gap = 0;
  std::uint32_t locks = 1;
  bool latency = true;
  std::string inject;                          ///< the --kprim_inject value as given, "" when none
  double inject_ns = 0;                        ///< its NS (0 for the relative form)
  double inject_fraction = 0;                  ///< the relative form's P / 100 (0 for the NS form)
  std::shared_ptr<const injection> inject_re;  ///< its compiled REGEX (null when none)
  bool random_interleaving = false;            ///< Google Benchmark's setting, filled in by main()
};

/// current_options() - the options of this process; valid inside register_fn and after.
const options& current_options() noexcept;

/// family_flag - a flag of one family's own, `<key>=VALUE` with key `--kprim_<name>`
/// (bench_slab's --kprim_malloc). parse_options() removes it with the kprim flags and, once
/// the command line is read, hands parse() the value of its last occurrence, or `fallback`
/// when there is none; parse() returns "" or one line saying what is wrong.
struct family_flag {
  std::string_view key;
  std::string_view fallback;
  std::string (*parse)(std::string_view value);
};

/// parse_options() - parse and remove --kprim_* flags (and the family's own, `family`) from
/// argv. On a bad value or an unknown --kprim_ flag returns false and sets `error` to one
/// line; leaves other flags.
bool parse_options(int& argc, char** argv, options& out, std::string& error,
                   std::span<const family_flag> family = {});

/// One benchmark's identity: parses back as family/workload/contender/key:value... (SCHEMA.md).
struct case_id {
  std::string family, workload, contender;
  unsigned threads = 1;
  std::vector<std::pair<std::string, std::string>> params;  ///< after threads, in order
  [[nodiscard]] std::string name() const;
};

/// base_config() - a trial_config for `threads` from the run-wide options.
trial_config base_config(unsigned threads);

/// injected_ns() - the ns --kprim_inject adds to the benchmark of this full name under `o`
/// (0 when there is no injection or the name does not match).
double injected_ns(const options& o, std::string_view full_name);

/// inject_rate - inject_work() on this machine: units per ns and the fixed cost of one call.
struct inject_rate {
  double units_per_ns = 1;
  double fixed_ns = 0;
};

/// inject_calibration() - measured once (about 30 ms) at the first call: the fastest of 11
/// runs of 2^15 calls of 0 and of 64 units, timed by the thread's CPU clock (the same work
/// reads the same rate in every process of a loaded host; registry.cpp says why).
const inject_rate& inject_calibration() noexcept;

/// inject_into() - set cfg's inject budget (trial_config::inject_q8) when `id` matches:
/// NS x inject_calibration() units per operation. register_trial() applies it, so every
/// family gets it. The relative form (REGEX:P%) leaves cfg alone: relative_injection_for().
void inject_into(const options& o, const case_id& id, trial_config& cfg);

/// set_inject_ns() - cfg's inject budget for `ns` ns per operation (0: none).
void set_inject_ns(trial_config& cfg, double ns) noexcept;

/// relative_injection - the state of one benchmark under --kprim_inject=REGEX:P%.
struct relative_injection {
  double fraction = 0;      ///< P / 100: the per-operation time increase asked for
  bool calibrated = false;  ///< calibrate_relative() has run
  double ns = 0;            ///< the NS the probes settled on
  double probe_change = 0;  ///< the change of ns per operation the probes measured at `ns`
};

/// relative_injection_for() - the shared state of `id` under the relative form, or null when
/// `o` has none or `id` does not match. A control twin (contender X_aa) shares X's state:
/// identical code gets the identical injection, and is probed once.
std::shared_ptr<relative_injection> relative_injection_for(const options& o, const case_id& id);

/// relative_probe - one pair of probe trials: per-operation ns without and with `at_ns` ns of
/// injected work.
struct relative_probe {
  double plain_ns = 0;
  double injected_ns = 0;
  double at_ns = 0;
};

/// pooled_relative_ns() - calibrate_relative()'s estimate from every probe pair so far: the
/// slope k, the median over the pairs of (injected / plain - 1) / at_ns (the change one ns of
/// work buys at this point), and the NS asked / k, kept within first_ns / 10 .. first_ns x 10
/// (first_ns: the 1:1 guess, P% of the plain time per operation). Pooling the pairs of all
/// rounds is what makes the NS steady: stepping from one round of 3 pairs to the next
/// (NS x asked / that round's change) multiplied each round's noise into NS, and the same
/// 10% request settled on 0.65..1.29 ns at an uncontended 7.2 ns point (achieved +4.9..+11.4%).
/// Pairs with a non-positive time or at_ns are left out; none left, or k <= 0 (the work hidden,
/// or noise), gives first_ns x 3 (bounded) when `ns` is first_ns, else `ns` back.
double pooled_relative_ns(double ns, double first_ns, double fraction, std::span<const relative_probe> pairs) noexcept;

/// probe_ns_per_op() - the time per operation a probe trial measured: CPU time per operation
/// of its one worker for a single thread (a preempted probe does not read slow: on a shared
/// 2-core host that was most of the probes' spread), wall time per operation otherwise
/// (contenders waiting for each other are the figure). 0 for an invalid trial.
double probe_ns_per_op(const trial_result& r) noexcept;

/// calibrate_relative() - settle rel.ns (see relative_injection): 3 plain probe trials give the
/// first guess, P% of their median time per operation (1:1, what a dependent chain costs at
/// an uncontended point and what added critical-section time costs a saturated lock); then 4
/// rounds of 3 probe pairs (plain and injected back to back, the order alternating, so a
/// drift of the machine is common to both halves), each round at pooled_relative_ns() of all
/// pairs before it. rel.ns is pooled_relative_ns() of all 12 pairs; rel.probe_change is the
/// median change the last round measured (at the NS it ran, the estimate before the last).
/// Probe trials last half the trial time (10..50 ms); about 1.4 s at most.
template <class Make>
void calibrate_relative(relative_injection& rel, const trial_config& cfg, Make& make) {
  trial_config probe = cfg;
  probe.duration = std::clamp<std::chrono::nanoseconds>(cfg.duration / 2, std::chrono::milliseconds(10),
                                                        std::chrono::milliseconds(50));
  auto per_op = [&](double ns) {
    trial_config c = probe;
    set_inject_ns(c, ns);
    auto w = make();
    trial_result r = run_trial(c, *w);
    if (r.abandoned) detail::keep_alive(std::shared_ptr<void>(std::move(w)));
    return probe_ns_per_op(r);
  };
  double plain[3];
  for (double& p : plain) p = per_op(0);
  std::sort(plain, plain + 3);
  const double first = std::max(0.001, rel.fraction * plain[1]);
  constexpr int rounds = 4, per_round = 3;
  relative_probe pairs[rounds * per_round];
  double ns = first, change = 0;
  for (int round = 0; round < rounds; ++round) {
    double changes[per_round] = {};
    int measured = 0;
    for (int i = 0; i < per_round; ++i) {
      relative_probe& p = pairs[round * per_round + i];
      p.at_ns = ns;
      if ((round + i) % 2) {
        p.injected_ns = per_op(ns);
        p.plain_ns = per_op(0);
      } else {
        p.plain_ns = per_op(0);
        p.injected_ns = per_op(ns);
      }
      if (p.plain_ns > 0 && p.injected_ns > 0) changes[measured++] = p.injected_ns / p.plain_ns - 1;
    }
    if (measured > 0) {
      std::sort(changes, changes + measured);
      change = measured % 2 ? changes[measured / 2] : (changes[measured / 2 - 1] + changes[measured / 2]) / 2;
    }
    ns = pooled_relative_ns(ns, first, rel.fraction, std::span(pairs, static_cast<std::size_t>((round + 1) * per_round)));
  }
  rel.ns = ns;
  rel.probe_change = change;
  rel.calibrated = true;
}

/// The counter a benchmark publishes for Google Benchmark's cpu_time: the CPU ns its workers
/// spent per operation. kprim's reporters (main()) move it into each run's cpu time and drop
/// it; report() sets it for harness trials, set_cpu_time() for benchmarks of their own.
inline constexpr const char* cpu_time_counter = "kprim_cpu_ns_per_op";

/// set_cpu_time() - publish `cpu_s` CPU seconds of the benchmark's workers over `ops`
/// operations as its cpu_time (per operation, in ns).
void set_cpu_time(benchmark::State& state, double cpu_s, double ops);

/// loop_result - what a benchmark that is not a harness trial (a hand-written loop:
/// atomics/litmus_sb, list/*, slab/memory/*) did: `ops` operations by `threads` threads in
/// `wall_s` seconds of wall time.
struct loop_result {
  double ops = 0;
  double wall_s = 0;
  unsigned threads = 1;
};

/// report_loop() - publish a loop_result on `state` as every such benchmark does: manual time
/// wall_s / ops (wall_s when ops is 0) and the core counters `ops`, `ops_per_s`, `ns_per_op`
/// (0 when ops is 0) and `kprim_threads`. Its cpu time stays Google Benchmark's (the thread
/// that ran the loop); counters of its own are the benchmark's to add.
void report_loop(benchmark::State& state, const loop_result& r);

/// reserved_counter() - the first counter named like one of Google Benchmark's own fields
/// of a results entry (`threads`, `iterations`, `real_time`, ...: a counter of that name
/// would overwrite the field in the JSON), or "" when there is none.
std::string reserved_counter(const benchmark::UserCounters& counters);

/// refuse_reserved_counters() - SkipWithError on `state`, naming the counter, when
/// reserved_counter() finds one. Returns false then.
bool refuse_reserved_counters(benchmark::State& state);

/// report() - publish a trial on `state`: manual time (ns per operation over all threads),
/// cpu time (cpu_time_counter) and the counters of SCHEMA.md; SkipWithError if the trial is
/// invalid.
void report(benchmark::State& state, const trial_result& r, unsigned threads);

/// finish_runs() - what kprim's reporters do to each batch of runs before Google Benchmark's
/// console, JSON or CSV reporter writes it:
///   - cpu_time from cpu_time_counter (for aggregates: Google Benchmark's statistic of it),
///     then the counter is dropped; runs without it keep Google Benchmark's cpu time;
///   - a run with a counter named like a Google Benchmark field becomes an error run naming
///     it (the counter is dropped);
///   - non-finite counter values (the `_cv` of a counter whose mean is 0, ...) are dropped,
///     and non-finite times become 0, so the JSON is strict.
void finish_runs(std::vector<benchmark::BenchmarkReporter::Run>& runs);

/// wrap_reporter() - a reporter that passes every batch through finish_runs() to `inner`
/// (and forwards the context, the streams Google Benchmark gives it, and Finalize()).
std::unique_ptr<benchmark::BenchmarkReporter> wrap_reporter(std::unique_ptr<benchmark::BenchmarkReporter> inner);
/// The same around a reporter that is not the wrapper's to own (it must outlive the wrapper).
std::unique_ptr<benchmark::BenchmarkReporter> wrap_reporter(benchmark::BenchmarkReporter& inner);

/// A workload may publish counters of its own after a valid trial (hand-over latency, rseq
/// aborts, grace-period percentiles, ...): `void publish(benchmark::State&, const trial_result&)`.
template <class W>
concept publishing_workload = requires(W& w, benchmark::State& s, const trial_result& r) { w.publish(s, r); };

/// register_trial() - register one benchmark that, per Google Benchmark iteration (always
/// one), builds a fresh workload with make() and runs one trial of it under cfg, then
/// report()s it and, for a publishing_workload, lets it add its own counters.
/// make: () -> std::unique_ptr<W>. An abandoned trial's workload is kept alive to the end.
/// --kprim_inject adds its work to cfg.cs here (inject_into()). A counter named like a Google
/// Benchmark field makes the run an error naming it.
template <class Make>
void register_trial(const case_id& id, const trial_config& base, Make make) {
  using W = typename decltype(make())::element_type;
  trial_config cfg = base;
  inject_into(current_options(), id, cfg);
  std::shared_ptr<relative_injection> rel = relative_injection_for(current_options(), id);
  benchmark::RegisterBenchmark(id.name().c_str(),
                               [cfg, make, rel](benchmark::State& state) mutable {
                                 trial_config run = cfg;
                                 if (rel) {
                                   // Sized once, at the first injected trial of the pair.
                                   if (!rel->calibrated) calibrate_relative(*rel, cfg, make);
                                   set_inject_ns(run, rel->ns);
                                 }
                                 for (auto _ : state) {
                                   auto w = make();
                                   trial_result r = run_trial(run, *w);
                                   report(state, r, run.threads);
                                   if (rel && !state.error_occurred()) {
                                     state.counters["kprim_inject_ns"] = rel->ns;
                                     state.counters["kprim_inject_probe_change"] = rel->probe_change;
                                   }
                                   if (r.abandoned) {
                                     detail::keep_alive(std::shared_ptr<void>(std::move(w)));
                                   } else if constexpr (publishing_workload<W>) {
                                     if (r.error.empty()) w->publish(state, r);
                                   }
                                   if (!state.error_occurred()) refuse_reserved_counters(state);
                                 }
                               })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

/// register_control() - register a family's A/A control: the benchmark `id` and its twin,
/// the same id with contender `<contender>_aa`, both running identical code (the same
/// workload type, the same make(), the same cfg). Interleaved like every other benchmark,
/// the pair's difference is what this machine cannot resolve (tools match the pair by the
/// `_aa` suffix, results/SCHEMA.md).
template <class Make>
void register_control(const case_id& id, const trial_config& cfg, Make make) {
  register_trial(id, cfg, make);
  case_id twin = id;
  twin.contender += "_aa";
  register_trial(twin, cfg, std::move(make));
}

/// register_trial_or_control() - for a loop over a family's contender table: the row that is
/// the family's A/A control (`control` true) goes through register_control(), every other row
/// through register_trial().
template <class Make>
void register_trial_or_control(bool control, const case_id& id, const trial_config& cfg, Make make) {
  if (control)
    register_control(id, cfg, std::move(make));
  else
    register_trial(id, cfg, std::move(make));
}

/// add_context() - record provenance (machine, build, peers, options) in the JSON context.
void add_context();

/// benchmark_args() - the argv main() hands Google Benchmark: argv (argc entries) plus
/// --benchmark_enable_random_interleaving=true unless an argument already sets that flag (to
/// any value) or BENCHMARK_ENABLE_RANDOM_INTERLEAVING is in the environment; then nullptr.
std::vector<char*> benchmark_args(int argc, char** argv);

/// main() - parse kprim flags, initialise Google Benchmark (random interleaving on unless
/// set), call register_fn, run with wrap_reporter() around Google Benchmark's display
/// reporter and, with --benchmark_out, its file reporter.
/// `family`: the family's own flags (parse_options()).
/// Exit status 2 with one line on stderr for a bad kprim or family flag, and 2 after Google
/// Benchmark's own message for a flag it does not recognise (ReportUnrecognizedArguments).
int main(int argc, char** argv, void (*register_fn)(), std::span<const family_flag> family = {});

}  // namespace kprim::bench
