// bench_locks: lock/unlock under contention. One generic body (lock_body) per workload; every
// contender is a row of the `contenders` table below: a small adapter with lock/unlock.
// Reader-writer locks live in bench_rwlocks; this family is for exclusive locks only.
#include <kprim/bench/floor.hpp>
#include <kprim/bench/registry.hpp>

#include "bench_locks_layer.hpp"
#include "ck_peers.h"

#include <kprim/irq.hpp>
#include <kprim/mutex.hpp>
#include <kprim/percpu.hpp>
#include <kprim/spinlock.hpp>

#include <pthread.h>
#include <oneapi/tbb/mutex.h>
#include <oneapi/tbb/queuing_mutex.h>
#include <oneapi/tbb/spin_mutex.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using kprim::bench::worker;

// ---- Contender adapters. `exclusive` says whether the body may check mutual exclusion. ----

struct nolock {
  static constexpr const char* name = "nolock";
  static constexpr bool exclusive = false;
  void lock(worker&) {}
  void unlock(worker&) {}
};

struct atomic_fetch_add {
  static constexpr const char* name = "atomic_fetch_add";
  static constexpr bool exclusive = false;
  std::atomic<std::uint64_t> v{0};
  void lock(worker&) { v.fetch_add(1, std::memory_order_seq_cst); }
  void unlock(worker&) {}
};

struct pthread_mutex {
  static constexpr const char* name = "pthread_mutex";
  static constexpr bool exclusive = true;
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  ~pthread_mutex() { pthread_mutex_destroy(&m); }
  void lock(worker&) { pthread_mutex_lock(&m); }
  void unlock(worker&) { pthread_mutex_unlock(&m); }
};

struct pthread_spin {
  static constexpr const char* name = "pthread_spinlock";
  static constexpr bool exclusive = true;
  pthread_spinlock_t s;
  pthread_spin() { pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE); }
  ~pthread_spin() { pthread_spin_destroy(&s); }
  void lock(worker&) { pthread_spin_lock(&s); }
  void unlock(worker&) { pthread_spin_unlock(&s); }
};

/// Any lock with std-style lock()/unlock(): std::mutex, tbb::spin_mutex, tbb::mutex.
template <class M, kprim::bench::fixed_string Name>
struct std_style {
  static constexpr auto name = Name;
  static constexpr bool exclusive = true;
  M m;
  void lock(worker&) { m.lock(); }
  void unlock(worker&) { m.unlock(); }
};

/// tbb::queuing_mutex is only reachable through its scoped_lock, which holds the queue
/// node; it lives in the worker's node storage between lock and unlock.
struct tbb_queuing {
  static constexpr const char* name = "tbb_queuing_mutex";
  static constexpr bool exclusive = true;
  using guard = tbb::queuing_mutex::scoped_lock;
  tbb::queuing_mutex m;
  void lock(worker& t) { t.emplace_guard<guard>(m); }
  void unlock(worker& t) { t.release_guard<guard>(); }
};

/// Concurrency Kit spinlocks (C adapters in peers/ck_peers.c).
template <void (*Init)(kp_ck_lock*), void (*Lock)(kp_ck_lock*), void (*Unlock)(kp_ck_lock*),
          kprim::bench::fixed_string Name>
struct ck_simple {
  static constexpr auto name = Name;
  static constexpr bool exclusive = true;
  kp_ck_lock l;
  ck_simple() { Init(&l); }
  void lock(worker&) { Lock(&l); }
  void unlock(worker&) { Unlock(&l); }
};

struct ck_mcs {
  static constexpr const char* name = "ck_mcs";
  static constexpr bool exclusive = true;
  kp_ck_lock l;
  ck_mcs() { kp_ck_mcs_init(&l); }
  void lock(worker& t) { kp_ck_mcs_lock(&l, &t.node<kp_ck_mcs_node>()); }
  void unlock(worker& t) { kp_ck_mcs_unlock(&l, &t.node<kp_ck_mcs_node>()); }
};

/// kprim spinlocks, driven through the kernel verbs.
template <class L, kprim::bench::fixed_string Name>
struct kprim_spin {
  static constexpr auto name = Name;
  static constexpr bool exclusive = true;
  L l;
  void lock(worker&) { kprim::spin_lock(&l); }
  void unlock(worker&) { kprim::spin_unlock(&l); }
};

