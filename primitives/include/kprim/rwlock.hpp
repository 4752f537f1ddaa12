// kprim/rwlock.hpp: rwlock_t as the kernel's queued reader-writer lock
// (kernel/locking/qrwlock.c): readers and writer in one 32-bit word, contenders queued fairly
// on a qspinlock. Spins, never sleeps: for sections that may block use kprim::rw_semaphore;
// for read-mostly data that readers may re-read, a seqlock (kprim/seqlock.hpp) costs readers
// less (bench_rwlocks `rwlocks/mixed` measures both: kprim_qrwlock, kprim_seqlock).
// Test: test_rwlocks (primitives/tests/rwlock_test.cpp); benchmark: bench_rwlocks.
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/lockdep.hpp>
#include <kprim/spinlock/qspinlock.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace kprim {

/// qrwlock - lock word layout:
///   bits 0-7   wlocked  0xff while a writer holds the lock
///   bit  8     WAITING  a writer waits (at the head of the queue) for readers to drain
///   bits 9-31  readers  count of readers holding, or briefly trying, the lock
/// wait_lock queues contenders that found the lock busy (FIFO, so writers are not starved
/// by a stream of readers once queued). Invariant: wlocked != 0 implies no settled readers.
/// Fairness: contended readers and writers are served in arrival order through wait_lock;
/// an uncontended reader may join other readers while no writer holds or waits.
class qrwlock {
 public:
  static constexpr std::uint32_t qw_locked = 0x0ff;
  static constexpr std::uint32_t qw_waiting = 0x100;
  static constexpr std::uint32_t qw_wmask = 0x1ff;
  static constexpr std::uint32_t qr_shift = 9;
  static constexpr std::uint32_t qr_bias = 1u << qr_shift;

  qrwlock() = default;

#if KPRIM_LOCK_CHECKERS
  ~qrwlock() { lock_checkers_destroy(this); }  // lockdep forgets the address, TSan the mutex
#endif
  // The members with the ThreadSanitizer annotations (kprim/lockdep.hpp; nothing without
  // TSan); raw_*() below are the bare algorithm.
  void read_lock() noexcept {
    tsan::pre_lock(this, tsan::read);
    raw_read_lock();
    tsan::post_lock(this, tsan::read);
  }
  [[nodiscard]] bool read_trylock() noexcept {
    tsan::pre_lock(this, tsan::read | tsan::trylock);
    const bool ok = raw_read_trylock();
    tsan::post_lock(this, tsan::try_result(ok, tsan::read));
    return ok;
  }
  void read_unlock() noexcept {
    tsan::pre_unlock(this, tsan::read);
    raw_read_unlock();
    tsan::post_unlock(this, tsan::read);
  }
  void write_lock() noexcept {
    tsan::pre_lock(this);
    raw_write_lock();
    tsan::post_lock(this);
  }
  [[nodiscard]] bool write_trylock() noexcept {
    tsan::pre_lock(this, tsan::trylock);
    const bool ok = raw_write_trylock();
    tsan::post_lock(this, tsan::try_result(ok));
    return ok;
  }
  void write_unlock() noexcept {
    tsan::pre_unlock(this);
    raw_write_unlock();
    tsan::post_unlock(this);
  }
  qrwlock(const qrwlock&) = delete;
  qrwlock& operator=(const qrwlock&) = delete;

  /// read_lock() - queued_read_lock(). Ordering: acquire. Context: spins, never sleeps.
  void raw_read_lock() noexcept {
    const std::uint32_t c = cnts().fetch_add(qr_bias, std::memory_order_acquire) + qr_bias;
    if (likely(!(c & qw_wmask))) return;
    read_lock_slowpath();
  }

  /// read_trylock() - read lock unless a writer holds or waits. Acquire on success.
  [[nodiscard]] bool raw_read_trylock() noexcept {
    std::uint32_t c = cnts().load(std::memory_order_relaxed);
    if (likely(!(c & qw_wmask))) {
      c = cnts().fetch_add(qr_bias, std::memory_order_acquire) + qr_bias;
      if (likely(!(c & qw_wmask))) return true;
      cnts().fetch_sub(qr_bias, std::memory_order_relaxed);
    }
    return false;
  }

  /// read_unlock() - queued_read_unlock(). Ordering: release.
  void raw_read_unlock() noexcept { cnts().fetch_sub(qr_bias, std::memory_order_release); }

  /// write_lock() - queued_write_lock(). Ordering: acquire. Context: spins, never sleeps.
  void raw_write_lock() noexcept {
    std::uint32_t c = 0;
    if (likely(cnts().compare_exchange_strong(c, qw_locked, std::memory_order_acquire, std::memory_order_relaxed)))
      return;
    write_lock_slowpath();
  }

  /// write_trylock() - write lock only if the word is 0. Acquire on success.
  [[nodiscard]] bool raw_write_trylock() noexcept {
    std::uint32_t c = cnts().load(std::memory_order_relaxed);
    if (unlikely(c)) return false;
    return likely(cnts().compare_exchange_strong(c, qw_locked, std::memory_order_acquire, std::memory_order_relaxed));
  }

