// bench_atomics: the cost of each atomic operation and barrier, kprim against std::atomic
// (in each memory order) and Concurrency Kit's ck_pr.
//   uncontended/<op>  - every thread works on its own cache line (the bare instruction cost
//                       and how it scales when nothing is shared)
//   contended/<op>    - every thread works on one shared word (cache-line ping-pong)
//   fence/<op>        - a store to a private line followed by the barrier (a fence's cost
//                       depends on the store buffer having something in it)
//   litmus_sb/<variant> - the store-buffering litmus test on two threads: counters
//                       `reorders` (r0 == r1 == 0 outcomes) and `kprim_iterations`; non-zero
//                       without smp_mb() on x86-64, zero with it.
// One operation per harness acquire(); ns per operation over all threads. The harness loop
// costs a few ns per operation, so sub-ns operations (plain loads) all read about the same.
#include <kprim/bench/registry.hpp>

#include <kprim/atomic.hpp>
#include <kprim/barrier.hpp>
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>
#include <kprim/testing/litmus.hpp>

#include <ck_pr.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using kprim::bench::worker;

inline kprim::atomic_t* as_atomic(int& w) noexcept { return reinterpret_cast<kprim::atomic_t*>(&w); }
inline std::atomic_ref<int> as_std(int& w) noexcept { return std::atomic_ref<int>(w); }

#define KPRIM_OP(ident, body)                   \
  struct ident {                                \
    static constexpr const char* name = #ident; \
    static void op(int& w) noexcept { body; }   \
  };