/// The kernel mutex, through mutex_lock()/mutex_unlock().
/// Its slow-path counters (kprim::mutex_stat) become the trial's mutex_* counters (lock_body).
struct kprim_mutex {
  static constexpr const char* name = "kprim_mutex";
  static constexpr bool exclusive = true;
  static constexpr bool has_mutex_stat = true;
  kprim::mutex m;
  void lock(worker&) { kprim::mutex_lock(&m); }
  void unlock(worker&) { kprim::mutex_unlock(&m); }
};

// ---- The kernel's context rules (issue 14): what they cost. ----

/// spin_lock_irqsave()/spin_unlock_irqrestore() on the default spinlock_t: the soft interrupt
/// mask (kprim/irq.hpp) around the lock; set against kprim_qspinlock (spin_lock/spin_unlock).
/// The flags live in the worker's node storage from lock to unlock.
struct kprim_spin_irqsave {
  static constexpr const char* name = "kprim_spin_irqsave";
  static constexpr bool exclusive = true;
  kprim::spinlock_t l;
  void lock(worker& t) { kprim::spin_lock_irqsave(&l, t.node<unsigned long>()); }
  void unlock(worker& t) { kprim::spin_unlock_irqrestore(&l, t.node<unsigned long>()); }
};

/// spin_lock/mutex_lock with the debug layer (might_sleep, preempt count, lockdep) compiled in
/// (On) or out, both behind the same out-of-line calls (bench_locks_layer.hpp: one binary, no
/// ODR violation), so the pair's difference is the layer's cost.
template <bool On>
struct layer_spin {
  static constexpr const char* name = On ? "kprim_spinlock_layer_on" : "kprim_spinlock_layer_off";
  static constexpr bool exclusive = true;
  void* l = On ? kprim_layer_cost::on::spin_create() : kprim_layer_cost::off::spin_create();
  ~layer_spin() { On ? kprim_layer_cost::on::spin_destroy(l) : kprim_layer_cost::off::spin_destroy(l); }
  void lock(worker&) { On ? kprim_layer_cost::on::spin_lock(l) : kprim_layer_cost::off::spin_lock(l); }
  void unlock(worker&) { On ? kprim_layer_cost::on::spin_unlock(l) : kprim_layer_cost::off::spin_unlock(l); }
};
template <bool On>
struct layer_mutex {
  static constexpr const char* name = On ? "kprim_mutex_layer_on" : "kprim_mutex_layer_off";
  static constexpr bool exclusive = true;
  void* m = On ? kprim_layer_cost::on::mutex_create() : kprim_layer_cost::off::mutex_create();
  ~layer_mutex() { On ? kprim_layer_cost::on::mutex_destroy(m) : kprim_layer_cost::off::mutex_destroy(m); }
  void lock(worker&) { On ? kprim_layer_cost::on::mutex_lock(m) : kprim_layer_cost::off::mutex_lock(m); }
  void unlock(worker&) { On ? kprim_layer_cost::on::mutex_unlock(m) : kprim_layer_cost::off::mutex_unlock(m); }
};

/// These run the uncontended and contended workloads only (register_all).
using context_contenders = kprim::bench::contender_table<kprim_spin_irqsave, layer_spin<false>, layer_spin<true>,
                                                         layer_mutex<false>, layer_mutex<true>>;

// ---- The contender table: every row runs every workload. ----
using contenders =
    kprim::bench::contender_table<nolock, atomic_fetch_add, pthread_mutex, pthread_spin,
                                  std_style<std::mutex, "std_mutex">, std_style<tbb::spin_mutex, "tbb_spin_mutex">,
                                  std_style<tbb::mutex, "tbb_mutex">, tbb_queuing,
                                  ck_simple<kp_ck_ticket_init, kp_ck_ticket_lock, kp_ck_ticket_unlock, "ck_ticket">,
                                  ck_simple<kp_ck_fas_init, kp_ck_fas_lock, kp_ck_fas_unlock, "ck_fas">, ck_mcs,
                                  kprim_spin<kprim::qspinlock, "kprim_qspinlock">,
                                  kprim_spin<kprim::basic_qspinlock<kprim::spin_policy::spin>, "kprim_qspinlock_spin">,
                                  kprim_spin<kprim::basic_qspinlock<kprim::spin_policy::virt>, "kprim_qspinlock_virt">,
                                  kprim_spin<kprim::ticket_spinlock, "kprim_ticket">,
                                  kprim_spin<kprim::tas_spinlock, "kprim_tas">,
                                  kprim_spin<kprim::ttas_spinlock, "kprim_ttas">, kprim_mutex>;

