// kprim/percpu.hpp: per-CPU variables (the kernel's DEFINE_PER_CPU, per_cpu_ptr, this_cpu_*)
// whose read-modify-writes are restartable sequences on glibc's rseq registration, so they
// take no `lock` prefix. For a counter that is read often, use kprim/percpu_counter.hpp; for
// data a thread owns, use thread_local; for a value that must be exact at every instant, use
// one std::atomic.
//
// Two paths, chosen for the whole process (percpu_path_name() says which is live):
//   rseq   - x86-64 with glibc's rseq registered: this_cpu_add() is a critical section that
//            commits with one unlocked store to the slot of the CPU the thread is on; a
//            preemption, migration or signal inside it restarts it (counted by
//            percpu_rseq_aborts()).
//   atomic - rseq not registered (GLIBC_TUNABLES=glibc.pthread.rseq=0, old kernel), another
//            architecture (arm64: the documented fallback, no arm64 critical sections are
//            written; qemu-user, where the arm64 suite runs, has no rseq syscall at all),
//            a ThreadSanitizer build (TSan cannot see through the asm), or
//            forced with percpu_force_atomic(): a relaxed atomic RMW on the slot of the CPU
//            the thread was on a moment ago. Still exact; slower (a locked instruction, and
//            the line moves when threads migrate).
// The two paths must never write one variable at the same time: an unlocked rseq commit on
// CPU 1 can lose a locked add that another CPU makes to CPU 1's slot. Hence the path is
// process-wide and may only be switched while no thread is inside a this_cpu_* operation.
//
// Ordering: every this_cpu_* operation is relaxed (as in the kernel): it orders nothing else,
// and is a compiler barrier only on the rseq path. Readers of other CPUs' slots
// (per_cpu_ptr, per_cpu_sum) see each committed update whole (single-copy atomic).
// Context: any thread glibc created, including inside signal handlers (the kernel restarts an
// interrupted critical section before the handler runs); never blocks; lock-free.
#pragma once

#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>
#include <kprim/percpu/rseq.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace kprim {

/// nr_cpu_ids() - number of possible CPU ids: one past the highest CPU in
/// /sys/devices/system/cpu/possible (sysconf(_SC_NPROCESSORS_CONF) if that is unreadable).
/// Every CPU id the kernel reports is below it. Context: any; first call reads sysfs once.
[[nodiscard]] unsigned nr_cpu_ids() noexcept;

/// percpu_path - which implementation this_cpu_* operations use in this process.
enum class percpu_path { rseq,
                         atomic };

/// percpu_live_path() / percpu_path_name() - the live path, and a one-line reason suitable for
/// a results context ("rseq", "atomic: forced", "atomic: rseq not registered by glibc", ...).
/// Context: any. Cost: a relaxed load after the first call.
[[nodiscard]] percpu_path percpu_live_path() noexcept;
[[nodiscard]] const char* percpu_path_name() noexcept;

/// percpu_force_atomic() - force the atomic path (true) or return to the detected one (false).
/// Requirement: no thread is inside a this_cpu_* operation or percpu_counter update (switch at
/// start-up or between test phases); percpu_ref instances keep the mode they were created in.
void percpu_force_atomic(bool on) noexcept;

/// percpu_rseq_aborts() - restarted critical sections in this process so far (preempted,
/// migrated or signalled inside one, or migrated between choosing the slot and entering).
/// percpu_rseq_aborts_this_thread() - the same, for the calling thread only.
/// Context: any. Relaxed; the process total is exact once the counting threads are joined.
[[nodiscard]] std::uint64_t percpu_rseq_aborts() noexcept;
[[nodiscard]] std::uint64_t percpu_rseq_aborts_this_thread() noexcept;

namespace detail {
inline constexpr int percpu_mode_unknown = 0, percpu_mode_rseq = 1, percpu_mode_atomic = 2;
extern std::atomic<int> percpu_mode;
bool percpu_mode_detect() noexcept;  // not [[gnu::cold]]: g++ 12 then deems callers cold
[[gnu::cold, gnu::noinline]] void percpu_rseq_aborted() noexcept;
unsigned percpu_getcpu_slow() noexcept;  // the only path where rseq is unavailable

/// percpu_use_rseq() - true when the rseq path is live. One relaxed load of a read-mostly word.
[[gnu::always_inline]] inline bool percpu_use_rseq() noexcept {
#if KPRIM_PERCPU_RSEQ
  const int m = percpu_mode.load(std::memory_order_relaxed);
  if (likely(m == percpu_mode_rseq)) return true;
  if (unlikely(m == percpu_mode_unknown)) return percpu_mode_detect();
  return false;
#else
  return false;
#endif
}

#if KPRIM_PERCPU_RSEQ
/// rseq_retry() - run critical section `op(rs, cpu)` until it completes, counting aborts.
template <class Op>
[[gnu::always_inline]] inline void rseq_retry(Op&& op) noexcept {
  for (;;) {
    struct rseq* rs = rseq_x86::area();
    if (likely(op(rs, rseq_x86::cpu_start(rs)))) return;
    percpu_rseq_aborted();
  }
}
#endif
}  // namespace detail

