// bench_floor: the machine's physical floor, measured in the same run as the figures it
// normalises (results/SCHEMA.md, family `floor`): one cache-line transfer between two PUs of
// each hwloc distance class present, a contended atomic RMW, and the cheapest uncontended lock
// pairs. Tools divide hand-over latency and contended cost by these (floor units), which is
// what makes two machines comparable. For lock throughput itself see bench_locks.
#include <kprim/bench/floor.hpp>
#include <kprim/bench/registry.hpp>
#include <kprim/bench/topology.hpp>

#include <kprim/spinlock.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using kprim::bench::clock;
using kprim::bench::ping_pong_line;
using kprim::bench::worker;

/// ping_pong - one cache line passed back and forth between worker 0 (the timer), pinned to
/// PU `a`, and worker 1 (the echo), pinned to PU `b`, whatever --kprim_pin says: this
/// benchmark is about placement. The protocol is the harness's ping_pong_line (floor.hpp, shared
/// with transfer_floor_ns()): round r, the timer stores 2r+1 and spins (`pause`) until it
/// reads 2r+2; the echo spins until it reads 2r+1 and stores 2r+2. One harness operation per
/// side per round. Only the timer reads the clock, so no cross-CPU clock offset enters: it
/// times every sample_every-th round trip with a clock pair (less the pair's cost, as for
/// lat_*) after warm_up rounds. transfer_ns = median round trip / 2: the one-way time for a
/// store on one PU to be seen by a spinning reader on the other (the reader's copy
/// invalidated, the line fetched back). Waits are bounded (give_up): the trial's stop flag is
/// the harness's, so a side whose partner has stopped returns to the harness loop, which sees
/// the flag; an unfinished round resumes where it was on the next call.
class ping_pong {
 public:
  explicit ping_pong(kprim::bench::pu_pair pair) : pus_{pair.a, pair.b} {
    samples_.reserve(max_samples);
  }

  void acquire(worker& t) {
    side& me = *sides_[t.tid & 1];
    if (unlikely(!me.pinned)) {
      me.pinned = true;
      if (!kprim::bench::pin_current_thread_to_pu(pus_[t.tid & 1])) me.pin_failed = true;
    }
    if (t.tid == 0)
      serve(me);
    else if (t.tid == 1)
      echo(me);
  }
  void release(worker&) {}

  std::string check(std::uint64_t) const {
    for (unsigned i = 0; i < 2; ++i)
      if (sides_[i]->pin_failed)
        return "could not pin worker " + std::to_string(i) + " to PU " + std::to_string(pus_[i]);
    return {};
  }

  void publish(benchmark::State& state, const kprim::bench::trial_result&) {
    auto& c = state.counters;
    c["pu_a"] = pus_[0];
    c["pu_b"] = pus_[1];
    c["round_trips"] = static_cast<double>(sides_[0]->round);
    c["round_trip_samples"] = static_cast<double>(samples_.size());
    if (samples_.empty()) return;  // no finite figure: left out (SCHEMA.md)
    std::vector<double> s = samples_;
    const auto mid = s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2);
    std::nth_element(s.begin(), mid, s.end());
    c["round_trip_ns"] = *mid;
    c["transfer_ns"] = *mid / 2;
    const side& timer = *sides_[0];
    if (timer.last_round > timer.first_round)
      c["round_trip_mean_ns"] =
          std::chrono::duration<double, std::nano>(timer.last_start - timer.first_start).count() /
          static_cast<double>(timer.last_round - timer.first_round);
  }

 private:
  static constexpr std::uint64_t warm_up = 1024, sample_every = 16;
  static constexpr std::size_t max_samples = std::size_t{1} << 16;
  static constexpr auto give_up = std::chrono::milliseconds(1);

  struct side {
    std::uint64_t round = 0;  ///< rounds this side has completed
    bool pending = false;     ///< timer: stored this round's value, echo not yet seen
    bool timing = false;      ///< timer: this round is a timed sample
    bool pinned = false, pin_failed = false;
    clock::time_point t0{};  ///< timer: start of this round
    /// timer: start of the first and the latest timed round, and their round numbers.
    clock::time_point first_start{}, last_start{};
    std::uint64_t first_round = 0, last_round = 0;
  };

  /// wait_for() - spin (`pause`) until the line holds `v`; false after give_up (the clock is
  /// read every 1024 polls, only for that bound). The protocol is ping_pong_line (floor.hpp).
  bool wait_for(std::uint64_t v) const { return line_->wait<true>(v, give_up, 1024); }

  void serve(side& me) {
    const std::uint64_t r = me.round;
    if (!me.pending) {
      me.timing = r >= warm_up && r % sample_every == 0;
      if (me.timing) me.t0 = clock::now();
      line_->store(ping_pong_line::served(r));
      me.pending = true;
    }
    if (!wait_for(ping_pong_line::answered(r))) {
      me.timing = false;  // a round that outlived give_up is not a sample
      return;
    }
    me.pending = false;
    me.round = r + 1;
    if (!me.timing) return;
    const auto t1 = clock::now();
    const double rt = std::chrono::duration<double, std::nano>(t1 - me.t0).count() - clock_ns_;
    if (samples_.size() < max_samples) samples_.push_back(rt > 0 ? rt : 0);
    if (me.first_start == clock::time_point{}) {
      me.first_start = me.t0;
      me.first_round = r;
    }
    me.last_start = me.t0;
    me.last_round = r;
  }

  void echo(side& me) {
    const std::uint64_t r = me.round;
    if (!wait_for(ping_pong_line::served(r))) return;
    line_->store(ping_pong_line::answered(r));
    me.round = r + 1;
  }

  unsigned pus_[2];
  std::unique_ptr<ping_pong_line> line_ = std::make_unique<ping_pong_line>();
  std::unique_ptr<kprim::cacheline_padded<side>[]> sides_ =
      std::make_unique<kprim::cacheline_padded<side>[]>(2);
  std::vector<double> samples_;
  double clock_ns_ = kprim::bench::clock_pair_ns();
};

