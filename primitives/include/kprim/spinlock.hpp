// kprim/spinlock.hpp: the spinlock family and the kernel's spin_lock() API over it.
// spinlock_t is the queued spinlock with spin-then-yield: the yield keeps oversubscribed runs
// from collapsing (bench_locks, contended at 2x and 4x nproc, kprim_qspinlock vs
// kprim_qspinlock_spin) at no cost while threads <= cores, where nobody waits long enough to
// yield. Critical sections that may block belong under kprim::mutex (kprim/mutex.hpp) instead.
#pragma once

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
template <spinlock_like L>
inline void spin_lock_init(L* lock) noexcept {
  std::destroy_at(lock);
  std::construct_at(lock);
}

/// spin_lock() - acquire; ordering acquire; spins (yields per the lock's policy), never sleeps.
template <spinlock_like L>
inline void spin_lock(L* lock) noexcept { lock->lock(); }

/// spin_trylock() - acquire if free, without waiting; true on success (acquire ordering).
template <spinlock_like L>
[[nodiscard]] inline bool spin_trylock(L* lock) noexcept { return lock->try_lock(); }

/// spin_unlock() - release; ordering release. Requires: held by the caller.
template <spinlock_like L>
inline void spin_unlock(L* lock) noexcept { lock->unlock(); }

/// spin_is_locked() - relaxed snapshot; for assertions and heuristics only.
template <spinlock_like L>
[[nodiscard]] inline bool spin_is_locked(const L* lock) noexcept { return lock->is_locked(); }

/// spin_guard<L> - RAII: spin_lock() in the constructor, spin_unlock() in the destructor.
/// (std::lock_guard and std::scoped_lock also work: every kprim spinlock is Lockable.)
template <spinlock_like L>
class [[nodiscard]] spin_guard {
 public:
  explicit spin_guard(L& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~spin_guard() { lock_.unlock(); }
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;

 private:
  L& lock_;
};

}  // namespace kprim
