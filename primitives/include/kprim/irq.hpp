// kprim/irq.hpp: interrupt context in user space - a kprim "interrupt" is a POSIX signal whose
// handler kprim registered (request_irq), and local_irq_save()/spin_lock_irqsave() mask those
// signals on the calling thread with a per-thread soft mask instead of a system call.
// For plain asynchronous notification with no shared state, sigaction() or signalfd is the
// simpler tool; this exists so that code written against the kernel's interrupt rules
// (spin_lock_irqsave around data a handler touches, GFP_ATOMIC in the handler) runs and is
// checked in user space.
//
// The model:
//   irq number   a signal number, SIGUSR1, SIGUSR2 or SIGRTMIN..SIGRTMAX (others are refused:
//                synchronous signals such as SIGSEGV are faults, not interrupts).
//   request_irq  installs kprim's trampoline for it process-wide (sigaction, SA_SIGINFO |
//                SA_RESTART, every signal blocked while it runs), as the kernel's handler runs
//                with interrupts off. A signal sent to any thread interrupts that thread.
//   the handler  runs in hardirq context: __irq_enter()/__irq_exit() around it (so in_irq()
//                and in_interrupt() are true inside with the debug layer on, and might_sleep()
//                reports), with the soft mask set (irqs_disabled()), errno saved and restored.
//                It must be async-signal-safe: no lock the interrupted code may hold (take
//                such locks with spin_lock_irqsave elsewhere), no malloc; kmalloc(GFP_ATOMIC)
//                and kmem_cache_alloc(GFP_ATOMIC) and their frees are safe (allocators/).
//
// How local_irq_save() is made cheap (the kernel's lazy "soft" irq disabling on powerpc,
// arch/powerpc/include/asm/hw_irq.h; the same idea as an rseq flag):
//   - masking a signal for real costs a pthread_sigmask system call each way (~100+ ns);
//   - instead local_irq_save() reads this thread's soft mask byte (tls_irq.off) into flags and
//     stores 1: two moves on thread-local memory, plus a compiler-only signal fence so the
//     critical section cannot be hoisted above it. The signal is NOT blocked in the OS.
//   - kprim's trampoline, on entry, reads the soft mask. If it is set, it records the signal
//     in this thread's pending word (one bit per irq) and returns at once: the interrupted
//     section goes on as if the signal had been masked. If clear, it runs the handler.
//   - local_irq_restore(flags) with interrupts on in flags stores 0 to the mask, then (after
//     a signal fence) reads the pending word; only if it is non-zero does it call the cold
//     replay, which runs each pending handler in hardirq context, with the mask set, on this
//     thread, before local_irq_restore returns (the kernel's replay of soft-masked interrupts,
//     powerpc's __replay_soft_interrupts).
//   Races: a signal between the load and the store of local_irq_save runs its handler before
//   the section (it interrupted code that had interrupts on); one after the store is pended.
//   In restore, one before the clearing store is pended and the load after it sees the bit;
//   one after the store runs at once. Relaxed single-byte/word accesses and signal fences are
//   enough: only this thread and a handler on this thread touch the state.
//   Nesting: flags holds the previous mask, so an inner restore of a section that started
//   with interrupts off leaves them off; only the outermost restore enables and replays.
//
// Delivery semantics (state it as the kernel does for edge-triggered lines): a signal that
// arrives while interrupts are on runs the handler once (the OS itself coalesces a standard
// signal that arrives while one of its kind is already pending; real-time signals queue).
// Signals of one irq that arrive while the soft mask is set are latched in one bit: the handler
// runs exactly once at the restore, however many arrived, like an edge latched in a masked
// interrupt controller. The handler is never lost: at least once per masked interval.
//
// What can and cannot be interrupted:
//   can    any code of a thread that has the soft mask clear, including spin_lock() sections
//          (a handler that takes such a lock deadlocks, as in the kernel: use the irqsave
//          form), kmem_cache_alloc()'s fast path (its handler path never touches the
//          per-thread magazines), and a replay's caller.
//   cannot a handler (no nesting: every signal is blocked in the trampoline, and a replay runs
//          with the mask set, so what arrives meanwhile is pended and replayed after it);
//          a local_irq_save()/spin_lock_irqsave() section of this thread.
//   not covered: other threads (local_irq_* is per thread, as per CPU in the kernel), signals
//          kprim did not register, preemption by the OS scheduler (spin_lock_irqsave does not
//          stop the scheduler any more than spin_lock does), and threads that block the
//          signal with pthread_sigmask (it then waits in the OS as usual).
//
// Test: primitives/tests/irq_test.cpp (and allocators/tests/slab_irq_test.cpp for GFP_ATOMIC
// in handlers). Benchmark: bench/bench_locks.cpp (spin_lock_irqsave vs spin_lock).
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>
#include <kprim/detail/irq_state.hpp>
#include <kprim/spinlock.hpp>

