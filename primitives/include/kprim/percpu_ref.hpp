// kprim/percpu_ref.hpp: the kernel's percpu_ref - a reference count whose get/put are per-CPU
// increments (restartable sequences, no locked instruction) while the object is live, and
// which switches to one atomic count on percpu_ref_kill() so the last put can be detected.
// Use kprim/refcount.hpp (one atomic) for objects that are not hot, or whose gets and puts are
// far fewer than their lifetime; killing costs a process-wide membarrier (an IPI per CPU).
//
// State word `mode` (read inside each per-CPU critical section, written under switch_lock):
//   0                    per-CPU mode: gets/puts go to pcpu[cpu]; count holds 1 + bias
//   ATOMIC               atomic mode: gets/puts go to count
//   ATOMIC | DEAD        killed: tryget_live fails; the put that brings count to 0 releases
// Switch per-CPU -> atomic: store mode = ATOMIC (| DEAD for a kill); membarrier(PRIVATE_EXPEDITED_RSEQ), after
// which every critical section that read mode 0 has committed or will restart and see
// ATOMIC (the grace period the kernel gets from RCU-sched); then count += sum(pcpu) - bias.
// The bias keeps count above zero while per-CPU puts are not yet folded in.
// Without the rseq path (rseq unregistered, forced atomic, a TSan build) or without
// membarrier's rseq command, a percpu_ref starts and stays in atomic mode (still correct).
#pragma once

#include <kprim/cache.hpp>
#include <kprim/percpu.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace kprim {

class percpu_ref;
/// Called once, by the put that drops the count to zero after a kill; may free the ref.
using percpu_ref_func_t = void (*)(percpu_ref*);

/// Flags for the constructor (percpu_ref_init): start in atomic mode.
inline constexpr unsigned PERCPU_REF_INIT_ATOMIC = 1u << 0;

/// percpu_ref - struct percpu_ref with percpu_ref_init()/_exit() as constructor/destructor.
/// Starts with one reference (the initial one, dropped by percpu_ref_kill()). Not copyable.
class percpu_ref {
 public:
  static constexpr std::uintptr_t mode_atomic = 1, mode_dead = 2;
  static constexpr std::int64_t bias = std::int64_t{1} << 62;

  explicit percpu_ref(percpu_ref_func_t release, unsigned flags = 0) noexcept;
  percpu_ref(const percpu_ref&) = delete;
  percpu_ref& operator=(const percpu_ref&) = delete;

  friend void percpu_ref_get_many(percpu_ref&, std::int64_t) noexcept;
  friend void percpu_ref_put_many(percpu_ref&, std::int64_t) noexcept;
  friend bool percpu_ref_tryget_live(percpu_ref&) noexcept;
  friend bool percpu_ref_tryget(percpu_ref&) noexcept;
  friend void percpu_ref_kill(percpu_ref&) noexcept;
  friend void percpu_ref_switch_to_atomic_sync(percpu_ref&) noexcept;
  friend void percpu_ref_switch_to_percpu(percpu_ref&) noexcept;
  friend bool percpu_ref_is_percpu(const percpu_ref&) noexcept;
  friend bool percpu_ref_is_dying(const percpu_ref&) noexcept;
  friend bool percpu_ref_is_zero(const percpu_ref&) noexcept;

 private:
  [[nodiscard]] std::uintptr_t mode() const noexcept {
    return std::atomic_ref<const std::uintptr_t>(mode_).load(std::memory_order_acquire);
  }
  /// pcpu_add() - add n to this CPU's slot if mode is 0; false (nothing done) otherwise.
  bool pcpu_add(std::int64_t n) noexcept;
  /// Store new_mode (atomic, maybe dead); if the ref was per-CPU, fence and fold. Under lock.
  void switch_to_atomic_locked(std::uintptr_t new_mode) noexcept;
  [[gnu::cold]] void release_now() noexcept;

  alignas(cacheline_size) std::uintptr_t mode_;  ///< see the state table above
  percpu_ref_func_t release_;
  alignas(cacheline_size) std::atomic<std::int64_t> count_;
  std::mutex switch_lock_;
  per_cpu<std::int64_t> pcpu_;
};

