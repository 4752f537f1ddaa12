// kprim/rwsem.hpp: the kernel's reader-writer semaphore (kernel/locking/rwsem.c): readers in
// parallel, writers exclusive, optimistic spinning for writers, sleeping waiters on futexes in
// one FIFO queue, and hand-off so neither side starves. Readers that never block and whose
// sections are short do better under kprim::qrwlock (kprim/rwlock.hpp) or a seqlock.
// Test: test_rwlocks (primitives/tests/rwsem_test.cpp); benchmark: bench_rwlocks
// `rwlocks/mixed` (kprim_rwsem).
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>
#include <kprim/lockdep.hpp>
#include <kprim/detail/wait_list.hpp>
#include <kprim/osq_lock.hpp>
#include <kprim/spinlock/qspinlock.hpp>
#include <kprim/task.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace kprim {

/// rw_semaphore - count word layout (64 bits):
///   bit  0      WRITER_LOCKED  a writer holds the semaphore
///   bit  1      WAITERS        the wait list is not empty
///   bit  2      HANDOFF        the first waiter (waited too long) gets the lock next
///   bits 3-7    reserved
///   bits 8-62   reader count   readers holding it, plus readers briefly adding their bias
///   bit  63     READ_FAIL      reader count overflow guard: readers take the slow path
/// owner word: the writer's task_struct* (or the last reader's) | READER_OWNED (bit 0) |
/// NONSPINNABLE (bit 1: readers held it too long, writers stop spinning on it).
/// Invariants: WRITER_LOCKED excludes a non-zero settled reader count; WAITERS is set
/// exactly while the wait list is non-empty (changed under wait_lock).
/// Fairness: queued waiters are served FIFO, except that waking a reader wakes every queued
/// reader; a waiter that waited longer than rwsem_wait_timeout sets HANDOFF and stops lock
/// stealing. Context: down_* may spin (bounded) and sleep; up_* never sleep.
class rw_semaphore {
 public:
  static constexpr std::int64_t writer_locked = 1l << 0;
  static constexpr std::int64_t flag_waiters = 1l << 1;
  static constexpr std::int64_t flag_handoff = 1l << 2;
  static constexpr std::int64_t flag_readfail = static_cast<std::int64_t>(1ull << 63);
  static constexpr unsigned reader_shift = 8;
  static constexpr std::int64_t reader_bias = 1l << reader_shift;
  static constexpr std::int64_t reader_mask = ~(reader_bias - 1);
  static constexpr std::int64_t writer_mask = writer_locked;
  static constexpr std::int64_t lock_mask = writer_mask | reader_mask;
  static constexpr std::int64_t read_failed_mask = writer_mask | flag_waiters | flag_handoff | flag_readfail;
  static constexpr std::uintptr_t owner_reader_owned = 1u << 0;
  static constexpr std::uintptr_t owner_nonspinnable = 1u << 1;
  static constexpr std::uintptr_t owner_flags_mask = owner_reader_owned | owner_nonspinnable;

  rw_semaphore() = default;

  /// wrapping_add() - a + b modulo 2^64. The reader count is meant to carry into READ_FAIL
  /// (bit 63) on overflow, as the kernel's does (it builds with -fno-strict-overflow); the
  /// atomics wrap by definition, but recomputing the new value from fetch_add's result in
  /// int64_t would be signed overflow (undefined; UBSan caught it in rwsem_test.cpp's
  /// READ_FAIL test). Same instruction as a plain add.
  [[nodiscard]] static constexpr std::int64_t wrapping_add(std::int64_t a, std::int64_t b) noexcept {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
  }

#if KPRIM_LOCK_CHECKERS
  ~rw_semaphore() { lock_checkers_destroy(this); }  // lockdep forgets the address, TSan the mutex
#endif
  // The members with the ThreadSanitizer annotations (kprim/lockdep.hpp; nothing without
  // TSan); raw_*() below are the bare algorithm.
  void down_read() noexcept {
    tsan::pre_lock(this, tsan::read);
    raw_down_read();
    tsan::post_lock(this, tsan::read);
  }
  [[nodiscard]] bool down_read_trylock() noexcept {
    tsan::pre_lock(this, tsan::read | tsan::trylock);
    const bool ok = raw_down_read_trylock();
    tsan::post_lock(this, tsan::try_result(ok, tsan::read));
    return ok;
  }
  void up_read() noexcept {
    tsan::pre_unlock(this, tsan::read);
    raw_up_read();
    tsan::post_unlock(this, tsan::read);
  }
  void down_write() noexcept {
    tsan::pre_lock(this);
    raw_down_write();
    tsan::post_lock(this);
  }
  [[nodiscard]] bool down_write_trylock() noexcept {
    tsan::pre_lock(this, tsan::trylock);
    const bool ok = raw_down_write_trylock();
    tsan::post_lock(this, tsan::try_result(ok));
    return ok;
  }
  void up_write() noexcept {
    tsan::pre_unlock(this);
    raw_up_write();
    tsan::post_unlock(this);
  }
  rw_semaphore(const rw_semaphore&) = delete;
  rw_semaphore& operator=(const rw_semaphore&) = delete;