  /// write_unlock() - queued_write_unlock(): clear the wlocked byte only (a writer may have
  /// set WAITING meanwhile). Ordering: release. A 32-bit fetch_sub rather than the kernel's
  /// byte store, as in qspinlock::unlock() (narrow store + wide locked op stalls on AMD).
  void raw_write_unlock() noexcept { cnts().fetch_sub(qw_locked, std::memory_order_release); }

  /// is_locked() - relaxed snapshot: readers, a writer, or a waiting writer.
  [[nodiscard]] bool is_locked() const noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(cnts_)).load(std::memory_order_relaxed) != 0;
  }

  // std::shared_mutex-style adapters (Lockable and SharedLockable).
  void lock() noexcept { write_lock(); }
  [[nodiscard]] bool try_lock() noexcept { return write_trylock(); }
  void unlock() noexcept { write_unlock(); }
  void lock_shared() noexcept { read_lock(); }
  [[nodiscard]] bool try_lock_shared() noexcept { return read_trylock(); }
  void unlock_shared() noexcept { read_unlock(); }

 private:
  static_assert(qw_locked == 0xff && (qw_locked | qw_waiting) == qw_wmask && qr_bias > qw_wmask,
                "wlocked is the low byte, WAITING the next bit, readers above");

  friend struct qrwlock_slowpath;
  std::atomic_ref<std::uint32_t> cnts() noexcept { return std::atomic_ref<std::uint32_t>(cnts_); }
  [[gnu::cold, gnu::noinline]] void read_lock_slowpath() noexcept;
  [[gnu::cold, gnu::noinline]] void write_lock_slowpath() noexcept;

  alignas(4) std::uint32_t cnts_ = 0;
  qspinlock wait_lock_;
};
static_assert(sizeof(qrwlock) == 8);

using rwlock_t = qrwlock;

// The kernel's verbs. With KPRIM_DEBUG_LOCKING they run lockdep (kprim/lockdep.hpp) and count
// in the preempt count like spin_lock(); readers are recursive (the kernel's read_lock()).
#if KPRIM_DEBUG_LOCKING
#define KPRIM_AT_ const std::source_location& at = std::source_location::current()
inline void rwlock_init(rwlock_t* l, KPRIM_AT_) noexcept {
  std::destroy_at(l);
  std::construct_at(l);
  debug::init_at_site(l, "rwlock_t", at);
}
inline void read_lock(rwlock_t* l, KPRIM_AT_) noexcept {
  constexpr unsigned f = debug::acq_read | debug::acq_recursive | debug::acq_preempt;
  const unsigned cls = debug::lock_acquire(l, "rwlock_t", f, 0, at);
  l->read_lock();
  debug::lock_acquired(l, cls, "rwlock_t", f, at);
}
[[nodiscard]] inline bool read_trylock(rwlock_t* l, KPRIM_AT_) noexcept {
  if (!l->read_trylock()) return false;
  constexpr unsigned f = debug::acq_read | debug::acq_recursive | debug::acq_preempt | debug::acq_try;
  debug::lock_acquired(l, debug::lock_acquire(l, "rwlock_t", f, 0, at), "rwlock_t", f, at);
  return true;
}
inline void read_unlock(rwlock_t* l, KPRIM_AT_) noexcept {
  debug::lock_released(l, at);
  l->read_unlock();
}
inline void write_lock(rwlock_t* l, KPRIM_AT_) noexcept {
  const unsigned cls = debug::lock_acquire(l, "rwlock_t", debug::acq_preempt, 0, at);
  l->write_lock();
  debug::lock_acquired(l, cls, "rwlock_t", debug::acq_preempt, at);
}
[[nodiscard]] inline bool write_trylock(rwlock_t* l, KPRIM_AT_) noexcept {
  if (!l->write_trylock()) return false;
  constexpr unsigned f = debug::acq_preempt | debug::acq_try;
  debug::lock_acquired(l, debug::lock_acquire(l, "rwlock_t", f, 0, at), "rwlock_t", f, at);
  return true;
}
inline void write_unlock(rwlock_t* l, KPRIM_AT_) noexcept {
  debug::lock_released(l, at);
  l->write_unlock();
}
#undef KPRIM_AT_
#else
inline void rwlock_init(rwlock_t* l) noexcept {
  std::destroy_at(l);
  std::construct_at(l);
}
inline void read_lock(rwlock_t* l) noexcept { l->read_lock(); }
[[nodiscard]] inline bool read_trylock(rwlock_t* l) noexcept { return l->read_trylock(); }
inline void read_unlock(rwlock_t* l) noexcept { l->read_unlock(); }
inline void write_lock(rwlock_t* l) noexcept { l->write_lock(); }
[[nodiscard]] inline bool write_trylock(rwlock_t* l) noexcept { return l->write_trylock(); }
inline void write_unlock(rwlock_t* l) noexcept { l->write_unlock(); }
#endif

}  // namespace kprim
