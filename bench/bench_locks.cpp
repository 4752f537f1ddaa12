// bench_locks: lock/unlock under contention. One generic body (lock_body) per workload; every
// contender is a row of the `contenders` table below: a small adapter with lock/unlock.
// Reader-writer locks live in bench_rwlocks; this family is for exclusive locks only.
#include <kprim/bench/registry.hpp>

#include "ck_peers.h"

#include <kprim/mutex.hpp>
#include <kprim/spinlock.hpp>

#include <pthread.h>
#include <oneapi/tbb/mutex.h>
#include <oneapi/tbb/queuing_mutex.h>
#include <oneapi/tbb/spin_mutex.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <new>
#include <string>
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
template <class M, const char* Name>
struct std_style {
  static constexpr const char* name = Name;
  static constexpr bool exclusive = true;
  M m;
  void lock(worker&) { m.lock(); }
  void unlock(worker&) { m.unlock(); }
};
constexpr char std_mutex_name[] = "std_mutex";
constexpr char tbb_spin_mutex_name[] = "tbb_spin_mutex";
constexpr char tbb_mutex_name[] = "tbb_mutex";

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
template <void (*Init)(kp_ck_lock*), void (*Lock)(kp_ck_lock*), void (*Unlock)(kp_ck_lock*), const char* Name>
struct ck_simple {
  static constexpr const char* name = Name;
  static constexpr bool exclusive = true;
  kp_ck_lock l;
  ck_simple() { Init(&l); }
  void lock(worker&) { Lock(&l); }
  void unlock(worker&) { Unlock(&l); }
};
constexpr char ck_ticket_name[] = "ck_ticket";
constexpr char ck_fas_name[] = "ck_fas";

struct ck_mcs {
  static constexpr const char* name = "ck_mcs";
  static constexpr bool exclusive = true;
  kp_ck_lock l;
  ck_mcs() { kp_ck_mcs_init(&l); }
  void lock(worker& t) { kp_ck_mcs_lock(&l, &t.node<kp_ck_mcs_node>()); }
  void unlock(worker& t) { kp_ck_mcs_unlock(&l, &t.node<kp_ck_mcs_node>()); }
};

/// kprim spinlocks, driven through the kernel verbs.
template <class L, const char* Name>
struct kprim_spin {
  static constexpr const char* name = Name;
  static constexpr bool exclusive = true;
  L l;
  void lock(worker&) { kprim::spin_lock(&l); }
  void unlock(worker&) { kprim::spin_unlock(&l); }
};
constexpr char kprim_qspinlock_name[] = "kprim_qspinlock";
constexpr char kprim_qspinlock_spin_name[] = "kprim_qspinlock_spin";
constexpr char kprim_qspinlock_virt_name[] = "kprim_qspinlock_virt";
constexpr char kprim_ticket_name[] = "kprim_ticket";
constexpr char kprim_tas_name[] = "kprim_tas";
constexpr char kprim_ttas_name[] = "kprim_ttas";

/// The kernel mutex, through mutex_lock()/mutex_unlock().
struct kprim_mutex {
  static constexpr const char* name = "kprim_mutex";
  static constexpr bool exclusive = true;
  kprim::mutex m;
  void lock(worker&) { kprim::mutex_lock(&m); }
  void unlock(worker&) { kprim::mutex_unlock(&m); }
};

// ---- The contender table: every row runs every workload. ----
template <class... L>
struct table {};
using contenders = table<nolock, atomic_fetch_add, pthread_mutex, pthread_spin,
                         std_style<std::mutex, std_mutex_name>,
                         std_style<tbb::spin_mutex, tbb_spin_mutex_name>,
                         std_style<tbb::mutex, tbb_mutex_name>, tbb_queuing,
                         ck_simple<kp_ck_ticket_init, kp_ck_ticket_lock, kp_ck_ticket_unlock, ck_ticket_name>,
                         ck_simple<kp_ck_fas_init, kp_ck_fas_lock, kp_ck_fas_unlock, ck_fas_name>, ck_mcs,
                         kprim_spin<kprim::qspinlock, kprim_qspinlock_name>,
                         kprim_spin<kprim::basic_qspinlock<kprim::spin_policy::spin>, kprim_qspinlock_spin_name>,
                         kprim_spin<kprim::basic_qspinlock<kprim::spin_policy::virt>, kprim_qspinlock_virt_name>,
                         kprim_spin<kprim::ticket_spinlock, kprim_ticket_name>,
                         kprim_spin<kprim::tas_spinlock, kprim_tas_name>,
                         kprim_spin<kprim::ttas_spinlock, kprim_ttas_name>, kprim_mutex>;