inline bool percpu_ref::pcpu_add(std::int64_t n) noexcept {
#if KPRIM_PERCPU_RSEQ
  if (mode() != 0) return false;  // cheap early exit; the decisive check is inside the sequence
  for (;;) {
    struct rseq* rs = detail::rseq_x86::area();
    const unsigned cpu = detail::rseq_x86::cpu_start(rs);
    bool gated;
    if (likely(detail::rseq_x86::add_if_word_zero(rs, cpu, pcpu_.slot(cpu), n, &mode_, &gated)))
      return !gated;
    detail::percpu_rseq_aborted();
  }
#else
  (void)n;
  return false;
#endif
}

/// percpu_ref_get_many() / percpu_ref_get() - take n (1) references. Requirement: the caller
/// already holds one (or knows the ref is live). Relaxed, as the kernel's. Cost: per-CPU mode,
/// one restartable sequence; atomic mode, one locked add on a shared line.
inline void percpu_ref_get_many(percpu_ref& ref, std::int64_t n) noexcept {
  if (likely(ref.pcpu_add(n))) return;
  ref.count_.fetch_add(n, std::memory_order_relaxed);
}
inline void percpu_ref_get(percpu_ref& ref) noexcept { percpu_ref_get_many(ref, 1); }

/// percpu_ref_put_many() / percpu_ref_put() - drop n (1) references; in atomic mode the put
/// that reaches zero calls the release function (after acquiring every earlier put: acq_rel).
/// Per-CPU mode never reaches zero (the initial reference and the bias are in count).
inline void percpu_ref_put_many(percpu_ref& ref, std::int64_t n) noexcept {
  if (likely(ref.pcpu_add(-n))) return;
  if (ref.count_.fetch_sub(n, std::memory_order_acq_rel) == n) ref.release_now();
}
inline void percpu_ref_put(percpu_ref& ref) noexcept { percpu_ref_put_many(ref, 1); }

/// percpu_ref_tryget() - take a reference unless the count already reached zero. True on
/// success. Per-CPU mode always succeeds; atomic mode is an increment-not-zero CAS loop.
inline bool percpu_ref_tryget(percpu_ref& ref) noexcept {
  if (likely(ref.pcpu_add(1))) return true;
  std::int64_t c = ref.count_.load(std::memory_order_relaxed);
  while (c != 0)
    if (ref.count_.compare_exchange_weak(c, c + 1, std::memory_order_relaxed)) return true;
  return false;
}

/// percpu_ref_tryget_live() - take a reference unless percpu_ref_kill() has been called.
/// Linearises at the mode check: a tryget_live that succeeds ran before the kill's mode change
/// took effect (and so is counted in the switch), one that runs after it fails.
inline bool percpu_ref_tryget_live(percpu_ref& ref) noexcept {
  if (likely(ref.pcpu_add(1))) return true;
  if (ref.mode() & percpu_ref::mode_dead) return false;
  return percpu_ref_tryget(ref);
}

/// percpu_ref_kill() - mark the ref dead (tryget_live fails from now on), switch it to atomic
/// mode and drop the initial reference; the release function runs at the last put (possibly
/// inside this call). Requirement: called once. Context: may sleep (mutex, membarrier).
void percpu_ref_kill(percpu_ref& ref) noexcept;

/// percpu_ref_switch_to_atomic_sync() - move a live ref to atomic mode and return when every
/// CPU's count is folded in. percpu_ref_switch_to_percpu() - move a live, not killed ref back
/// to per-CPU mode (no-op when per-CPU mode is unavailable). Requirement for both: the caller
/// holds a reference. Context: may sleep.
void percpu_ref_switch_to_atomic_sync(percpu_ref& ref) noexcept;
void percpu_ref_switch_to_percpu(percpu_ref& ref) noexcept;

/// percpu_ref_is_percpu() / _is_dying() / _is_zero() - snapshots of the state (acquire).
/// is_zero is true only in atomic mode after the last put.
inline bool percpu_ref_is_percpu(const percpu_ref& ref) noexcept { return ref.mode() == 0; }
inline bool percpu_ref_is_dying(const percpu_ref& ref) noexcept {
  return (ref.mode() & percpu_ref::mode_dead) != 0;
}
inline bool percpu_ref_is_zero(const percpu_ref& ref) noexcept {
  return ref.mode() != 0 && ref.count_.load(std::memory_order_acquire) == 0;
}

/// percpu_ref_percpu_available() - whether this process can run percpu_refs in per-CPU mode
/// (rseq path live and membarrier's rseq fence registered). Context: first call registers.
[[nodiscard]] bool percpu_ref_percpu_available() noexcept;

}  // namespace kprim