/// per_cpu<T> - DEFINE_PER_CPU(T, name): one T per possible CPU, each slot alone on a pair of
/// cache lines (so neither false sharing nor the adjacent-line prefetcher couples two CPUs).
/// Layout contract: slot c at base + c * stride; stride a multiple of cacheline_pair_size.
/// Not copyable or movable (slots are addressed by pointer). Construction allocates
/// nr_cpu_ids() * stride bytes and copy-constructs every slot from `init`.
template <class T>
class per_cpu {
 public:
  static constexpr std::size_t slot_align = std::max(alignof(T), cacheline_pair_size);
  static constexpr std::size_t stride = (sizeof(T) + slot_align - 1) / slot_align * slot_align;
  static_assert(stride % cacheline_pair_size == 0 && stride >= sizeof(T));

  per_cpu() : per_cpu(T{}) {}
  explicit per_cpu(const T& init) : n_(nr_cpu_ids()) {
    base_ = static_cast<std::byte*>(::operator new (n_* stride, std::align_val_t{slot_align}));
    for (unsigned c = 0; c < n_; ++c) new (base_ + c * stride) T(init);
  }
  ~per_cpu() {
    for (unsigned c = 0; c < n_; ++c) slot(c)->~T();
    ::operator delete (base_, std::align_val_t{slot_align});
  }
  per_cpu(const per_cpu&) = delete;
  per_cpu& operator=(const per_cpu&) = delete;

  /// slot() - CPU `cpu`'s instance. Requirement: cpu < nr_cpu_ids(). Cost: a shift and an add.
  [[nodiscard]] T* slot(unsigned cpu) noexcept {
    return std::launder(reinterpret_cast<T*>(base_ + cpu * stride));
  }
  [[nodiscard]] const T* slot(unsigned cpu) const noexcept {
    return std::launder(reinterpret_cast<const T*>(base_ + cpu * stride));
  }
  /// cpus() - number of slots (== nr_cpu_ids()).
  [[nodiscard]] unsigned cpus() const noexcept { return n_; }

 private:
  std::byte* base_;
  unsigned n_;
};

/// per_cpu_ptr() - CPU `cpu`'s instance of `var`, for initialisation, teardown and sums.
/// Requirement: cpu < nr_cpu_ids(). Writing another CPU's slot while that CPU's threads run
/// this_cpu_* on it loses updates; reading it is fine (std::atomic_ref for scalars).
template <class T>
[[nodiscard]] inline T* per_cpu_ptr(per_cpu<T>& var, unsigned cpu) noexcept {
  return var.slot(cpu);
}

/// for_each_possible_cpu() - call f(cpu) for cpu = 0 .. nr_cpu_ids()-1, in order.
template <class F>
inline void for_each_possible_cpu(F&& f) {
  const unsigned n = nr_cpu_ids();
  for (unsigned cpu = 0; cpu < n; ++cpu) f(cpu);
}

/// raw_smp_processor_id() - the CPU this thread was running on during the call.
/// Context: any. Cost: one load from the rseq area (a vDSO getcpu without rseq).
/// The answer may be stale by the time it is used; it is always < nr_cpu_ids().
[[nodiscard]] inline unsigned raw_smp_processor_id() noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(__rseq_size != 0)) return detail::rseq_x86::cpu_start(detail::rseq_x86::area());
#endif
  return detail::percpu_getcpu_slow();
}

/// get_cpu() / put_cpu() - what they can and cannot promise in user space.
/// In the kernel, get_cpu() disables preemption: the task stays on the returned CPU, and no
/// other task runs there, until put_cpu(), so per-CPU data can be updated with plain
/// instructions in between. User space cannot disable preemption, so here:
///   can promise:   a valid CPU id (< nr_cpu_ids()) the thread ran on during the call;
///   cannot promise: that the thread is still on it afterwards (it may migrate at any
///                  instruction), nor that no other thread on that CPU touches its slot
///                  (preemption), even with the thread pinned by sched_setaffinity.
/// So get_cpu()/put_cpu() bracket nothing: put_cpu() is a no-op kept for kernel-shaped code.
/// Update per-CPU data with this_cpu_* (a restartable sequence gives the kernel's guarantee
/// for the few instructions up to its commit) or with atomics on the chosen slot.
[[nodiscard]] inline unsigned get_cpu() noexcept { return raw_smp_processor_id(); }
inline void put_cpu() noexcept {}

/// this_cpu_ptr() - the instance of the CPU the thread was just on (see get_cpu(): the thread
/// may have moved on before the pointer is used). Use it as a hint, e.g. to pick a home slot.
template <class T>
[[nodiscard]] inline T* this_cpu_ptr(per_cpu<T>& var) noexcept {
  return var.slot(raw_smp_processor_id());
}

