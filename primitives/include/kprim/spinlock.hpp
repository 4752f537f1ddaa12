// kprim/spinlock.hpp: the spinlock family and the kernel's spin_lock() API over it.
// spinlock_t is the queued spinlock with the yield policy (spin-then-yield plus the paravirt
// hybrid's stealing, kprim/spinlock/spin_wait.hpp), chosen on bench_locks: it keeps the
// uncontended cost of a test-and-set lock and does not collapse at 2x and 4x nproc threads,
// where the kernel's pure-spin loop (kprim_qspinlock_spin) and the ticket lock do.
// Critical sections that may block belong under kprim::mutex (kprim/mutex.hpp) instead.
#pragma once

#include <kprim/context.hpp>
#include <kprim/detail/scoped_guard.hpp>
#include <kprim/lockdep.hpp>
#include <kprim/spinlock/qspinlock.hpp>
#include <kprim/spinlock/tas.hpp>
#include <kprim/spinlock/ticket.hpp>
#include <kprim/spinlock/ttas.hpp>

#include <concepts>
#include <memory>

namespace kprim {

using spinlock_t = qspinlock;

/// Anything with the std-style Lockable members plus is_locked(): every kprim spinlock.
template <class L>
concept spinlock_like = requires(L& l, const L& cl) {
  l.lock();
  l.unlock();
  { l.try_lock() } -> std::convertible_to<bool>;
  { cl.is_locked() } -> std::convertible_to<bool>;
};

/// spin_lock_init() - put the lock in the unlocked state. Requires: nobody uses it.
/// With KPRIM_DEBUG_LOCKING the call site becomes the lock's lockdep class (the kernel's
/// static lock_class_key per spin_lock_init() site): every lock set up here shares it.
#if KPRIM_DEBUG_LOCKING
template <spinlock_like L>
inline void spin_lock_init(L* lock, const std::source_location& at = std::source_location::current()) noexcept {
  std::destroy_at(lock);
  std::construct_at(lock);
  debug::init_at_site(lock, "spinlock_t", at);
}
#else
template <spinlock_like L>
inline void spin_lock_init(L* lock) noexcept {
  std::destroy_at(lock);
  std::construct_at(lock);
}
#endif

/// DEFINE_SPINLOCK(name) - a spinlock_t with its own lockdep class named `name`.
#if KPRIM_DEBUG_LOCKING
#define DEFINE_SPINLOCK(x) \
  ::kprim::spinlock_t x;   \
  [[maybe_unused]] static const bool x##_lockdep_class_ = (::kprim::debug::define_class(&x, #x, "spinlock_t", __FILE__, __LINE__), true)
#else
#define DEFINE_SPINLOCK(x) ::kprim::spinlock_t x
#endif

/// spin_lock() - acquire; ordering acquire; spins (yields per the lock's policy), never sleeps.
/// With KPRIM_DEBUG_LOCKING the free functions also run lockdep (kprim/lockdep.hpp: checks
/// before waiting, then the lock counts in this thread's preempt count and held-lock stack),
/// taking the caller's location as a defaulted argument; without it they are the member calls
/// and nothing more (test_codegen checks).
#if KPRIM_DEBUG_LOCKING
template <spinlock_like L>
inline void spin_lock(L* lock, const std::source_location& at = std::source_location::current()) noexcept {
  const unsigned cls = debug::lock_acquire(lock, "spinlock_t", debug::acq_preempt, 0, at);
  lock->lock();
  debug::lock_acquired(lock, cls, "spinlock_t", debug::acq_preempt, at);
}
/// spin_lock_nested() - spin_lock() of a second lock of the same class, as subclass 1..7
/// (lockdep tells "parent then child" from "the same lock twice" by the subclass).
template <spinlock_like L>
inline void spin_lock_nested(L* lock, unsigned subclass,
                             const std::source_location& at = std::source_location::current()) noexcept {
  const unsigned cls = debug::lock_acquire(lock, "spinlock_t", debug::acq_preempt, subclass, at);
  lock->lock();
  debug::lock_acquired(lock, cls, "spinlock_t", debug::acq_preempt, at);
}
#else
template <spinlock_like L>
inline void spin_lock(L* lock) noexcept { lock->lock(); }
template <spinlock_like L>
inline void spin_lock_nested(L* lock, unsigned) noexcept { lock->lock(); }
#endif

/// spin_trylock() - acquire if free, without waiting; true on success (acquire ordering).
#if KPRIM_DEBUG_LOCKING
template <spinlock_like L>
[[nodiscard]] inline bool spin_trylock(L* lock,
                                       const std::source_location& at = std::source_location::current()) noexcept {
  if (!lock->try_lock()) return false;
  constexpr unsigned f = debug::acq_preempt | debug::acq_try;
  debug::lock_acquired(lock, debug::lock_acquire(lock, "spinlock_t", f, 0, at), "spinlock_t", f, at);
  return true;
}
#else
template <spinlock_like L>
[[nodiscard]] inline bool spin_trylock(L* lock) noexcept { return lock->try_lock(); }
#endif

/// spin_unlock() - release; ordering release. Requires: held by the caller (lockdep reports
/// "bad unlock balance" otherwise).
#if KPRIM_DEBUG_LOCKING
template <spinlock_like L>
inline void spin_unlock(L* lock, const std::source_location& at = std::source_location::current()) noexcept {
  debug::lock_released(lock, at);
  lock->unlock();
}
#else
template <spinlock_like L>
inline void spin_unlock(L* lock) noexcept { lock->unlock(); }
#endif

/// spin_is_locked() - relaxed snapshot; for assertions and heuristics only.
template <spinlock_like L>
[[nodiscard]] inline bool spin_is_locked(const L* lock) noexcept { return lock->is_locked(); }

/// spin_guard<L> - RAII: spin_lock() in the constructor, spin_unlock() in the destructor.
/// (std::lock_guard and std::scoped_lock also work: every kprim spinlock is Lockable.)
template <spinlock_like L>
using spin_guard = detail::scoped_guard<L>;

}  // namespace kprim

// The spin_lock_irqsave family (kprim interrupts off around the lock) lives in kprim/irq.hpp
// beside the soft interrupt mask it uses; included here so that this header offers it, as the
// kernel's <linux/spinlock.h> does. irq.hpp includes this header first: #pragma once ends the
// cycle, and everything above is declared by then.
#include <kprim/irq.hpp>
