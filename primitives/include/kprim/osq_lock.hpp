// kprim/osq_lock.hpp: the optimistic spin queue (kernel/locking/osq_lock.c): an MCS queue
// of spinners that lets one thread at a time spin on a sleeping lock's owner, and lets a
// queued spinner leave (unqueue) when it should stop spinning. Internal to mutex and
// rw_semaphore; for a lock that protects data use kprim::qspinlock.
#pragma once

#include <atomic>
#include <cstdint>

namespace kprim {

/// optimistic_spin_queue - one 32-bit tail: 0 when empty, else thread slot + 1 of the last
/// queued spinner. Invariant: non-zero exactly while some thread holds or waits for it.
struct optimistic_spin_queue {
  std::atomic<std::uint32_t> tail{0};
};
static_assert(sizeof(optimistic_spin_queue) == 4);

/// Rounds of cpu_relax() a thread spends in each phase of one optimistic spin (queued in the
/// OSQ, then on the owner) before it gives up and sleeps: meant to be a small fraction of a
/// time slice and a few times a futex wake-up. The wake-up it is weighed against is measured
/// by bench_sleepwake, the spin it buys by bench_locks `locks/handover` and `locks/contended`
/// (kprim_mutex). The kernel stops when need_resched() or the owner's vCPU is preempted; user
/// space sees neither, so a bounded budget stands in for both.
inline constexpr unsigned optimistic_spin_limit = 256;

/// spinner_enter() - claim one of the (CPUs - 1) process-wide spinning slots; false if all
/// are taken (then do not spin: sleep). spinner_leave() gives it back. osq_lock() and
/// osq_unlock() do this themselves; spinners outside an OSQ (a mutex's first waiter) call
/// them directly. Context: never waits. Ordering: relaxed (a heuristic).
[[nodiscard]] bool spinner_enter() noexcept;
void spinner_leave() noexcept;

/// osq_lock() - queue up to be the lock's one spinner. Returns true once the caller holds
/// the OSQ (acquire ordering); false, without queueing, if as many threads as CPUs minus one
/// already spin in OSQs (all locks together: owners must keep a CPU), or, after queueing, if
/// its spin budget ran out and it unqueued itself. Both stand in for need_resched(). Context: spins, never sleeps;
/// one OSQ at a time per thread. Fairness: FIFO among spinners that do not give up.
[[nodiscard]] bool osq_lock(optimistic_spin_queue* lock) noexcept;

/// osq_unlock() - pass the OSQ to the next queued spinner (release ordering).
/// Requires: the caller holds it (osq_lock() returned true).
void osq_unlock(optimistic_spin_queue* lock) noexcept;

/// osq_is_locked() - relaxed snapshot: held or waited for.
[[nodiscard]] inline bool osq_is_locked(const optimistic_spin_queue* lock) noexcept {
  return lock->tail.load(std::memory_order_relaxed) != 0;
}

}  // namespace kprim