/// The family's A/A control (results/SCHEMA.md, "A/A controls"): kprim_qspinlock, registered
/// twice (kprim_qspinlock and kprim_qspinlock_aa) in every workload.
template <class L>
constexpr bool is_control = std::is_same_v<L, kprim_spin<kprim::qspinlock, "kprim_qspinlock">>;

// ---- The generic body. ----

/// lock_body<L> - `nlocks` locks, each with the word it guards on the same cache line (as
/// real data sits next to its lock). private_locks: worker t always takes lock t (no
/// sharing: the uncontended cost); otherwise every acquisition picks one at random.
/// check(): for exclusive locks the guarded words, bumped non-atomically inside the critical
/// section, must add up to the operations done: any overlap loses an increment.
/// publish(): owner_changes_per_op, the share of acquisitions whose previous holder of that
/// lock was another worker (the lock's line and its data moved: at cs=0 what sets the
/// throughput; 1 - 1/threads for strict alternation, near 0 for long runs of one thread); for
/// kprim_mutex also its slow-path events per operation (mutex_stat over the trial).
template <class L>
class lock_body {
 public:
  lock_body(unsigned nlocks, bool private_locks)
      : n_(nlocks), private_(private_locks), slots_(std::make_unique<kprim::cacheline_padded<slot>[]>(nlocks)) {
    if constexpr (has_stat) stat_before_ = kprim::mutex_stat_read();
  }

  void acquire(worker& t) {
    t.cur = private_ ? t.tid : (n_ == 1 ? 0 : static_cast<unsigned>(t.next_random() % n_));
    slots_[t.cur]->lock.lock(t);
  }
  void release(worker& t) {
    slot& s = *slots_[t.cur];
    if constexpr (L::exclusive) {
      ++s.guarded;
      s.owner_changes += s.last_owner != t.tid;
      s.last_owner = t.tid;
    }
    s.lock.unlock(t);
  }
  void publish(benchmark::State& state, const kprim::bench::trial_result& r) const {
    if constexpr (!L::exclusive) return;
    const double ops = static_cast<double>(r.total());
    if (!(ops > 0)) return;
    std::uint64_t changes = 0;
    for (unsigned i = 0; i < n_; ++i) changes += slots_[i]->owner_changes;
    auto& c = state.counters;
    c["owner_changes_per_op"] = static_cast<double>(changes) / ops;
    if constexpr (has_stat) {
      const kprim::mutex_stat a = kprim::mutex_stat_read(), &b = stat_before_;
      const auto per_op = [&](std::uint64_t x, std::uint64_t y) { return static_cast<double>(x - y) / ops; };
      c["mutex_slowpath_per_op"] = per_op(a.slowpath, b.slowpath);
      c["mutex_spins_per_op"] = per_op(a.spins, b.spins);
      c["mutex_spin_success"] = a.spins > b.spins ? static_cast<double>(a.spin_acquired - b.spin_acquired) /
                                                        static_cast<double>(a.spins - b.spins)
                                                  : 0.0;
      c["mutex_sleeps_per_op"] = per_op(a.sleeps, b.sleeps);
      c["mutex_unlock_slowpath_per_op"] = per_op(a.unlock_slowpath, b.unlock_slowpath);
      c["mutex_wakeups_per_op"] = per_op(a.wakeups, b.wakeups);
      c["mutex_wakeups_skipped_per_op"] = per_op(a.wakeups_skipped, b.wakeups_skipped);
      c["mutex_handoffs_per_s"] = r.trial_s > 0 ? static_cast<double>(a.handoffs - b.handoffs) / r.trial_s : 0.0;
    }
  }
  std::string check(std::uint64_t total_ops) const {
    if constexpr (!L::exclusive) return {};
    std::uint64_t sum = 0;
    for (unsigned i = 0; i < n_; ++i) sum += slots_[i]->guarded;
    if (sum == total_ops) return {};
    return std::string(L::name) + ": guarded count " + std::to_string(sum) + " != operations " +
           std::to_string(total_ops) + " (mutual exclusion broken)";
  }

