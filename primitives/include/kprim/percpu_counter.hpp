// kprim/percpu_counter.hpp: the kernel's percpu_counter - a 64-bit count updated through small
// per-CPU deltas (a restartable sequence each, kprim/percpu.hpp) that are folded into a global
// count when they reach a batch. Cheap to add, cheap to read approximately, O(nr_cpu_ids) to
// read exactly. Use one std::atomic instead when the exact value is needed at every add
// (e.g. a limit checked on each operation), or when adds are rare.
//
// Invariant (with no add in flight): true value == count + sum over CPUs of delta[cpu], and
// |delta[cpu]| < batch, so percpu_counter_read() is within batch * nr_cpu_ids() of it.
// A delta moves into count only under `lock`, which percpu_counter_sum() also takes, so an
// exact sum never sees a delta both in count and in its slot, or in neither.
#pragma once

#include <kprim/cache.hpp>
#include <kprim/percpu.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace kprim {

/// percpu_counter_batch() - the default batch: max(32, 2 * nr_cpu_ids()), as in the kernel.
[[nodiscard]] std::int64_t percpu_counter_batch() noexcept;

/// percpu_counter - struct percpu_counter plus percpu_counter_init()/_destroy() as constructor
/// and destructor. Not copyable. Every operation is relaxed except percpu_counter_sum()/_set(),
/// which take `lock` (acquire/release with each other and with folds).
class percpu_counter {
 public:
  explicit percpu_counter(std::int64_t initial = 0)
      : count_(initial), batch_(percpu_counter_batch()) {}
  percpu_counter(const percpu_counter&) = delete;
  percpu_counter& operator=(const percpu_counter&) = delete;

  /// batch() - percpu_counter_batch(), cached at construction (read on every add).
  [[nodiscard]] std::int64_t batch() const noexcept { return batch_; }

  friend void percpu_counter_add_batch(percpu_counter&, std::int64_t, std::int64_t) noexcept;
  friend std::int64_t percpu_counter_read(const percpu_counter&) noexcept;
  friend std::int64_t percpu_counter_sum(percpu_counter&) noexcept;
  friend void percpu_counter_set(percpu_counter&, std::int64_t) noexcept;

 private:
  // Cold paths (percpu_counter.cpp). fold_current(): move the current CPU's delta plus
  // `amount` into count. fold_slot(): move one slot's delta (the atomic path's fold).
  void fold_current(std::int64_t amount) noexcept;
  void fold_slot(std::int64_t* slot) noexcept;
  std::int64_t sum() noexcept;
  void set(std::int64_t amount) noexcept;

  std::atomic<std::int64_t> count_;  ///< folded total; written only under lock_
  std::mutex lock_;                  ///< serialises folds, exact sums and set
  std::int64_t batch_;
  per_cpu<std::int64_t> deltas_;     ///< per-CPU unfolded deltas, |delta| < batch
};

/// percpu_counter_add_batch() - add `amount`, folding the current CPU's delta into the global
/// count when |delta + amount| would reach `batch` (> 0). Context: any thread; the fold takes
/// a mutex (once per about `batch` unit adds). Relaxed. Cost: rseq path, one restartable
/// sequence with no locked instruction; atomic path, one locked add.
inline void percpu_counter_add_batch(percpu_counter& fbc, std::int64_t amount,
                                     std::int64_t batch) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (likely(detail::percpu_use_rseq())) {
    for (;;) {
      struct rseq* rs = detail::rseq_x86::area();
      const unsigned cpu = detail::rseq_x86::cpu_start(rs);
      const auto r = detail::rseq_x86::add_bounded(rs, cpu, fbc.deltas_.slot(cpu), amount, batch);
      if (likely(r == detail::rseq_x86::bounded::committed)) return;
      if (r == detail::rseq_x86::bounded::out_of_range) return fbc.fold_current(amount);
      detail::percpu_rseq_aborted();
    }
  }
#endif
  std::int64_t* slot = this_cpu_ptr(fbc.deltas_);
  const std::int64_t r = std::atomic_ref<std::int64_t>(*slot).fetch_add(amount,
                                                                        std::memory_order_relaxed) +
                         amount;
  if (unlikely(r >= batch || r <= -batch)) fbc.fold_slot(slot);
}

/// percpu_counter_add() / _sub() / _inc() / _dec() - add_batch with percpu_counter_batch().
inline void percpu_counter_add(percpu_counter& fbc, std::int64_t amount) noexcept {
  percpu_counter_add_batch(fbc, amount, fbc.batch());
}
inline void percpu_counter_sub(percpu_counter& fbc, std::int64_t amount) noexcept {
  percpu_counter_add(fbc, -amount);
}
inline void percpu_counter_inc(percpu_counter& fbc) noexcept { percpu_counter_add(fbc, 1); }
inline void percpu_counter_dec(percpu_counter& fbc) noexcept { percpu_counter_add(fbc, -1); }

/// percpu_counter_read() - the folded count only: O(1), relaxed, off from the true value by
/// less than batch * nr_cpu_ids() (plus adds in flight). May be negative even if the true
/// value never is; percpu_counter_read_positive() clamps at 0.
inline std::int64_t percpu_counter_read(const percpu_counter& fbc) noexcept {
  return fbc.count_.load(std::memory_order_relaxed);
}
[[nodiscard]] inline std::int64_t percpu_counter_read_positive(const percpu_counter& fbc) noexcept {
  return std::max<std::int64_t>(percpu_counter_read(fbc), 0);
}

/// percpu_counter_sum() - the exact value: count plus every CPU's delta, under the lock.
/// Exact when no add runs concurrently; otherwise each concurrent add is counted whole or not
/// at all, and every add that happened before the call is counted. Context: may sleep on the
/// mutex. Cost: O(nr_cpu_ids()) cache misses.
inline std::int64_t percpu_counter_sum(percpu_counter& fbc) noexcept {
  return fbc.sum();
}
[[nodiscard]] inline std::int64_t percpu_counter_sum_positive(percpu_counter& fbc) noexcept {
  return std::max<std::int64_t>(percpu_counter_sum(fbc), 0);
}

/// percpu_counter_set() - set the value to `amount` (zeroes every delta). Requirement: no add
/// runs concurrently (like the kernel's, it would race with the per-CPU deltas).
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
