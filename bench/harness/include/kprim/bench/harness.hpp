// kprim/bench/harness.hpp: the time-bounded contention trial every benchmark family shares.
// A trial runs N workers for a fixed duration (never a fixed iteration count: a fair lock under
// oversubscription would take minutes) and returns per-thread counts and sampled latencies.
// For registering trials as Google Benchmark benchmarks see kprim/bench/registry.hpp.
#pragma once

#include <kprim/bench/histogram.hpp>
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kprim::bench {

using clock = std::chrono::steady_clock;

/// Thread placement: none (the scheduler decides), compact (fill PUs in hwloc order, SMT
/// siblings first), spread (one PU per core across packages first, siblings last).
enum class pin_policy { none,
                        compact,
                        spread };

struct trial_config {
  unsigned threads = 1;
  std::chrono::nanoseconds duration = std::chrono::milliseconds(200);
  /// Watchdog: after the stop flag, workers that have not returned within this long are
  /// abandoned (detached, the trial is marked invalid) so a run always ends.
  std::chrono::nanoseconds drain_limit = std::chrono::seconds(5);
  std::uint32_t cs = 0;   ///< work units inside the critical section (between acquire and release)
  std::uint32_t gap = 0;  ///< work units after release, before the next acquire
  pin_policy pin = pin_policy::none;
  bool sample_latency = true;  ///< false: never read the clock inside the loop (overhead check)
  /// --kprim_inject: injected work per operation inside the critical section, in 1/256 of an
  /// inject_work() unit (0: none, and the loop is the plain one; registry.hpp inject_into()).
  std::uint64_t inject_q8 = 0;
  /// The fixed cost of one inject_work() call (its loop set-up and the store), in 1/256
  /// units: a call is made once the carried per-operation budget reaches it.
  std::uint64_t inject_fixed_q8 = 0;
};

/// worker - one thread's private context, handed to the workload on every call.
/// Cache-line aligned; nothing in it is shared with other threads.
struct alignas(cacheline_pair_size) worker {
  unsigned tid = 0;  ///< 0 .. threads-1
  unsigned nthreads = 1;
  unsigned cur = 0;       ///< free for the workload (e.g. the index of the lock it holds)
  std::uint64_t rng = 0;  ///< xorshift64 state, seeded per thread

  /// next_random() - xorshift64; cheap, per-thread, never zero.
  std::uint64_t next_random() noexcept {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }

  /// node<T>() - per-thread scratch storage for queue-lock nodes (MCS, CLH, OSQ): a thread
  /// holds at most one lock of a trial at a time, so one node per thread suffices.
  /// T must be trivially destructible and fit in 128 bytes; it is value-initialised once.
  template <class T>
  T& node() noexcept {
    static_assert(sizeof(T) <= sizeof(node_storage) && alignof(T) <= cacheline_size);
    static_assert(std::is_trivially_destructible_v<T>);
    return *std::launder(reinterpret_cast<T*>(node_storage));
  }

  /// emplace_guard<G>(args...) / release_guard<G>() - keep a lock guard object that owns a
  /// queue node (TBB's scoped_lock) in node storage from acquire to release, `Offset` bytes in
  /// (so a body may keep per-thread state of its own before it). release_guard() calls the
  /// guard's release() and destroys it.
  template <class G, std::size_t Offset = 0, class... A>
  void emplace_guard(A&&... args) {
    static_assert(Offset % alignof(G) == 0 && Offset + sizeof(G) <= sizeof(node_storage));
    new (node_storage + Offset) G(std::forward<A>(args)...);
  }
  template <class G, std::size_t Offset = 0>
  void release_guard() {
    G* g = std::launder(reinterpret_cast<G*>(node_storage + Offset));
    g->release();
    g->~G();
  }

  alignas(cacheline_size) unsigned char node_storage[128] = {};
};

/// A workload: acquire() and release() bracket one operation (a lock's critical section,
/// or acquire alone for a lock-free operation with an empty release). Latency is sampled
/// around acquire(). Optional `std::string check(std::uint64_t total_ops)` returns a
/// non-empty message when an invariant broke (e.g. mutual exclusion), checked after joining.
template <class W>
concept workload = requires(W& w, worker& t) {
  w.acquire(t);
  w.release(t);
};
template <class W>
concept checked_workload = workload<W> && requires(W& w, std::uint64_t n) {
  { w.check(n) } -> std::convertible_to<std::string>;
};
/// Optional per-thread boundary hook: `static constexpr std::uint64_t boundary_every` (>= 1)
/// and `void boundary(worker&)`. The loop calls boundary() before the thread's first
/// operation, then between operations at most boundary_every operations apart, and after its
/// last one: the points where a QSBR reader announces a quiescent state (and registers). The
/// calls ride the loop's latency-sampling countdown (a register), so the operations between
/// two boundaries run the plain loop with no counter of the workload's own.
template <class W>
concept boundary_workload = workload<W> && requires(W& w, worker& t) {
  w.boundary(t);
  { W::boundary_every } -> std::convertible_to<std::uint64_t>;
};

struct trial_result {
  std::vector<std::uint64_t> ops;  ///< per-thread completed operations
  double trial_s = 0;              ///< start barrier released -> stop flag set
  double drain_s = 0;              ///< stop flag set -> last worker returned
  bool abandoned = false;          ///< the watchdog gave up on at least one worker
  double clock_ns = 0;             ///< cost of one clock-read pair (subtracted from samples)
  latency_histogram lat;           ///< merged acquire-latency samples, ns
  std::string error;               ///< invariant violation reported by check(), if any
  /// Sum over workers of their own CPU time (CLOCK_THREAD_CPUTIME_ID) from loop start to loop
  /// end, so it includes each worker's last operation after the stop flag (the drain).
  double worker_cpu_s = 0;
  double steal_pct = 0;  ///< steal_percent() of /proc/stat over the trial; 0 when unreadable

  [[nodiscard]] std::uint64_t total() const noexcept;
  [[nodiscard]] double ops_per_s() const noexcept;
  /// cpu_utilisation(worker_cpu_s, workers, trial_s).
  [[nodiscard]] double cpu_util() const noexcept;
  /// Jain's index (sum x)^2 / (n sum x^2): 1 when all equal, 1/n when one thread did all.
  [[nodiscard]] double fairness() const noexcept;
  /// Smallest / largest per-thread share of all operations, times n (1 = fair share).
  [[nodiscard]] double share_min() const noexcept;
  [[nodiscard]] double share_max() const noexcept;
};

/// spin_work() - n units of busy work the compiler cannot remove (one loop iteration,
/// about one cycle, per unit). Models computation inside or between critical sections.
inline void spin_work(std::uint32_t n) noexcept {
  for (std::uint32_t i = 0; i < n; ++i) kprim::barrier();
}

/// inject_work() - --kprim_inject's work: n dependent additions (one cycle each) on `v`,
/// returned so the caller stores the result before the release. spin_work()'s loop has no
/// data dependants, so an out-of-order core runs it in the shadow of the acquire's atomic (an
/// uncontended lock+unlock of 6.3 ns grew by a third of the ns injected); here the chain
/// feeds a store ahead of the release (x86 stores commit in order, and the next locked
/// acquire waits for them; a contender waits for the release), so it is on the critical path:
/// 0.65 ns injected into that 6.7 ns point made it 0.68 ns slower. (An lfence to order the
/// chain after the acquire was tried: it cost 1-5 ns depending on what it waited for, and
/// turned a 4.5 ns injection into a contended point into +24 ns.)
inline std::uint64_t inject_work(std::uint64_t v, std::uint64_t n) noexcept {
  kprim::barrier();
  for (std::uint64_t i = 0; i < n; ++i) {
    asm volatile(""
                 : "+r"(v));
    ++v;
  }
  return v;
}

/// cpu_utilisation() - how much of the trial the workers were on a CPU: cpu_s / (threads x
/// wall_s), 0 without threads or time. 1 when every worker ran all the time; it exceeds 1 only
/// by clock granularity and the drain (worker CPU time runs to each worker's exit, wall_s to
/// the stop flag). Under oversubscription it is at most cores / threads.
double cpu_utilisation(double cpu_s, unsigned threads, double wall_s) noexcept;

/// The aggregate `cpu` line of /proc/stat, in USER_HZ ticks: `total` sums user, nice, system,
/// idle, iowait, irq, softirq and steal (guest time is already inside user and nice).
struct cpu_ticks {
  std::uint64_t total = 0;
  std::uint64_t steal = 0;
};

/// parse_proc_stat() - the aggregate `cpu ` line of a /proc/stat text. False when there is
/// none or it holds fewer than four numbers (user nice system idle); fields an old kernel
/// does not write (iowait .. steal) count as 0.
bool parse_proc_stat(std::string_view text, cpu_ticks& out) noexcept;

/// read_proc_stat() - parse_proc_stat() of this machine's /proc/stat; false when unreadable.
bool read_proc_stat(cpu_ticks& out) noexcept;

/// steal_percent() - 100 x delta(steal) / delta(total) between two readings: the share of
/// the machine's CPU time a hypervisor gave to others. 0 when the total did not advance or
/// a counter went backwards.
double steal_percent(const cpu_ticks& before, const cpu_ticks& after) noexcept;

/// thread_cpu_ns() - the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), ns. A system
/// call on Linux (no vDSO fast path): read it at a worker's start and end, never per operation.
std::uint64_t thread_cpu_ns() noexcept;

/// clock_pair_ns() - median cost of two back-to-back steady_clock reads, measured once.
double clock_pair_ns() noexcept;

/// sample_stride() - how many operations apart to time one, given the clock-pair cost and
/// the worker's running cost per operation: the next power of two >= k / (0.02 * c), so
/// clock reads stay at most about 2% of the measured cost (see results/SCHEMA.md).
std::uint64_t sample_stride(double clock_ns, double ns_per_op) noexcept;

/// pin_current_thread() - bind the calling thread to the PU that `policy` assigns to worker
/// `tid` (wrapping modulo the PU count). No-op for pin_policy::none. Returns false if hwloc
/// refused the binding.
bool pin_current_thread(pin_policy policy, unsigned tid) noexcept;

namespace detail {

/// Shared by the driver and the workers; kept alive by whoever finishes last, so an
/// abandoned worker never touches freed control memory.
struct control {
  alignas(cacheline_size) std::atomic<unsigned> ready{0};
  alignas(cacheline_size) std::atomic<bool> go{false};
  alignas(cacheline_size) std::atomic<bool> stop{false};
  alignas(cacheline_size) std::atomic<unsigned> done{0};
  std::vector<cacheline_padded<latency_histogram>> hist;
  std::vector<cacheline_padded<std::uint64_t>> ops;
  std::vector<cacheline_padded<std::uint64_t>> cpu_ns;  ///< each worker's thread CPU time in its loop
};

/// keep_alive() - hold `p` until the process exits (never destroyed, still reachable, so
/// leak checkers stay quiet): for whatever abandoned workers may still touch.
void keep_alive(std::shared_ptr<void> p);

/// Runs the driver side: spawns `threads` std::threads calling body(tid), releases them,
/// sleeps for the duration, stops them and joins (or abandons) them.
trial_result drive(const trial_config& cfg, const std::shared_ptr<control>& ctl,
                   void (*body)(void* ctx, unsigned tid), void* ctx);

/// A worker's latency sampling state. It lives in memory (sample_taken() gets its address),
/// touched only off the fast path, so the worker loop's registers serve the workload.
struct sampling {
  latency_histogram* hist;
  clock::time_point begin;    ///< the worker's start: its running cost per operation
  double clock_ns;            ///< the clock pair's cost, subtracted from each sample
  std::uint64_t next_sample;  ///< the operation to time next (~0: sampling off)
  bool timed = false;         ///< the operation under way is timed, from t0
  clock::time_point t0{};
};

/// sample_taken() - record operation `n`'s acquire, timed s.t0..t1, and return the countdown
/// to the next timed operation (sample_stride() of the running cost per operation). Out of
/// line: its floating-point work and live values stay out of the worker loop.
[[gnu::noinline]] std::uint64_t sample_taken(sampling& s, clock::time_point t1, std::uint64_t n) noexcept;

/// KPRIM_LOOP_TOP_ALIGNED - the worker loop's top on a 64-byte boundary (see worker_loop()).
/// g++ only: clang has no per-function alignment option (and its own loop alignment).
#if defined(__GNUC__) && !defined(__clang__)
#define KPRIM_LOOP_TOP_ALIGNED __attribute__((optimize("align-jumps=64")))
#else
#define KPRIM_LOOP_TOP_ALIGNED
#endif

template <workload W>
struct loop_ctx {
  W* w;
  trial_config cfg;
  std::shared_ptr<control> ctl;
  double clock_ns;
};

/// The one generic worker loop. The stop flag is read (relaxed, a read-shared line) once
/// per operation; the operation count lives in a register until the end. The fast path takes
/// one branch per operation (the back edge): the off-path work (latency samples, the
/// boundary hook) and the cs/gap work loops are laid out of line (unlikely), so a jump over
/// an empty cs or gap loop is a branch not taken. With the guards inside spin_work() only,
/// g++ 12 laid out three taken branches per operation once the sampling branch grew
/// (26777ea), and the cheapest workloads paid a cycle for it: layout/counters/padded_plain
/// threads:1 0.69 ns/op at 0db5c95, 1.03 after, 0.61 now (interleaved runs of both binaries).
/// w.acquire() has one call site per instantiation, so that g++ 12 inlines it: with a timed
/// and an untimed copy in each of the two instantiations (Inject off and on), four call
/// sites, it kept the operation out of line in bench_rwlocks (every row), bench_locks,
/// bench_slab, bench_floor and bench_rcu, and rwlocks/mixed threads:1 lost 6-17% (issue 16's
/// paired gate against 0db5c95). bench/tests/inline_test.py checks the binaries for it. What
/// the off path needs across the call (whether it is timed, t0) is in the sampling state in
/// memory, not in locals: kept in registers they were spilled around the operation's own
/// loops on every operation (kprim_seqlock's read: 80 instructions per operation, not 71).
///
/// The loop's top starts a 64-byte line (KPRIM_LOOP_TOP_ALIGNED). g++ rotates the loop and
/// enters it in the middle, so its top is a label no fall-through reaches, and g++ 12's generic
/// tuning aligns such a label to 16 bytes when that costs at most 10 bytes of padding, else to 8:
/// where the loop lay against the front end's 32- and 64-byte lines then depended on where the
/// linker put the instantiation, not on the workload's code. In bench_rcu, read_empty's nolock
/// and rcu_qsbr rows compiled to the same 10-instruction, 30-byte loop, nolock's at 0x1d8d8
/// (inside one 64-byte line), rcu_qsbr's at 0x35870 (across one); the repetitions of both were
/// bimodal, about 0.41 and 0.60 ns, and rcu_qsbr's fell in the slow mode in 13 of 21 where
/// nolock's did in 4 of 21 (one process, interleaved): medians 1.44x apart for equal
/// instructions (issue 15's qsbr target). With the tops on 64-byte lines both read 0.42-0.43 ns
/// in most repetitions. 32-byte alignment fixed those two but moved others: the atomics loads'
/// loops (atomics/uncontended/ck_pr_load and seven more rows) read 0.87 ns where they had read
/// 0.60 (paired gate of the two builds, -30%); at 64 they read 0.58-0.64 again. align-jumps
/// rather than align-loops: g++ does not treat the rotated loop's top as a loop label; and it
/// pads only before labels reached by jumps alone, so no padding is executed (the function's
/// out-of-line blocks are padded as well: code size only). A loop g++ enters at its top keeps
/// g++'s loop alignment. bench/tests/loop_align_test.py checks the binaries.
template <workload W, bool Inject>
KPRIM_LOOP_TOP_ALIGNED void worker_loop(void* p, unsigned tid) {
  auto& c = *static_cast<loop_ctx<W>*>(p);
  W& w = *c.w;
  control& ctl = *c.ctl;
  const std::uint32_t cs = c.cfg.cs, gap = c.cfg.gap;
  worker self;
  self.tid = tid;
  self.nthreads = c.cfg.threads;
  self.rng = 0x9E3779B97F4A7C15ull * (tid + 1);

  pin_current_thread(c.cfg.pin, tid);
  ctl.ready.fetch_add(1, std::memory_order_release);
  ctl.ready.notify_all();
  ctl.go.wait(false, std::memory_order_acquire);

  [[maybe_unused]] const std::uint64_t inject_q8 = c.cfg.inject_q8, inject_fixed = c.cfg.inject_fixed_q8;
  [[maybe_unused]] std::uint64_t inject_acc = 0, inject_v = 0;
  [[maybe_unused]] volatile std::uint64_t inject_sink = 0;
  const std::uint64_t cpu_begin = thread_cpu_ns();
  // One countdown to the next operation off the fast path: the next timed one
  // (s.next_sample) or the workload's next boundary, whichever comes first.
  constexpr bool hooked = boundary_workload<W>;
  sampling s{&*ctl.hist[tid], clock::now(), c.clock_ns, c.cfg.sample_latency ? 0 : ~std::uint64_t{0}};
  std::uint64_t n = 0;
  std::uint64_t countdown = c.cfg.sample_latency || hooked ? 1 : ~std::uint64_t{0};
  while (!ctl.stop.load(std::memory_order_relaxed)) {
    // The operation is called from this one place: see the comment above the loop. The
    // countdown is 0 on both sides of it exactly when this operation is off the fast path.
    if (unlikely(--countdown == 0)) {
      if constexpr (hooked) w.boundary(self);
      s.timed = n >= s.next_sample;
      if (s.timed) s.t0 = clock::now();
    }
    w.acquire(self);
    if (unlikely(countdown == 0)) {
      countdown = s.timed ? sample_taken(s, clock::now(), n) : s.next_sample - n;
      if constexpr (hooked) countdown = std::min<std::uint64_t>(countdown, W::boundary_every);
    }
    if (unlikely(cs != 0)) spin_work(cs);
    if constexpr (Inject) {
      // Fractional budgets: carry the remainder, call once it covers the fixed cost.
      inject_acc += inject_q8;
      if (inject_acc >= inject_fixed) {
        const std::uint64_t units = (inject_acc - inject_fixed) >> 8;
        inject_acc -= inject_fixed + (units << 8);
        inject_v = inject_work(inject_v, units);
        inject_sink = inject_v;
      }
    }
    w.release(self);
    if (unlikely(gap != 0)) spin_work(gap);
    ++n;
  }
  if constexpr (hooked) w.boundary(self);
  *ctl.ops[tid] = n;
  *ctl.cpu_ns[tid] = thread_cpu_ns() - cpu_begin;
}

}  // namespace detail

/// run_trial() - run workload `w` on cfg.threads threads for cfg.duration.
/// Context: blocks the caller for about cfg.duration plus the drain (bounded by
/// cfg.drain_limit). If workers are abandoned, `w` must outlive them: the caller must then
/// hand it to detail::keep_alive (registry.hpp does). Workers never call exit(); failures come back in the result.
template <workload W>
trial_result run_trial(const trial_config& cfg, W& w) {
  auto ctl = std::make_shared<detail::control>();
  ctl->hist.resize(cfg.threads);
  ctl->ops.resize(cfg.threads);
  ctl->cpu_ns.resize(cfg.threads);
  auto ctx = std::make_shared<detail::loop_ctx<W>>(detail::loop_ctx<W>{&w, cfg, ctl, clock_pair_ns()});
  // An injected trial runs its own instantiation: the plain loop's code is the one without it.
  trial_result r = detail::drive(cfg, ctl, cfg.inject_q8 ? &detail::worker_loop<W, true> : &detail::worker_loop<W, false>,
                                 ctx.get());
  if (r.abandoned) {
    // Detached workers still read ctx: keep it alive for the rest of the process.
    detail::keep_alive(ctx);
    return r;
  }
  if constexpr (checked_workload<W>) r.error = w.check(r.total());
  return r;
}

}  // namespace kprim::bench