 private:
  static constexpr bool has_stat = requires { L::has_mutex_stat; };
  struct slot {
    L lock;
    std::uint64_t guarded = 0;
    std::uint64_t owner_changes = 0;  ///< under the lock, as guarded
    unsigned last_owner = ~0u;
  };
  kprim::mutex_stat stat_before_{};
  unsigned n_;
  bool private_;
  std::unique_ptr<kprim::cacheline_padded<slot>[]> slots_;
};

/// Workloads: uncontended (a private lock per thread: the bare lock+unlock cost, and how it
/// scales when nothing is shared) and contended (--kprim_locks shared locks, default one).
template <class L>
void register_contender(const char* workload) {
  using namespace kprim::bench;
  const options& o = current_options();
  const bool priv = std::string_view(workload) == "uncontended";
  for (unsigned n : o.threads) {
    const unsigned nlocks = priv ? n : o.locks;
    trial_config cfg = base_config(n);
    if (priv) cfg.cs = cfg.gap = 0;
    case_id id{"locks", workload, L::name, n, {{"cs", std::to_string(cfg.cs)}, {"gap", std::to_string(cfg.gap)}, {"locks", priv ? std::string("per_thread") : std::to_string(nlocks)}}};
    register_trial_or_control(is_control<L>, id, cfg, [nlocks, priv] { return std::make_unique<lock_body<L>>(nlocks, priv); });
  }
}

/// handover_body<L> - hand-over latency on ONE clock (the releaser's), so no cross-CPU clock
/// offset enters it (results/SCHEMA.md, "Handover counters"). One shared lock; every acquirer
/// bumps an acquisition sequence word (a cache line of its own) inside its critical section,
/// with its CPU in the low bits. At every stride-th release of a worker, that worker notes the
/// word, stamps t0 just before unlock, then waits (cpu_relax, after spin_for yielding the CPU
/// for oversubscription, giving the sample up after give_up: the trial's stop flag is not the
/// body's to read, so a releaser left alone at the end waits at most that long) until the
/// count moves, and stamps t1. The sample t1 - t0 (less the clock-pair cost, as for lat_*) is
/// "unlock -> the releaser sees the next owner": the hand-over proper (the unlock store
/// reaching a waiter, the waiter's acquisition, a sleeping lock's wake-up) plus the new
/// owner's store to the sequence line and that line's transfer back to the releaser - so
/// never less than one cache-line transfer (the floor family's transfer_ns). Only another
/// thread's acquisition ends a wait, never the releaser's own (it is still waiting). A next
/// owner on the releaser's own CPU could only run while the releaser was off it: such a sample
/// measures the scheduler, not a CPU-to-CPU hand-over, and is counted apart (same_cpu).
/// The stride adapts so the waits take about wait_budget of a worker's time; the released
/// lock is free to the others meanwhile. check(): the count, bumped non-atomically under the
/// lock, must equal the operations done (mutual exclusion).
template <class L>
class handover_body {
 public:
  /// Built right before its trial: the transfer floor measured here and again in publish() is
  /// the machine's at the time of this trial (a VM's vCPUs move between host cores in one run).
  explicit handover_body(unsigned threads)
      : mine_(threads), clock_ns_(kprim::bench::clock_pair_ns()), floor_ns_(kprim::bench::transfer_floor_ns()) {}