  /// down_read() - take a read lock. Ordering: acquire. Context: may sleep.
  /// Cost: one fetch_add and one owner store uncontended.
  void raw_down_read() noexcept {
    might_sleep();  // kprim/context.hpp: nothing unless KPRIM_DEBUG_LOCKING
    const std::int64_t c = wrapping_add(count_.fetch_add(reader_bias, std::memory_order_acquire), reader_bias);
    if (likely(!(c & read_failed_mask))) {
      set_reader_owned();
      return;
    }
    down_read_slowpath(c);
  }

  /// down_read_trylock() - read lock unless a writer holds or waits for it. Acquire on success.
  [[nodiscard]] bool raw_down_read_trylock() noexcept {
    std::int64_t c = count_.load(std::memory_order_relaxed);
    while (!(c & read_failed_mask)) {
      if (count_.compare_exchange_weak(c, c + reader_bias, std::memory_order_acquire, std::memory_order_relaxed)) {
        set_reader_owned();
        return true;
      }
    }
    return false;
  }

  /// up_read() - drop a read lock; the last reader out wakes waiters. Ordering: release.
  void raw_up_read() noexcept {
    const std::int64_t c = wrapping_add(count_.fetch_sub(reader_bias, std::memory_order_release), -reader_bias);
    if (unlikely((c & (lock_mask | flag_waiters)) == flag_waiters)) up_read_wake();
  }

  /// down_write() - take the write lock. Ordering: acquire. Context: may spin, may sleep.
  void raw_down_write() noexcept {
    might_sleep();
    std::int64_t c = 0;
    if (likely(count_.compare_exchange_strong(c, writer_locked, std::memory_order_acquire, std::memory_order_relaxed))) {
      owner_.store(reinterpret_cast<std::uintptr_t>(current()), std::memory_order_relaxed);
      return;
    }
    down_write_slowpath();
  }

  /// down_write_trylock() - write lock if nobody holds it (waiters may exist). Acquire on success.
  [[nodiscard]] bool raw_down_write_trylock() noexcept {
    std::int64_t c = count_.load(std::memory_order_relaxed);
    while (!(c & lock_mask)) {
      if (count_.compare_exchange_weak(c, c | writer_locked, std::memory_order_acquire, std::memory_order_relaxed)) {
        owner_.store(reinterpret_cast<std::uintptr_t>(current()), std::memory_order_relaxed);
        return true;
      }
    }
    return false;
  }

  /// up_write() - drop the write lock; wakes waiters if any. Ordering: release.
  void raw_up_write() noexcept {
    owner_.store(0, std::memory_order_relaxed);
    const std::int64_t c = count_.fetch_sub(writer_locked, std::memory_order_release);
    if (unlikely(c & flag_waiters)) wake();
  }

  /// rwsem_is_locked(): relaxed snapshot of "held by anyone".
  [[nodiscard]] bool is_locked() const noexcept { return (count_.load(std::memory_order_relaxed) & lock_mask) != 0; }
  /// count_word() - relaxed snapshot of the count word, for tests and debugging.
  [[nodiscard]] std::int64_t count_word() const noexcept { return count_.load(std::memory_order_relaxed); }

  // std::shared_mutex-style adapters (Lockable and SharedLockable).
  void lock() noexcept { down_write(); }
  [[nodiscard]] bool try_lock() noexcept { return down_write_trylock(); }
  void unlock() noexcept { up_write(); }
  void lock_shared() noexcept { down_read(); }
  [[nodiscard]] bool try_lock_shared() noexcept { return down_read_trylock(); }
  void unlock_shared() noexcept { up_read(); }

