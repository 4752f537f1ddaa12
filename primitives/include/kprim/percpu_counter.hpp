// kprim/percpu_counter.hpp: the kernel's percpu_counter - a 64-bit count updated through
// per-CPU slots (a restartable sequence each, kprim/percpu.hpp) whose pending part is folded
// into a global count every `batch` units. Cheap to add, O(1) to read approximately,
// O(nr_cpu_ids) to read exactly. Use one std::atomic instead when the exact value is needed
// at every add (e.g. a limit checked on each operation), or when adds are rare.
//
// Layout and invariant. Each CPU's slot holds `local`, the running total of every add made on
// that CPU, and `folded`, how much of `local` is already in `count`:
//   exact value        = base + sum over CPUs of local[cpu]
//   count (the read)   = base + sum over CPUs of folded[cpu]      (once folds complete)
//   pending[cpu]       = local[cpu] - folded[cpu], folded into count when |pending| >= batch
// Where the kernel moves the per-CPU delta into count under a spinlock with interrupts off
// (and its exact sum takes that lock), here a fold only advances the `folded` watermark (a
// CAS) and adds the difference to count, so neither a fold nor an exact sum takes a lock: in
// user space a preempted lock holder would stall every CPU's fold behind it.
// All arithmetic wraps (two's complement), so running totals may overflow harmlessly.
#pragma once

#include <kprim/cache.hpp>
#include <kprim/percpu.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace kprim {

/// percpu_counter_batch() - the default batch: max(32, 2 * nr_cpu_ids()), as in the kernel.
[[nodiscard]] std::int64_t percpu_counter_batch() noexcept;

/// percpu_counter - struct percpu_counter plus percpu_counter_init()/_destroy() as constructor
/// and destructor. Not copyable. Every operation is relaxed: none orders other memory.
class percpu_counter {
 public:
  explicit percpu_counter(std::int64_t initial = 0)
      : base_(initial), count_(initial), batch_(percpu_counter_batch()) {}
  percpu_counter(const percpu_counter&) = delete;
  percpu_counter& operator=(const percpu_counter&) = delete;

  /// batch() - percpu_counter_batch(), cached at construction (read on every add).
  [[nodiscard]] std::int64_t batch() const noexcept { return batch_; }

  friend void percpu_counter_add_batch(percpu_counter&, std::int64_t, std::int64_t) noexcept;
  friend std::int64_t percpu_counter_read(const percpu_counter&) noexcept;
  friend std::int64_t percpu_counter_sum(percpu_counter&) noexcept;
  friend void percpu_counter_set(percpu_counter&, std::int64_t) noexcept;

 private:
  struct slot {
    std::int64_t local = 0;   ///< running total of adds on this CPU (this CPU writes it)
    std::int64_t folded = 0;  ///< part of `local` already in count_ (CAS from any CPU)
  };
  /// fold() - move s's pending amount into count_: CAS `folded` up to a fresh read of
  /// `local`, add the difference. Lock-free; concurrent folds of one slot each move a
  /// disjoint part. Cold (once per about `batch` units).
  [[gnu::noinline]] void fold(slot* s) noexcept;
  [[nodiscard]] std::int64_t sum() noexcept;
  void set(std::int64_t amount) noexcept;

  std::int64_t base_;                                        ///< initial value (or the last percpu_counter_set)
  alignas(cacheline_size) std::atomic<std::int64_t> count_;  ///< base + folded amounts
  std::int64_t batch_;
  per_cpu<slot> slots_;
};

/// percpu_counter_add_batch() - add `amount`; when the current CPU's pending amount reaches
/// `batch` (> 0) in magnitude, fold it into the global count. Context: any thread, never
/// blocks; lock-free. Relaxed. Cost: rseq path, one restartable sequence with no locked
/// instruction, plus a CAS and a shared-line add once per about `batch` units; atomic path,
/// one locked add on the slot, plus the same fold.
inline void percpu_counter_add_batch(percpu_counter& fbc, std::int64_t amount,
                                     std::int64_t batch) noexcept {
  unsigned cpu = 0;
  std::int64_t local = 0;
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    detail::rseq_retry([&](struct rseq* rs, unsigned c) {
      cpu = c;
      return detail::rseq_x86::add_return(rs, c, &fbc.slots_.slot(c)->local, amount, &local);
    });
  } else