  void acquire(worker& t) {
    lock().lock(t);
    const std::uint64_t w = seq().load(std::memory_order_relaxed);
    seq().store(((count_of(w) + 1) << cpu_bits) | (kprim::raw_smp_processor_id() & cpu_mask),
                std::memory_order_relaxed);
  }
  void release(worker& t) {
    per_thread& me = *mine_[t.tid];
    if (--me.countdown != 0) {
      lock().unlock(t);
      return;
    }
    const std::uint64_t seen = seq().load(std::memory_order_relaxed);  // our own acquisition
    const auto t0 = kprim::bench::clock::now();
    lock().unlock(t);
    std::uint64_t next = 0;
    const auto t1 = wait_for_next_owner(seen, t0, next);
    if (!t1) {
      ++me.timeouts;
      me.countdown = me.stride;
      me.last_end = {};  // the given-up wait is no measure of the operations' cost
      return;
    }
    const double wait = std::chrono::duration<double, std::nano>(*t1 - t0).count();
    const double sample = wait - clock_ns_;
    const bool same_cpu = (next & cpu_mask) == (kprim::raw_smp_processor_id() & cpu_mask);
    (same_cpu ? me.same_cpu_hist : me.hist).record(sample > 0 ? static_cast<std::uint64_t>(sample) : 0);
    // The worker's own cost per operation since its previous sample sets the next stride.
    if (me.last_end != kprim::bench::clock::time_point{}) {
      const double per_op = std::chrono::duration<double, std::nano>(t0 - me.last_end).count() /
                            static_cast<double>(me.stride);
      me.stride = next_stride(wait, per_op);
    }
    me.last_end = *t1;
    me.countdown = me.stride;
  }
  std::string check(std::uint64_t total_ops) const {
    const std::uint64_t acquisitions = count_of(seq().load(std::memory_order_relaxed));
    if (acquisitions == total_ops) return {};
    return std::string(L::name) + ": acquisition count " + std::to_string(acquisitions) +
           " != operations " + std::to_string(total_ops) + " (mutual exclusion broken)";
  }
  void publish(benchmark::State& state, const kprim::bench::trial_result&) const {
    // The floor again, right after the trial: the smaller of the two (a placement change in
    // the middle of the trial leaves one of them at the faster state the samples may have seen).
    const double after = kprim::bench::transfer_floor_ns();
    const double floor = floor_ns_ > 0 && after > 0 ? std::min(floor_ns_, after) : std::max(floor_ns_, after);
    kprim::bench::latency_histogram all, same;
    double timeouts = 0;
    for (const auto& m : mine_) {
      all.merge(m->hist);
      same.merge(m->same_cpu_hist);
      timeouts += static_cast<double>(m->timeouts);
    }
    auto& c = state.counters;
    if (all.count() > 0) {  // no sample, no figure (never a 0 that reads as a hand-over)
      c["handover_p50_ns"] = static_cast<double>(all.percentile(0.50));
      c["handover_p99_ns"] = static_cast<double>(all.percentile(0.99));
      c["handover_p999_ns"] = static_cast<double>(all.percentile(0.999));
      if (floor > 0) c["handover_floor_ratio"] = static_cast<double>(all.percentile(0.50)) / floor;
    }
    if (floor > 0) c["handover_floor_ns"] = floor;
    c["handover_samples"] = static_cast<double>(all.count());
    c["handover_timeouts"] = timeouts;
    c["handover_same_cpu"] = static_cast<double>(same.count());
    if (same.count() > 0) c["handover_same_cpu_p50_ns"] = static_cast<double>(same.percentile(0.50));
  }

 private:
  static constexpr auto spin_for = std::chrono::microseconds(20);
  static constexpr auto give_up = std::chrono::milliseconds(10);
  static constexpr std::uint64_t first_stride = 64, min_stride = 16, max_stride = 65536;
  static constexpr double wait_budget = 0.05;
  /// The sequence word: acquisition count above cpu_bits, the acquirer's CPU (mod 2^cpu_bits) below.
  static constexpr unsigned cpu_bits = 20;
  static constexpr std::uint64_t cpu_mask = (std::uint64_t{1} << cpu_bits) - 1;
  static constexpr std::uint64_t count_of(std::uint64_t w) noexcept { return w >> cpu_bits; }

  /// wait_for_next_owner() - t1, the releaser's clock once the count has moved past `seen`'s
  /// (the word then read goes to `next`); nothing if it has not within give_up. The clock is
  /// read every 256 polls while spinning (for the bounds), and on every poll once yielding.
  std::optional<kprim::bench::clock::time_point> wait_for_next_owner(
      std::uint64_t seen, kprim::bench::clock::time_point t0, std::uint64_t& next) const {
    bool yielding = false;
    for (std::uint32_t polls = 1;; ++polls) {
      next = seq().load(std::memory_order_acquire);
      if (count_of(next) != count_of(seen)) return kprim::bench::clock::now();
      if (yielding || polls % 256 == 0) {
        const auto waited = kprim::bench::clock::now() - t0;
        if (waited > give_up) return std::nullopt;
        yielding = waited > spin_for;
      }
      if (yielding)
        std::this_thread::yield();
      else
        kprim::cpu_relax();
    }
  }