 private:
  friend struct rwsem_slowpath;
  // primitives/tests/rwsem_test.cpp: reads the owner word and plants count words no test
  // can reach by locking (2^55 readers for READ_FAIL); defined there only.
  friend struct rwsem_test_access;
  /// rwsem_set_reader_owned(): owner = current | READER_OWNED, keeping NONSPINNABLE.
  void set_reader_owned() noexcept {
    const std::uintptr_t keep = owner_.load(std::memory_order_relaxed) & owner_nonspinnable;
    owner_.store(reinterpret_cast<std::uintptr_t>(current()) | owner_reader_owned | keep, std::memory_order_relaxed);
  }
  [[gnu::cold, gnu::noinline]] void down_read_slowpath(std::int64_t count) noexcept;
  [[gnu::cold, gnu::noinline]] void down_write_slowpath() noexcept;
  [[gnu::cold, gnu::noinline]] void up_read_wake() noexcept;
  [[gnu::cold, gnu::noinline]] void wake() noexcept;

  std::atomic<std::int64_t> count_{0};
  std::atomic<std::uintptr_t> owner_{0};
  qspinlock wait_lock_;
  optimistic_spin_queue osq_;
  detail::wait_node wait_list_;
};
static_assert(sizeof(std::int64_t) == 8 && std::atomic<std::int64_t>::is_always_lock_free);
static_assert(alignof(task_struct) > rw_semaphore::owner_flags_mask, "owner flags live below the task pointer");

// The kernel's verbs. With KPRIM_DEBUG_LOCKING they run lockdep (kprim/lockdep.hpp):
// init_rwsem()'s call site is the class; readers are non-recursive (a second down_read() of
// the class reports, as in the kernel: a queued writer between them deadlocks).
#if KPRIM_DEBUG_LOCKING
#define KPRIM_AT_ const std::source_location& at = std::source_location::current()
inline void init_rwsem(rw_semaphore* s, KPRIM_AT_) noexcept {
  std::destroy_at(s);
  std::construct_at(s);
  debug::init_at_site(s, "rw_semaphore", at);
}
inline void down_read_nested(rw_semaphore* s, unsigned subclass, KPRIM_AT_) noexcept {
  const unsigned cls = debug::lock_acquire(s, "rw_semaphore", debug::acq_read, subclass, at);
  s->down_read();
  debug::lock_acquired(s, cls, "rw_semaphore", debug::acq_read, at);
}
inline void down_read(rw_semaphore* s, KPRIM_AT_) noexcept { down_read_nested(s, 0, at); }
[[nodiscard]] inline bool down_read_trylock(rw_semaphore* s, KPRIM_AT_) noexcept {
  if (!s->down_read_trylock()) return false;
  constexpr unsigned f = debug::acq_read | debug::acq_try;
  debug::lock_acquired(s, debug::lock_acquire(s, "rw_semaphore", f, 0, at), "rw_semaphore", f, at);
  return true;
}
inline void up_read(rw_semaphore* s, KPRIM_AT_) noexcept {
  debug::lock_released(s, at);
  s->up_read();
}
inline void down_write_nested(rw_semaphore* s, unsigned subclass, KPRIM_AT_) noexcept {
  const unsigned cls = debug::lock_acquire(s, "rw_semaphore", 0, subclass, at);
  s->down_write();
  debug::lock_acquired(s, cls, "rw_semaphore", 0, at);
}
inline void down_write(rw_semaphore* s, KPRIM_AT_) noexcept { down_write_nested(s, 0, at); }
[[nodiscard]] inline bool down_write_trylock(rw_semaphore* s, KPRIM_AT_) noexcept {
  if (!s->down_write_trylock()) return false;
  debug::lock_acquired(s, debug::lock_acquire(s, "rw_semaphore", debug::acq_try, 0, at), "rw_semaphore",
                       debug::acq_try, at);
  return true;
}
inline void up_write(rw_semaphore* s, KPRIM_AT_) noexcept {
  debug::lock_released(s, at);
  s->up_write();
}
#undef KPRIM_AT_
#else
inline void init_rwsem(rw_semaphore* s) noexcept {
  std::destroy_at(s);
  std::construct_at(s);
}
inline void down_read(rw_semaphore* s) noexcept { s->down_read(); }
inline void down_read_nested(rw_semaphore* s, unsigned) noexcept { s->down_read(); }
[[nodiscard]] inline bool down_read_trylock(rw_semaphore* s) noexcept { return s->down_read_trylock(); }
inline void up_read(rw_semaphore* s) noexcept { s->up_read(); }
inline void down_write(rw_semaphore* s) noexcept { s->down_write(); }
inline void down_write_nested(rw_semaphore* s, unsigned) noexcept { s->down_write(); }
[[nodiscard]] inline bool down_write_trylock(rw_semaphore* s) noexcept { return s->down_write_trylock(); }
inline void up_write(rw_semaphore* s) noexcept { s->up_write(); }
#endif
[[nodiscard]] inline bool rwsem_is_locked(const rw_semaphore* s) noexcept { return s->is_locked(); }

}  // namespace kprim