// ---- loads ----
KPRIM_OP(kprim_read_once, { int v = READ_ONCE(w); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_read, { int v = kprim::atomic_read(as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_read_acquire, { int v = kprim::atomic_read_acquire(as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_smp_load_acquire, { int v = kprim::smp_load_acquire(&w); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_load_relaxed, { int v = as_std(w).load(std::memory_order_relaxed); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_load_acquire, { int v = as_std(w).load(std::memory_order_acquire); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_load_seq_cst, { int v = as_std(w).load(std::memory_order_seq_cst); benchmark::DoNotOptimize(v); })
KPRIM_OP(ck_pr_load, { int v = ck_pr_load_int(&w); benchmark::DoNotOptimize(v); })
// ---- stores ----
KPRIM_OP(kprim_atomic_set, { kprim::atomic_set(as_atomic(w), 1); })
KPRIM_OP(kprim_atomic_set_release, { kprim::atomic_set_release(as_atomic(w), 1); })
KPRIM_OP(std_store_relaxed, { as_std(w).store(1, std::memory_order_relaxed); })
KPRIM_OP(std_store_release, { as_std(w).store(1, std::memory_order_release); })
KPRIM_OP(std_store_seq_cst, { as_std(w).store(1, std::memory_order_seq_cst); })
KPRIM_OP(ck_pr_store, { ck_pr_store_int(&w, 1); })
// ---- RMW: increment ----
KPRIM_OP(kprim_atomic_inc, { kprim::atomic_inc(as_atomic(w)); })
KPRIM_OP(kprim_atomic_inc_return, { int v = kprim::atomic_inc_return(as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_fetch_add, { int v = kprim::atomic_fetch_add(1, as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_fetch_add_relaxed, { int v = kprim::atomic_fetch_add_relaxed(1, as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_fetch_add_acquire, { int v = kprim::atomic_fetch_add_acquire(1, as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_fetch_add_release, { int v = kprim::atomic_fetch_add_release(1, as_atomic(w)); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_fetch_add_relaxed, { int v = as_std(w).fetch_add(1, std::memory_order_relaxed); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_fetch_add_acquire, { int v = as_std(w).fetch_add(1, std::memory_order_acquire); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_fetch_add_release, { int v = as_std(w).fetch_add(1, std::memory_order_release); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_fetch_add_acq_rel, { int v = as_std(w).fetch_add(1, std::memory_order_acq_rel); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_fetch_add_seq_cst, { int v = as_std(w).fetch_add(1, std::memory_order_seq_cst); benchmark::DoNotOptimize(v); })
KPRIM_OP(ck_pr_inc, { ck_pr_inc_int(&w); })
KPRIM_OP(ck_pr_faa, { int v = ck_pr_faa_int(&w, 1); benchmark::DoNotOptimize(v); })
// ---- RMW: exchange and compare-exchange (one attempt: success or failure is one op) ----
KPRIM_OP(kprim_atomic_xchg, { int v = kprim::atomic_xchg(as_atomic(w), 1); benchmark::DoNotOptimize(v); })
KPRIM_OP(std_exchange_seq_cst, { int v = as_std(w).exchange(1, std::memory_order_seq_cst); benchmark::DoNotOptimize(v); })
KPRIM_OP(ck_pr_fas, { int v = ck_pr_fas_int(&w, 1); benchmark::DoNotOptimize(v); })
KPRIM_OP(kprim_atomic_cmpxchg, {
  int o = kprim::atomic_read(as_atomic(w));
  int v = kprim::atomic_cmpxchg(as_atomic(w), o, o + 1);
  benchmark::DoNotOptimize(v);
})
KPRIM_OP(kprim_atomic_cmpxchg_relaxed, {
  int o = kprim::atomic_read(as_atomic(w));
  int v = kprim::atomic_cmpxchg_relaxed(as_atomic(w), o, o + 1);
  benchmark::DoNotOptimize(v);
})
KPRIM_OP(std_cas_seq_cst, {
  int o = as_std(w).load(std::memory_order_relaxed);
  bool ok = as_std(w).compare_exchange_strong(o, o + 1, std::memory_order_seq_cst);
  benchmark::DoNotOptimize(ok);
})
KPRIM_OP(std_cas_relaxed, {
  int o = as_std(w).load(std::memory_order_relaxed);
  bool ok = as_std(w).compare_exchange_strong(o, o + 1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(ok);
})
KPRIM_OP(ck_pr_cas, {
  int o = ck_pr_load_int(&w);
  bool ok = ck_pr_cas_int(&w, o, o + 1);
  benchmark::DoNotOptimize(ok);
})
// ---- barriers after a store (fence workload) ----
KPRIM_OP(store_only, { WRITE_ONCE(w, w + 1); })
KPRIM_OP(kprim_smp_mb, { WRITE_ONCE(w, w + 1); kprim::smp_mb(); })
KPRIM_OP(kprim_mb, { WRITE_ONCE(w, w + 1); kprim::mb(); })
KPRIM_OP(kprim_smp_wmb, { WRITE_ONCE(w, w + 1); kprim::smp_wmb(); })
KPRIM_OP(kprim_smp_store_mb, { kprim::smp_store_mb(w, w + 1); })
KPRIM_OP(kprim_smp_store_release, { kprim::smp_store_release(&w, w + 1); })
KPRIM_OP(std_fence_seq_cst, { WRITE_ONCE(w, w + 1); std::atomic_thread_fence(std::memory_order_seq_cst); })
KPRIM_OP(std_store_seq_cst_fence, { as_std(w).store(w + 1, std::memory_order_seq_cst); })
KPRIM_OP(ck_pr_fence_memory, { WRITE_ONCE(w, w + 1); ck_pr_fence_memory(); })
KPRIM_OP(ck_pr_fence_strict_memory, { WRITE_ONCE(w, w + 1); ck_pr_fence_strict_memory(); })
#undef KPRIM_OP

/// op_body<Op> - shared: one word on its own line for everyone; otherwise one line per thread.
template <class Op>
class op_body {
 public:
  op_body(unsigned threads, bool shared) : shared_(shared), words_(shared ? 1 : threads) {}
  void acquire(worker& t) { Op::op(words_[shared_ ? 0 : t.tid].value); }
  void release(worker&) {}

 private:
  bool shared_;
  std::vector<kprim::cacheline_padded<int>> words_;
};

template <class Table>
void register_ops(const char* workload, bool shared) {
  using namespace kprim::bench;
  // The family's A/A control (results/SCHEMA.md, "A/A controls"): kprim_atomic_fetch_add.
  for (unsigned n : current_options().threads)
    Table::for_each([&]<class O>() {
      register_trial_or_control(std::is_same_v<O, kprim_atomic_fetch_add>, case_id{"atomics", workload, O::name, n, {}},
                                base_config(n), [n, shared] { return std::make_unique<op_body<O>>(n, shared); });
    });
}

using kprim::bench::contender_table;
using loads = contender_table<kprim_read_once, kprim_atomic_read, kprim_atomic_read_acquire, kprim_smp_load_acquire, std_load_relaxed,
                              std_load_acquire, std_load_seq_cst, ck_pr_load>;
using stores = contender_table<kprim_atomic_set, kprim_atomic_set_release, std_store_relaxed, std_store_release,
                               std_store_seq_cst, ck_pr_store>;
using rmws = contender_table<kprim_atomic_inc, kprim_atomic_inc_return, kprim_atomic_fetch_add,
                             kprim_atomic_fetch_add_relaxed, kprim_atomic_fetch_add_acquire,
                             kprim_atomic_fetch_add_release, std_fetch_add_relaxed, std_fetch_add_acquire,
                             std_fetch_add_release, std_fetch_add_acq_rel, std_fetch_add_seq_cst, ck_pr_inc,
                             ck_pr_faa, kprim_atomic_xchg, std_exchange_seq_cst, ck_pr_fas, kprim_atomic_cmpxchg,
                             kprim_atomic_cmpxchg_relaxed, std_cas_seq_cst, std_cas_relaxed, ck_pr_cas>;
using fences = contender_table<store_only, kprim_smp_mb, kprim_mb, kprim_smp_wmb, kprim_smp_store_mb,
                               kprim_smp_store_release, std_fence_seq_cst, std_store_seq_cst_fence,
                               ck_pr_fence_memory, ck_pr_fence_strict_memory>;

// ---- store-buffering litmus --------------------------------------------------------------

/// Runs SB for the trial duration (at most max_iters iterations) and publishes the outcome
/// counts. Manual time: wall ns per iteration (both threads).
template <bool WithMb>
void register_sb(const char* variant) {
  using namespace kprim::bench;
  const unsigned trial_ms = current_options().trial_ms;
  case_id id{"atomics", "litmus_sb", variant, 2, {}};
  benchmark::RegisterBenchmark(id.name().c_str(),
                               [trial_ms](benchmark::State& state) {
                                 for (auto _ : state) {
                                   constexpr std::size_t max_iters = std::size_t{1} << 21;
                                   std::size_t reorders = 0;
                                   const auto t0 = clock::now();
                                   std::size_t n = kprim::litmus::store_buffering<WithMb>(
                                       max_iters, std::chrono::milliseconds(trial_ms), &reorders);
                                   const double s = std::chrono::duration<double>(clock::now() - t0).count();
                                   report_loop(state, {static_cast<double>(n), s, 2});
                                   state.counters["kprim_iterations"] = static_cast<double>(n);
                                   state.counters["reorders"] = static_cast<double>(reorders);
                                   state.counters["reorders_per_million"] =
                                       n ? 1e6 * static_cast<double>(reorders) / static_cast<double>(n) : 0;
                                 }
                               })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

void register_all() {
  register_ops<loads>("uncontended", false);
  register_ops<stores>("uncontended", false);
  register_ops<rmws>("uncontended", false);
  register_ops<stores>("contended", true);
  register_ops<rmws>("contended", true);
  register_ops<fences>("fence", false);
  register_sb<false>("no_barrier");
  register_sb<true>("kprim_smp_mb");
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
