// bench_percpu: per-CPU counting. One generic body per workload over a table of counters:
//   inc    - every operation is one increment, across the thread sweep (oversubscribed too);
//   sum    - every operation is one exact read of a counter that `writers` threads filled;
//   cpuid  - every operation learns the current CPU id (rseq field, sched_getcpu, getcpu(2)).
// Each counter is a small adapter with inc()/read(). The live per-CPU path (rseq or atomic)
// is in the context as kprim_percpu_path; rseq restarts per trial are the counters
// rseq_aborts and aborts_per_mop (per million operations).
#include <kprim/bench/registry.hpp>

#include <kprim/percpu.hpp>
#include <kprim/percpu_counter.hpp>

#include <oneapi/tbb/combinable.h>
#include <oneapi/tbb/enumerable_thread_specific.h>

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using kprim::bench::worker;

// ---- Counter adapters: inc(worker&) adds one; read() is the exact total (after joins, or
// with no concurrent inc). ----

struct kprim_this_cpu_inc {
  static constexpr const char* name = "kprim_this_cpu_inc";
  kprim::per_cpu<std::uint64_t> v;
  void inc(worker&) { kprim::this_cpu_inc(v); }
  std::uint64_t read() { return kprim::per_cpu_sum(v); }
};

/// The atomic fallback's operation, always: a locked add on the slot of the CPU just seen.
struct percpu_atomic {
  static constexpr const char* name = "percpu_atomic";
  kprim::per_cpu<std::uint64_t> v;
  void inc(worker&) {
    std::atomic_ref<std::uint64_t>(*kprim::this_cpu_ptr(v)).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t read() { return kprim::per_cpu_sum(v); }
};

struct kprim_percpu_counter {
  static constexpr const char* name = "kprim_percpu_counter";
  kprim::percpu_counter c;
  void inc(worker&) { kprim::percpu_counter_inc(c); }
  std::uint64_t read() { return static_cast<std::uint64_t>(kprim::percpu_counter_sum(c)); }
};

/// A thread_local pointer to the thread's own padded slot, registered on first use; the
/// increment is a plain load and store (no locked instruction); the sum walks the registry.
struct tls_slot_cache {
  const void* owner = nullptr;  // the thread_local_sum instance the slot belongs to
  std::uint64_t* slot = nullptr;
};
thread_local tls_slot_cache mine;

struct thread_local_sum {
  static constexpr const char* name = "thread_local_sum";
  std::mutex lock;
  std::deque<kprim::cacheline_padded<std::uint64_t>> slots;  // stable addresses
  void inc(worker&) {
    if (mine.owner != this) [[unlikely]] {
      std::lock_guard<std::mutex> g(lock);
      mine = {this, &*slots.emplace_back()};
    }
    std::atomic_ref<std::uint64_t> s(*mine.slot);
    s.store(s.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t read() {
    std::lock_guard<std::mutex> g(lock);
    std::uint64_t sum = 0;
    for (auto& s : slots) sum += std::atomic_ref<std::uint64_t>(*s).load(std::memory_order_relaxed);
    return sum;
  }
};

struct atomic_fetch_add {
  static constexpr const char* name = "atomic_fetch_add";
  kprim::cacheline_padded<std::atomic<std::uint64_t>> v;
  void inc(worker&) { v->fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t read() { return v->load(std::memory_order_relaxed); }
};

/// 16 padded atomics; a thread always uses shard tid % 16 (no CPU knowledge, no registry).
struct sharded_atomic {
  static constexpr const char* name = "sharded_atomic";
  static constexpr unsigned shards = 16;
  kprim::cacheline_padded<std::atomic<std::uint64_t>> v[shards];
  void inc(worker& t) { v[t.tid % shards]->fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t read() {
    std::uint64_t sum = 0;
    for (auto& s : v) sum += s->load(std::memory_order_relaxed);
    return sum;
  }
};

struct tbb_ets {
  static constexpr const char* name = "tbb_ets";
  tbb::enumerable_thread_specific<std::uint64_t> v{0};
  void inc(worker&) { ++v.local(); }
  std::uint64_t read() { return v.combine(std::plus<>()); }
};

struct tbb_combinable {
  static constexpr const char* name = "tbb_combinable";
  tbb::combinable<std::uint64_t> v{[] { return std::uint64_t{0}; }};
  void inc(worker&) { ++v.local(); }
  std::uint64_t read() { return v.combine(std::plus<>()); }
};

using counters = kprim::bench::contender_table<kprim_this_cpu_inc, percpu_atomic, kprim_percpu_counter, thread_local_sum,
                                               atomic_fetch_add, sharded_atomic, tbb_ets, tbb_combinable>;

// ---- CPU-id sources for the cpuid workload. ----

/// The cpu_id_start field of the thread's rseq area (sched_getcpu where rseq is not
/// registered: kprim_percpu_path in the context says which).
struct rseq_field {
  static constexpr const char* name = "rseq_field";
  static unsigned get() { return kprim::raw_smp_processor_id(); }
};
struct sched_getcpu_call {
  static constexpr const char* name = "sched_getcpu";
  static unsigned get() { return static_cast<unsigned>(sched_getcpu()); }
};
struct getcpu_syscall {
  static constexpr const char* name = "getcpu_syscall";
  static unsigned get() {
    unsigned cpu = 0;
    syscall(SYS_getcpu, &cpu, nullptr, nullptr);
    return cpu;
  }
};

// ---- The generic bodies. ----

/// inc_body<C> - acquire is one increment, release is empty; check: the exact total must
/// equal the operations done.
template <class C>
class inc_body {
 public:
  void acquire(worker& t) { c_->inc(t); }
  void release(worker&) {}
  std::string check(std::uint64_t total_ops) {
    const std::uint64_t got = c_->read();
    if (got == total_ops) return {};
    return std::string(C::name) + ": sum " + std::to_string(got) + " != operations " +
           std::to_string(total_ops);
  }

 private:
  std::unique_ptr<C> c_ = std::make_unique<C>();
};

/// sum_body<C> - `writers` threads add `per_writer` each (then exit, as their counts must
/// survive them); every operation is then one exact read, which must equal the total.
template <class C>
class sum_body {
 public:
  static constexpr std::uint64_t per_writer = 1000;
  explicit sum_body(unsigned writers) : expected_(std::uint64_t{writers} * per_writer) {
    std::vector<std::thread> ts;
    for (unsigned i = 0; i < writers; ++i)
      ts.emplace_back([this, i] {
        worker w;
        w.tid = i;
        for (std::uint64_t k = 0; k < per_writer; ++k) c_->inc(w);
      });
    for (auto& t : ts) t.join();
  }
  void acquire(worker&) {
    if (c_->read() != expected_) wrong_.fetch_add(1, std::memory_order_relaxed);
  }
  void release(worker&) {}
  std::string check(std::uint64_t) {
    const std::uint64_t w = wrong_.load();
    return w == 0 ? std::string() : std::string(C::name) + ": " + std::to_string(w) + " inexact sums";
  }

 private:
  std::unique_ptr<C> c_ = std::make_unique<C>();
  std::uint64_t expected_;
  std::atomic<std::uint64_t> wrong_{0};
};

/// cpuid_body<G> - each operation asks for the CPU id; the answers are folded into the
/// worker so the call cannot be dropped.
template <class G>
struct cpuid_body {
  void acquire(worker& t) { t.cur += G::get(); }
  void release(worker&) {}
};

/// counting_aborts<Body> - Body plus this family's counters: the rseq restarts during the
/// trial (a process-wide count taken after Body is built, i.e. just before the trial starts;
/// trials run one at a time).
template <class Body>
struct counting_aborts : Body {
  using Body::Body;
  std::uint64_t aborts_before = kprim::percpu_rseq_aborts();
  void publish(benchmark::State& state, const kprim::bench::trial_result& r) const {
    const auto aborts = static_cast<double>(kprim::percpu_rseq_aborts() - aborts_before);
    state.counters["rseq_aborts"] = aborts;
    state.counters["aborts_per_mop"] = r.total() ? 1e6 * aborts / static_cast<double>(r.total()) : 0;
  }
};

constexpr unsigned sum_writers = 8;

using cpuid_sources = kprim::bench::contender_table<rseq_field, sched_getcpu_call, getcpu_syscall>;

void register_counters() {
  using namespace kprim::bench;
  for (unsigned n : current_options().threads)
    // The family's A/A control (results/SCHEMA.md, "A/A controls"): kprim_this_cpu_inc in inc.
    counters::for_each([n]<class C>() {
      register_trial_or_control(std::is_same_v<C, kprim_this_cpu_inc>, case_id{"percpu", "inc", C::name, n, {}},
                                base_config(n), [] { return std::make_unique<counting_aborts<inc_body<C>>>(); });
    });
  counters::for_each([]<class C>() {
    register_trial(case_id{"percpu", "sum", C::name, 1, {{"writers", std::to_string(sum_writers)}}}, base_config(1),
                   [] { return std::make_unique<counting_aborts<sum_body<C>>>(sum_writers); });
  });
}

void register_cpuid() {
  using namespace kprim::bench;
  cpuid_sources::for_each([]<class G>() {
    register_trial(case_id{"percpu", "cpuid", G::name, 1, {}}, base_config(1),
                   [] { return std::make_unique<counting_aborts<cpuid_body<G>>>(); });
  });
}

void register_all() {
  benchmark::AddCustomContext("kprim_percpu_path", kprim::percpu_path_name());
  register_counters();
  register_cpuid();
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
