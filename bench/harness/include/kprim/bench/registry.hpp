// kprim/bench/registry.hpp: turns trials into Google Benchmark benchmarks, so users keep
// --benchmark_filter, --benchmark_repetitions and --benchmark_out. Each family's main() is
// kprim::bench::main(argc, argv, register_fn); register_fn walks the family's contender table.
#pragma once

#include <kprim/bench/harness.hpp>

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kprim::bench {

/// Run-wide options, from kprim's own flags (parsed and removed from argv by main()):
///   --kprim_trial_ms=N       trial duration (default 200)
///   --kprim_threads=a,b,...  thread sweep (default 1..nproc, then 2x and 4x nproc)
///   --kprim_pin=none|compact|spread
///   --kprim_cs=N --kprim_gap=N --kprim_locks=N   contended-workload knobs (0, 0, 1)
///   --kprim_latency=on|off   sample acquire latency (default on; off to check its overhead)
struct options {
  unsigned trial_ms = 200;
  std::vector<unsigned> threads;
  pin_policy pin = pin_policy::none;
  std::uint32_t cs = 0;
  std::uint32_t gap = 0;
  std::uint32_t locks = 1;
  bool latency = true;
};

/// current_options() - the options of this process; valid inside register_fn and after.
const options& current_options() noexcept;

/// parse_options() - parse and remove --kprim_* flags from argv. On a bad value or an
/// unknown --kprim_ flag returns false and sets `error` to one line; leaves other flags.
bool parse_options(int& argc, char** argv, options& out, std::string& error);

/// One benchmark's identity: parses back as family/workload/contender/key:value... (SCHEMA.md).
struct case_id {
  std::string family, workload, contender;
  unsigned threads = 1;
  std::vector<std::pair<std::string, std::string>> params;  ///< after threads, in order
  [[nodiscard]] std::string name() const;
};

/// base_config() - a trial_config for `threads` from the run-wide options.
trial_config base_config(unsigned threads);

/// report() - publish a trial on `state`: manual time (ns per operation over all threads)
/// and the counters of SCHEMA.md; SkipWithError if the trial is invalid.
void report(benchmark::State& state, const trial_result& r, unsigned threads);

/// A workload may publish counters of its own after a valid trial (hand-over latency, rseq
/// aborts, grace-period percentiles, ...): `void publish(benchmark::State&, const trial_result&)`.
template <class W>
concept publishing_workload = requires(W& w, benchmark::State& s, const trial_result& r) { w.publish(s, r); };

/// register_trial() - register one benchmark that, per Google Benchmark iteration (always
/// one), builds a fresh workload with make() and runs one trial of it under cfg, then
/// report()s it and, for a publishing_workload, lets it add its own counters.
/// make: () -> std::unique_ptr<W>. An abandoned trial's workload is kept alive to the end.
template <class Make>
void register_trial(const case_id& id, const trial_config& cfg, Make make) {
  using W = typename decltype(make())::element_type;
  benchmark::RegisterBenchmark(id.name().c_str(),
                               [cfg, make](benchmark::State& state) {
                                 for (auto _ : state) {
                                   auto w = make();
                                   trial_result r = run_trial(cfg, *w);
                                   report(state, r, cfg.threads);
                                   if (r.abandoned) {
                                     detail::keep_alive(std::shared_ptr<void>(std::move(w)));
                                   } else if constexpr (publishing_workload<W>) {
                                     if (r.error.empty()) w->publish(state, r);
                                   }
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

/// add_context() - record provenance (machine, build, peers, options) in the JSON context.
void add_context();

/// main() - parse kprim flags, initialise Google Benchmark, call register_fn, run.
/// Exit status 2 with one line on stderr for a bad kprim flag; Google Benchmark's own
/// handling (exit 1) for unknown --benchmark flags.
int main(int argc, char** argv, void (*register_fn)());

}  // namespace kprim::bench