#include <pthread.h>

#include <atomic>
#include <cstdint>
#if KPRIM_DEBUG_LOCKING
#include <source_location>
#endif

namespace kprim {

// ---- Handlers ------------------------------------------------------------------------------

/// The kernel's handler return: whether the handler recognised the interrupt as its own.
enum irqreturn_t : int { IRQ_NONE = 0,
                         IRQ_HANDLED = 1 };
using irq_handler_t = irqreturn_t (*)(int irq, void* dev_id);

/// request_irq() - install `handler` for irq (a signal number, see the model above).
/// @flags: 0 (no IRQF_* is supported: a signal has one kprim handler; IRQF_SHARED is refused).
/// @name:  shown by kstat reports; not copied (a string literal, as in the kernel).
/// @dev:   passed to the handler, and the key free_irq() must present.
/// Returns 0, -EINVAL (bad irq, null handler, unknown flags) or -EBUSY (already requested).
/// Context: process context, may sleep (a registration mutex). Cost: a sigaction() call.
[[nodiscard]] int request_irq(unsigned irq, irq_handler_t handler, unsigned long flags, const char* name, void* dev);

/// free_irq() - remove the handler of irq registered with `dev`, restore the signal's previous
/// disposition, and wait for handlers of irq running on other threads to return (the kernel's
/// synchronize_irq()). A bit still pending on some thread is dropped when replayed. A signal
/// sent afterwards gets the previous disposition (SIGUSR1's default terminates the process).
/// Returns `name` as given to request_irq, or nullptr (nothing registered with that dev).
/// Context: process context, not from the handler itself (it would wait for itself).
const char* free_irq(unsigned irq, void* dev);

/// synchronize_irq() - wait until no handler of irq runs on any thread. Context: process.
void synchronize_irq(unsigned irq);

/// raise_irq() - send irq to the calling thread (tgkill): its handler runs before this returns
/// unless the soft mask is set, in which case it runs at the restore. raise_irq_on() sends it
/// to `thread` (pthread_kill). Returns 0 or a negative errno. Context: any, async-signal-safe.
int raise_irq(unsigned irq) noexcept;
int raise_irq_on(pthread_t thread, unsigned irq) noexcept;

/// kstat_irqs() - how many times irq's handler ran (delivered plus replayed), all threads;
/// kstat_irqs_deferred() - how many deliveries found the soft mask set and were pended
/// (several may be latched into one replay). Relaxed reads. Context: any.
[[nodiscard]] unsigned long kstat_irqs(unsigned irq) noexcept;
[[nodiscard]] unsigned long kstat_irqs_deferred(unsigned irq) noexcept;

namespace detail {
/// irq_replay_pending() - run every pending handler of this thread (the restore's cold path).
[[gnu::cold]] void irq_replay_pending() noexcept;

inline void irq_mask_store(unsigned char off) noexcept {
  tls_irq.off.store(off, std::memory_order_relaxed);
#if KPRIM_DEBUG_LOCKING
  debug::tls_context.irqs_off = off != 0;  // what irqs_disabled(), might_sleep() and lockdep read
#endif
}
}  // namespace detail

// ---- The soft mask -------------------------------------------------------------------------

/// arch_irqs_disabled() - the soft mask is set on this thread, in every build (irqs_disabled()
/// is the debug layer's query, false in release builds). Cost: one TLS load.
[[nodiscard]] inline bool arch_irqs_disabled() noexcept { return detail::tls_irq.off.load(std::memory_order_relaxed) != 0; }

/// irqs_disabled_flags() - whether flags saved by local_irq_save() had interrupts off.
[[nodiscard]] constexpr bool irqs_disabled_flags(unsigned long flags) noexcept { return flags != 0; }

/// local_irq_save() - save this thread's interrupt state in flags and disable kprim interrupts
/// (signals registered with request_irq are pended, not run, until the matching restore).
/// Ordering: a compiler barrier after (signal fence); no CPU fence is needed, only this thread
/// and its own handlers read the mask. Context: any (nests). Cost: a TLS load and store.
inline void local_irq_save(unsigned long& flags) noexcept {
  flags = detail::tls_irq.off.load(std::memory_order_relaxed);
  detail::irq_mask_store(1);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the section stays after the store
}

/// local_irq_restore() - go back to the state saved in flags. If that re-enables interrupts,
/// the handlers that arrived meanwhile run now (once per irq), before this returns.
/// Requires: flags from the matching local_irq_save() on this thread. Cost: a store, a TLS
/// load and a not-taken branch when nothing is pending.
inline void local_irq_restore(unsigned long flags) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the section stays before the store
  if (flags != 0) return;                               // the section began with interrupts off: they stay off
  detail::irq_mask_store(0);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the store before the pending load
  if (unlikely(detail::tls_irq.pending.load(std::memory_order_relaxed) != 0)) detail::irq_replay_pending();
}