// ---- The generic body. ----

/// lock_body<L> - `nlocks` locks, each with the word it guards on the same cache line (as
/// real data sits next to its lock). private_locks: worker t always takes lock t (no
/// sharing: the uncontended cost); otherwise every acquisition picks one at random.
/// check(): for exclusive locks the guarded words, bumped non-atomically inside the critical
/// section, must add up to the operations done: any overlap loses an increment.
template <class L>
class lock_body {
 public:
  lock_body(unsigned nlocks, bool private_locks)
      : n_(nlocks), private_(private_locks), slots_(std::make_unique<kprim::cacheline_padded<slot>[]>(nlocks)) {}

  void acquire(worker& t) {
    t.cur = private_ ? t.tid : (n_ == 1 ? 0 : static_cast<unsigned>(t.next_random() % n_));
    slots_[t.cur]->lock.lock(t);
  }
  void release(worker& t) {
    slot& s = *slots_[t.cur];
    if constexpr (L::exclusive) ++s.guarded;
    s.lock.unlock(t);
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
  struct slot {
    L lock;
    std::uint64_t guarded = 0;
  };
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
    case_id id{"locks", workload, L::name, n,
               {{"cs", std::to_string(cfg.cs)},
                {"gap", std::to_string(cfg.gap)},
                {"locks", priv ? std::string("per_thread") : std::to_string(nlocks)}}};
    register_trial(id, cfg, [nlocks, priv] { return std::make_unique<lock_body<L>>(nlocks, priv); });
  }
}

/// handover_body<L> - one shared lock; the releaser stamps the clock just before unlock,
/// and an acquirer that is not the previous holder records now - stamp: the hand-over
/// latency (unlock to the next owner's return from lock), which FIFO, queueing and sleeping
/// locks trade against throughput. Published as handover_p50_ns/_p99_ns/_p999_ns and
/// handover_samples next to the harness's counters. Two clock reads per operation.
template <class L>
class handover_body {
 public:
  explicit handover_body(unsigned threads) : hist_(threads) {}

  void acquire(worker& t) {
    s().lock.lock(t);
    if (s().holder != t.tid && s().holder != no_holder) {
      const auto dt = kprim::bench::clock::now() - s().unlocked_at;
      hist_[t.tid]->record(static_cast<std::uint64_t>(std::chrono::nanoseconds(dt).count()));
    }
  }
  void release(worker& t) {
    s().holder = t.tid;
    s().unlocked_at = kprim::bench::clock::now();
    s().lock.unlock(t);
  }
  void publish(benchmark::State& state, const kprim::bench::trial_result&) const {
    kprim::bench::latency_histogram all;
    for (const auto& h : hist_) all.merge(*h);
    state.counters["handover_p50_ns"] = static_cast<double>(all.percentile(0.50));
    state.counters["handover_p99_ns"] = static_cast<double>(all.percentile(0.99));
    state.counters["handover_p999_ns"] = static_cast<double>(all.percentile(0.999));
    state.counters["handover_samples"] = static_cast<double>(all.count());
  }

 private:
  static constexpr unsigned no_holder = ~0u;
  struct slot {
    L lock;
    unsigned holder = no_holder;
    kprim::bench::clock::time_point unlocked_at{};
  };
  slot& s() noexcept { return **s_; }
  std::unique_ptr<kprim::cacheline_padded<slot>> s_ = std::make_unique<kprim::cacheline_padded<slot>>();
  std::vector<kprim::cacheline_padded<kprim::bench::latency_histogram>> hist_;
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
    case_id id{"locks", "contended", L::name, n,
               {{"cs", std::to_string(cs)}, {"gap", std::to_string(gap)}, {"locks", std::to_string(o.locks)}}};
    const unsigned nlocks = o.locks;
    register_trial(id, cfg, [nlocks] { return std::make_unique<lock_body<L>>(nlocks, false); });
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
      register_trial(id, cfg, [n] { return std::make_unique<handover_body<L>>(n); });
    }
  }
}

template <class... L>
void register_table(table<L...>) {
  for (const char* w : {"uncontended", "contended"}) (register_contender<L>(w), ...);
  (register_contended_variant<L>(long_cs, 0), ...);
  (register_contended_variant<L>(0, gap_work), ...);
  (register_handover<L>(), ...);
}

void register_all() { register_table(contenders{}); }

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