namespace detail {
template <percpu_scalar T>
[[gnu::always_inline]] inline std::atomic_ref<T> this_cpu_atomic(per_cpu<T>& var) noexcept {
  return std::atomic_ref<T>(*var.slot(raw_smp_processor_id()));
}
}  // namespace detail

/// this_cpu_read() - the current CPU's instance, read once (relaxed). No critical section is
/// needed: a load cannot be torn, only be from a CPU the thread has since left.
template <percpu_scalar T>
[[nodiscard]] inline T this_cpu_read(per_cpu<T>& var) noexcept {
  return std::atomic_ref<T>(*this_cpu_ptr(var)).load(std::memory_order_relaxed);
}

/// this_cpu_add() - add n to the current CPU's instance. Relaxed; lock-free (restarts only
/// when preempted/migrated/signalled inside a few instructions); rseq path: no locked
/// instruction, commit is the store of one unlocked `add`. this_cpu_sub/inc/dec are the same.
template <percpu_scalar T>
inline void this_cpu_add(per_cpu<T>& var, T n) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    detail::rseq_retry([&](struct rseq* rs, unsigned cpu) {
      return detail::rseq_x86::add(rs, cpu, var.slot(cpu), n);
    });
    return;
  }
#endif
  detail::this_cpu_atomic(var).fetch_add(n, std::memory_order_relaxed);
}
template <percpu_scalar T>
inline void this_cpu_sub(per_cpu<T>& var, T n) noexcept {
  this_cpu_add(var, static_cast<T>(T{0} - n));
}
template <percpu_scalar T>
inline void this_cpu_inc(per_cpu<T>& var) noexcept { this_cpu_add(var, T{1}); }
template <percpu_scalar T>
inline void this_cpu_dec(per_cpu<T>& var) noexcept { this_cpu_add(var, static_cast<T>(-1)); }

/// this_cpu_add_return() - add n to the current CPU's instance and return the new value of
/// that instance. Relaxed. The returned value belongs to the CPU the thread was on at the
/// commit, which it may already have left.
template <percpu_scalar T>
inline T this_cpu_add_return(per_cpu<T>& var, T n) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    T r{};
    detail::rseq_retry([&](struct rseq* rs, unsigned cpu) {
      return detail::rseq_x86::add_return(rs, cpu, var.slot(cpu), n, &r);
    });
    return r;
  }
#endif
  return static_cast<T>(detail::this_cpu_atomic(var).fetch_add(n, std::memory_order_relaxed) + n);
}

/// this_cpu_write() - store v into the current CPU's instance (rseq: only if still on the CPU
/// whose slot was chosen, so it never clobbers a slot another CPU is updating). Relaxed.
template <percpu_scalar T>
inline void this_cpu_write(per_cpu<T>& var, T v) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    detail::rseq_retry([&](struct rseq* rs, unsigned cpu) {
      return detail::rseq_x86::store(rs, cpu, var.slot(cpu), v);
    });
    return;
  }
#endif
  detail::this_cpu_atomic(var).store(v, std::memory_order_relaxed);
}

/// this_cpu_xchg() - replace the current CPU's instance with v; returns the old value. Relaxed.
template <percpu_scalar T>
inline T this_cpu_xchg(per_cpu<T>& var, T v) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    T prev{};
    detail::rseq_retry([&](struct rseq* rs, unsigned cpu) {
      return detail::rseq_x86::xchg(rs, cpu, var.slot(cpu), v, &prev);
    });
    return prev;
  }
#endif
  return detail::this_cpu_atomic(var).exchange(v, std::memory_order_relaxed);
}

/// this_cpu_cmpxchg() - if the current CPU's instance equals `old`, set it to v. Returns the
/// value found (== old on success), as the kernel does. Relaxed on success and failure.
template <percpu_scalar T>
inline T this_cpu_cmpxchg(per_cpu<T>& var, T old, T v) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    T prev{};
    detail::rseq_retry([&](struct rseq* rs, unsigned cpu) {
      return detail::rseq_x86::cmpxchg(rs, cpu, var.slot(cpu), old, v, &prev);
    });
    return prev;
  }
#endif
  T expected = old;
  detail::this_cpu_atomic(var).compare_exchange_strong(expected, v, std::memory_order_relaxed);
  return expected;
}

/// per_cpu_sum() - sum of every CPU's instance (relaxed loads, wrapping arithmetic). Exact
/// when no update runs concurrently; otherwise some value between the totals before and after
/// the concurrent updates (for monotonic counters). Cost: O(nr_cpu_ids()) cache misses.
template <percpu_scalar T>
[[nodiscard]] inline T per_cpu_sum(per_cpu<T>& var) noexcept {
  using U = std::make_unsigned_t<T>;
  U sum = 0;
  for (unsigned c = 0; c < var.cpus(); ++c)
    sum += static_cast<U>(std::atomic_ref<T>(*var.slot(c)).load(std::memory_order_relaxed));
  return static_cast<T>(sum);
}

}  // namespace kprim