/// local_irq_disable()/local_irq_enable() - unconditional forms: enable re-enables and replays
/// whatever the state before the disable was (use save/restore where sections nest).
inline void local_irq_disable() noexcept {
  detail::irq_mask_store(1);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline void local_irq_enable() noexcept { local_irq_restore(0); }

/// local_bh_disable()/local_bh_enable() - kprim has no softirqs, so nothing is deferred; the
/// debug layer counts the section in preempt_count (SOFTIRQ_DISABLE_OFFSET, as the kernel) so
/// might_sleep() inside reports. Nothing at all in release builds.
inline constexpr unsigned SOFTIRQ_DISABLE_OFFSET = 2 * SOFTIRQ_OFFSET;
inline void local_bh_disable() noexcept {
#if KPRIM_DEBUG_LOCKING
  debug::tls_context.preempt_count += SOFTIRQ_DISABLE_OFFSET;
#endif
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline void local_bh_enable() noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
#if KPRIM_DEBUG_LOCKING
  debug::tls_context.preempt_count -= SOFTIRQ_DISABLE_OFFSET;
#endif
}

/// irq_guard - RAII local_irq_save() in the constructor, local_irq_restore() in the destructor.
class irq_guard {
 public:
  irq_guard() noexcept { local_irq_save(flags_); }
  ~irq_guard() { local_irq_restore(flags_); }
  irq_guard(const irq_guard&) = delete;
  irq_guard& operator=(const irq_guard&) = delete;

 private:
  unsigned long flags_;
};

// ---- Spinlocks with interrupts off ---------------------------------------------------------
// The kernel's spin_lock_irqsave family: mask kprim interrupts on this thread, then take the
// lock, so a handler on this thread that takes the same lock can never interrupt the holder
// (that would deadlock: the handler spins on a lock its own thread holds). Unlock releases the
// lock first, then restores (and so may run pending handlers, with the lock already free).
// Ordering as spin_lock()/spin_unlock(). Cost: spin_lock()'s plus local_irq_save()'s (see the
// essay above; bench_locks measures both). The debug layer sees irqs_off while the lock is held.

#if KPRIM_DEBUG_LOCKING
#define KPRIM_IRQ_AT , const std::source_location& at = std::source_location::current()
#define KPRIM_IRQ_PASS_AT , at
#else
#define KPRIM_IRQ_AT
#define KPRIM_IRQ_PASS_AT
#endif

/// spin_lock_irqsave() - local_irq_save(flags), then spin_lock(lock).
template <spinlock_like L>
inline void spin_lock_irqsave(L* lock, unsigned long& flags KPRIM_IRQ_AT) noexcept {
  local_irq_save(flags);
  spin_lock(lock KPRIM_IRQ_PASS_AT);
}

/// spin_trylock_irqsave() - local_irq_save(flags) and try the lock; on failure the interrupt
/// state is restored. True if acquired.
template <spinlock_like L>
[[nodiscard]] inline bool spin_trylock_irqsave(L* lock, unsigned long& flags KPRIM_IRQ_AT) noexcept {
  local_irq_save(flags);
  if (spin_trylock(lock KPRIM_IRQ_PASS_AT)) return true;
  local_irq_restore(flags);
  return false;
}

/// spin_unlock_irqrestore() - spin_unlock(lock), then local_irq_restore(flags).
template <spinlock_like L>
inline void spin_unlock_irqrestore(L* lock, unsigned long flags) noexcept {
  spin_unlock(lock);
  local_irq_restore(flags);
}

/// spin_lock_irq()/spin_unlock_irq() - the unconditional forms: only where interrupts are
/// known to be on at the lock (spin_unlock_irq() always re-enables them).
template <spinlock_like L>
inline void spin_lock_irq(L* lock KPRIM_IRQ_AT) noexcept {
  local_irq_disable();
  spin_lock(lock KPRIM_IRQ_PASS_AT);
}
template <spinlock_like L>
inline void spin_unlock_irq(L* lock) noexcept {
  spin_unlock(lock);
  local_irq_enable();
}

/// spin_lock_bh()/spin_unlock_bh() - local_bh_disable() around the lock (see above: there are
/// no softirqs to keep out; the debug layer counts it).
template <spinlock_like L>
inline void spin_lock_bh(L* lock KPRIM_IRQ_AT) noexcept {
  local_bh_disable();
  spin_lock(lock KPRIM_IRQ_PASS_AT);
}
template <spinlock_like L>
inline void spin_unlock_bh(L* lock) noexcept {
  spin_unlock(lock);
  local_bh_enable();
}

#undef KPRIM_IRQ_AT
#undef KPRIM_IRQ_PASS_AT

}  // namespace kprim
