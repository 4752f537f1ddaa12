// kprim/task.hpp: the per-thread record kprim's sleeping locks point at (the kernel's
// task_struct, reduced to what mutex and rw_semaphore need). Internal to the lock family.
#pragma once

#include <kprim/cache.hpp>
#include <kprim/futex.hpp>
#include <kprim/thread_slot.hpp>

#include <atomic>
#include <cstdint>

namespace kprim {

/// task_struct - one per thread slot, in a static table, so a pointer to it stays valid after
/// its thread exits (a late wake-up then reaches a reused slot: a harmless spurious wake-up).
/// Cache-line aligned: lock owner words keep flags in the low bits of the pointer.
struct alignas(cacheline_size) task_struct {
  /// Futex word: 1 once woken. The thread clears it (set_current_state()) before its last
  /// check of the lock, then sleeps while it is 0; wakers store 1 then futex_wake().
  std::atomic<std::uint32_t> wake{0};
  /// 0 while the thread sleeps in a kprim lock, 1 otherwise: the user-space part of the
  /// kernel's owner->on_cpu (user space cannot see the scheduler's preemptions; spinners
  /// bound their spin instead, see kprim/mutex.hpp).
  std::atomic<std::uint32_t> on_cpu{1};
};
static_assert(alignof(task_struct) >= 8, "owner words use three low bits for flags");

namespace detail {
extern task_struct task_table[max_thread_slots];
}

/// current() - the calling thread's task_struct. Context: any thread. Cost: a thread-local
/// load and an index after the first call (see this_thread_slot()).
inline task_struct* current() noexcept { return &detail::task_table[this_thread_slot()]; }

/// set_current_state() - announce that the caller is about to sleep: clears its wake flag.
/// Returns with acquire ordering against a waker's release, so a wake-up that came before
/// is seen by the caller's next check of the lock. Context: the caller's own task only.
inline void set_current_state() noexcept { current()->wake.exchange(0, std::memory_order_acq_rel); }

/// schedule() - sleep until woken (or spuriously). Callers re-check their condition.
inline void schedule() noexcept {
  task_struct* t = current();
  t->on_cpu.store(0, std::memory_order_relaxed);
  futex_wait(t->wake, 0);
  t->on_cpu.store(1, std::memory_order_relaxed);
}

/// wake_up_process() - wake `t` if it sleeps in schedule(); makes its next schedule() return
/// at once if it has not slept yet. Ordering: release (the waker's earlier stores are seen).
/// Cost: one exchange; the futex system call only if no wake-up is pending yet (a pending
/// one already woke `t` or will make its futex_wait() return), as the kernel's
/// try_to_wake_up() returns early for a task that is already running.
inline void wake_up_process(task_struct* t) noexcept {
  if (t->wake.exchange(1, std::memory_order_acq_rel) == 0) futex_wake(t->wake, 1);
}

}  // namespace kprim