/// rmw_body - every worker does a seq_cst fetch_add on one shared word: the contended RMW floor.
struct rmw_body {
  static constexpr const char* name = "atomic_fetch_add";
  void acquire(worker&) { (**v).fetch_add(1, std::memory_order_seq_cst); }
  void release(worker&) {}
  std::unique_ptr<kprim::cacheline_padded<std::atomic<std::uint64_t>>> v =
      std::make_unique<kprim::cacheline_padded<std::atomic<std::uint64_t>>>();
};

/// lock_pair_body<L> - one thread, one private lock: the cheapest uncontended lock+unlock.
template <class L, kprim::bench::fixed_string Name>
struct lock_pair_body {
  static constexpr auto name = Name;
  void acquire(worker&) { kprim::spin_lock(&**l); }
  void release(worker&) { kprim::spin_unlock(&**l); }
  std::unique_ptr<kprim::cacheline_padded<L>> l = std::make_unique<kprim::cacheline_padded<L>>();
};
using tas_pair = lock_pair_body<kprim::tas_spinlock, "kprim_tas">;
using qspinlock_pair = lock_pair_body<kprim::qspinlock, "kprim_qspinlock">;

/// register_skipped() - a benchmark that reports `why` through SkipWithError and runs nothing.
void register_skipped(const kprim::bench::case_id& id, std::string why) {
  benchmark::RegisterBenchmark(id.name().c_str(),
                               [why](benchmark::State& state) {
                                 state.SkipWithError(why.c_str());
                                 for (auto _ : state) {
                                 }
                               })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

/// can_pin() - whether a thread can be bound to `pu` (tried on a throwaway thread, so the
/// registering thread's own affinity is left as it is).
bool can_pin(unsigned pu) {
  bool ok = false;
  std::thread([&ok, pu] { ok = kprim::bench::pin_current_thread_to_pu(pu); }).join();
  return ok;
}

void register_transfer() {
  using namespace kprim::bench;
  const std::vector<pu_pair> pairs = representative_pairs();
  if (pairs.empty()) {
    register_skipped(case_id{"floor", "transfer", "single_pu", 2, {}},
                     "floor/transfer needs two PUs to pass a cache line between; hwloc reports " +
                         std::to_string(nproc()) + " allowed PU(s)");
    return;
  }
  for (const pu_pair& p : pairs) {
    const case_id id{"floor", "transfer", class_name(p.cls), 2, {}};
    if (!can_pin(p.a) || !can_pin(p.b)) {
      register_skipped(id, "cannot pin threads to PUs " + std::to_string(p.a) + " and " +
                               std::to_string(p.b) + " (hwloc refused: a synthetic topology, or a cpuset)");
      continue;
    }
    trial_config cfg = base_config(2);
    cfg.cs = cfg.gap = 0;
    cfg.pin = pin_policy::none;  // the body pins its two workers to the pair itself
    cfg.sample_latency = false;  // the timer thread takes its own samples
    register_trial(id, cfg, [p] { return std::make_unique<ping_pong>(p); });
  }
}

void register_rmw() {
  using namespace kprim::bench;
  for (unsigned n : current_options().threads) {
    trial_config cfg = base_config(n);
    cfg.cs = cfg.gap = 0;
    register_trial(case_id{"floor", "rmw", rmw_body::name, n, {}}, cfg, [] { return std::make_unique<rmw_body>(); });
  }
}

void register_lock_pairs() {
  using namespace kprim::bench;
  trial_config cfg = base_config(1);
  cfg.cs = cfg.gap = 0;
  register_trial(case_id{"floor", "lock_pair", tas_pair::name, 1, {}}, cfg, [] { return std::make_unique<tas_pair>(); });
  // The family's A/A control (SCHEMA.md, "A/A controls").
  register_control(case_id{"floor", "lock_pair", qspinlock_pair::name, 1, {}}, cfg,
                   [] { return std::make_unique<qspinlock_pair>(); });
}

void register_all() {
  register_transfer();
  register_rmw();
  register_lock_pairs();
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