#endif
  {
    cpu = raw_smp_processor_id();
    local = std::atomic_ref<std::int64_t>(fbc.slots_.slot(cpu)->local)
                .fetch_add(amount, std::memory_order_relaxed) +
            amount;
  }
  percpu_counter::slot* s = fbc.slots_.slot(cpu);
  const std::int64_t pending = static_cast<std::int64_t>(
      static_cast<std::uint64_t>(local) -
      static_cast<std::uint64_t>(std::atomic_ref<std::int64_t>(s->folded).load(std::memory_order_relaxed)));
  if (unlikely(pending >= batch || pending <= -batch)) fbc.fold(s);
}

/// percpu_counter_add() / _sub() / _inc() / _dec() - add_batch with the counter's batch().
inline void percpu_counter_add(percpu_counter& fbc, std::int64_t amount) noexcept {
  percpu_counter_add_batch(fbc, amount, fbc.batch());
}
inline void percpu_counter_sub(percpu_counter& fbc, std::int64_t amount) noexcept {
  percpu_counter_add(fbc, -amount);
}
inline void percpu_counter_inc(percpu_counter& fbc) noexcept { percpu_counter_add(fbc, 1); }
inline void percpu_counter_dec(percpu_counter& fbc) noexcept { percpu_counter_add(fbc, -1); }

/// percpu_counter_read() - the folded count only: O(1), relaxed. With no add in flight and
/// the default batch it is within about batch() * nr_cpu_ids() of the exact value (each
/// CPU's pending part stays below the batch). May be negative even if the exact value never
/// is; percpu_counter_read_positive() clamps at 0.
inline std::int64_t percpu_counter_read(const percpu_counter& fbc) noexcept {
  return fbc.count_.load(std::memory_order_relaxed);
}
[[nodiscard]] inline std::int64_t percpu_counter_read_positive(const percpu_counter& fbc) noexcept {
  return std::max<std::int64_t>(percpu_counter_read(fbc), 0);
}

/// percpu_counter_sum() - the exact value: base plus every CPU's running total. Exact when no
/// add runs concurrently; otherwise each concurrent add is counted whole or not at all, every
/// add that happened before the call is counted, and the sums of a counter that only grows
/// never decrease. Lock-free, never blocks. Cost: O(nr_cpu_ids()) cache misses.
inline std::int64_t percpu_counter_sum(percpu_counter& fbc) noexcept { return fbc.sum(); }
[[nodiscard]] inline std::int64_t percpu_counter_sum_positive(percpu_counter& fbc) noexcept {
  return std::max<std::int64_t>(percpu_counter_sum(fbc), 0);
}

/// percpu_counter_set() - set the value to `amount` (clears every slot). Requirement: no add
/// or sum runs concurrently (like the kernel's, it would race with the per-CPU slots).
inline void percpu_counter_set(percpu_counter& fbc, std::int64_t amount) noexcept {
  fbc.set(amount);
}

/// __percpu_counter_compare() - sign of (value - rhs): -1, 0 or 1. Uses the O(1) read when it
/// is farther from rhs than its error bound (batch * nr_cpu_ids()), the exact sum otherwise.
[[nodiscard]] inline int __percpu_counter_compare(percpu_counter& fbc, std::int64_t rhs,
                                                  std::int64_t batch) noexcept {
  const std::int64_t approx = percpu_counter_read(fbc);
  const std::int64_t slack = batch * static_cast<std::int64_t>(nr_cpu_ids());
  if (approx - rhs > slack) return 1;
  if (rhs - approx > slack) return -1;
  const std::int64_t exact = percpu_counter_sum(fbc);
  return exact > rhs ? 1 : (exact < rhs ? -1 : 0);
}
[[nodiscard]] inline int percpu_counter_compare(percpu_counter& fbc, std::int64_t rhs) noexcept {
  return __percpu_counter_compare(fbc, rhs, fbc.batch());
}

}  // namespace kprim