  /// next_stride() - the power of two that keeps a wait of `wait_ns` every stride operations
  /// of `per_op_ns` each at about wait_budget of the worker's time.
  static std::uint64_t next_stride(double wait_ns, double per_op_ns) noexcept {
    if (!(per_op_ns > 0)) return max_stride;
    const double want = wait_ns / (wait_budget * per_op_ns);
    if (want <= static_cast<double>(min_stride)) return min_stride;
    if (want >= static_cast<double>(max_stride)) return max_stride;
    return std::bit_ceil(static_cast<std::uint64_t>(std::ceil(want)));
  }

  struct per_thread {
    std::uint64_t countdown = first_stride, stride = first_stride, timeouts = 0;
    kprim::bench::clock::time_point last_end{};
    kprim::bench::latency_histogram hist;           ///< next owner on another CPU
    kprim::bench::latency_histogram same_cpu_hist;  ///< next owner on the releaser's CPU
  };
  using padded_lock = kprim::cacheline_padded<L>;
  using padded_seq = kprim::cacheline_padded<std::atomic<std::uint64_t>>;
  L& lock() noexcept { return **lock_; }
  std::atomic<std::uint64_t>& seq() const noexcept { return **seq_; }
  std::unique_ptr<padded_lock> lock_ = std::make_unique<padded_lock>();
  std::unique_ptr<padded_seq> seq_ = std::make_unique<padded_seq>();
  std::vector<kprim::cacheline_padded<per_thread>> mine_;
  double clock_ns_;
  double floor_ns_;  ///< transfer_floor_ns() when built; 0: no ratio published
};

/// Contended variants beyond the run-wide --kprim_cs/--kprim_gap: a long critical section
/// (lock hold time dominates; queueing and sleeping pay off) and work between acquisitions
/// (lower contention; hand-over and re-acquisition costs show).
constexpr std::uint32_t long_cs = 1000, gap_work = 1000;

template <class L>
void register_contended_variant(std::uint32_t cs, std::uint32_t gap) {
  using namespace kprim::bench;
  const options& o = current_options();
  if (cs == o.cs && gap == o.gap) return;  // already the plain contended run
  for (unsigned n : o.threads) {
    trial_config cfg = base_config(n);
    cfg.cs = cs;
    cfg.gap = gap;
    case_id id{"locks", "contended", L::name, n, {{"cs", std::to_string(cs)}, {"gap", std::to_string(gap)}, {"locks", std::to_string(o.locks)}}};
    const unsigned nlocks = o.locks;
    register_trial_or_control(is_control<L>, id, cfg, [nlocks] { return std::make_unique<lock_body<L>>(nlocks, false); });
  }
}

/// The hand-over workload (its body publishes the hand-over counters). Needs two threads.
template <class L>
void register_handover() {
  using namespace kprim::bench;
  if constexpr (L::exclusive) {
    for (unsigned n : current_options().threads) {
      if (n < 2) continue;
      const trial_config cfg = base_config(n);
      case_id id{"locks", "handover", L::name, n, {{"cs", std::to_string(cfg.cs)}, {"gap", std::to_string(cfg.gap)}}};
      register_trial_or_control(is_control<L>, id, cfg, [n] { return std::make_unique<handover_body<L>>(n); });
    }
  }
}

void register_all() {
  for (const char* w : {"uncontended", "contended"}) contenders::for_each([w]<class L>() { register_contender<L>(w); });
  contenders::for_each([]<class L>() { register_contended_variant<L>(long_cs, 0); });
  contenders::for_each([]<class L>() { register_contended_variant<L>(0, gap_work); });
  contenders::for_each([]<class L>() { register_handover<L>(); });
  for (const char* w : {"uncontended", "contended"})
    context_contenders::for_each([w]<class L>() { register_contender<L>(w); });
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
