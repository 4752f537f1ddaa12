// kprim/seqlock.hpp: the kernel's sequence counters and sequential locks
// (include/linux/seqlock.h): writers never wait for readers; readers retry if a writer ran.
// For small, frequently read, rarely written data that can be copied out. Not for data
// holding pointers readers follow (use RCU), nor when readers must not spin on writers.
// Test: test_rwlocks (primitives/tests/seqlock_test.cpp); benchmark: bench_rwlocks
// `rwlocks/mixed` (kprim_seqlock).
//
// Reading the protected data: readers run concurrently with the writer by design, so in C++
// every protected field must be read (and written) through atomics, e.g.
// std::atomic_ref<T>(field).load(std::memory_order_relaxed) - free on x86-64 for word-sized
// fields and what keeps the program data-race free (and ThreadSanitizer quiet).
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/spinlock.hpp>

#include <atomic>
#include <cstdint>

namespace kprim {

/// seqcount_t - the sequence: even while no write is in progress, odd during one.
/// Invariant: writers are serialised by the caller (seqlock_t uses a spinlock).
struct seqcount_t {
  std::atomic<std::uint32_t> sequence{0};
};
static_assert(sizeof(seqcount_t) == 4);

/// read_seqcount_begin() - wait out a write in progress, return the even sequence.
/// Ordering: acquire (later data reads are not hoisted above it). Context: spins while a
/// writer is inside (bounded by the writer's section; yields if it is descheduled).
[[nodiscard]] inline std::uint32_t read_seqcount_begin(const seqcount_t* s) noexcept {
  std::uint32_t seq = s->sequence.load(std::memory_order_acquire);
  if (likely(!(seq & 1))) return seq;
  spin_wait<spin_policy::yield> w;
  do {
    w.relax();
    seq = s->sequence.load(std::memory_order_acquire);
  } while (seq & 1);
  return seq;
}

/// read_seqcount_retry() - true if a writer ran since `start`: discard what was read.
/// Ordering: an acquire fence orders the data reads before the re-read of the sequence.
/// (ThreadSanitizer does not model fences: there an acq_rel read-modify-write of the
/// sequence that adds 0 orders the data reads instead, at the cost of a shared write.)
[[nodiscard]] inline bool read_seqcount_retry(const seqcount_t* s, std::uint32_t start) noexcept {
#if defined(__SANITIZE_THREAD__)
  return unlikely(const_cast<seqcount_t*>(s)->sequence.fetch_add(0, std::memory_order_acq_rel) != start);
#else
  std::atomic_thread_fence(std::memory_order_acquire);
  return unlikely(s->sequence.load(std::memory_order_relaxed) != start);
#endif
}

/// write_seqcount_begin() - make the sequence odd. Requires: writers serialised.
/// Ordering: the release fence keeps later data writes after the odd sequence.
inline void write_seqcount_begin(seqcount_t* s) noexcept {
#if defined(__SANITIZE_THREAD__)
  s->sequence.fetch_add(1, std::memory_order_acq_rel);  // no fences under ThreadSanitizer
#else
  s->sequence.store(s->sequence.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

/// write_seqcount_end() - make the sequence even again. Ordering: release (the data writes
/// are visible before the new even sequence).
inline void write_seqcount_end(seqcount_t* s) noexcept {
  s->sequence.store(s->sequence.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

/// seqlock_t - a seqcount_t plus the spinlock that serialises its writers.
struct seqlock_t {
  seqcount_t seqcount;
  spinlock_t lock;
};

inline void seqlock_init(seqlock_t* sl) noexcept {
  sl->seqcount.sequence.store(0, std::memory_order_relaxed);
  spin_lock_init(&sl->lock);
}

/// read_seqbegin()/read_seqretry() - the lockless read side:
///   do { seq = read_seqbegin(&sl); copy the data out; } while (read_seqretry(&sl, seq));
/// Context: never takes the lock; spins only while a writer is inside.
[[nodiscard]] inline std::uint32_t read_seqbegin(const seqlock_t* sl) noexcept { return read_seqcount_begin(&sl->seqcount); }
[[nodiscard]] inline bool read_seqretry(const seqlock_t* sl, std::uint32_t start) noexcept {
  return read_seqcount_retry(&sl->seqcount, start);
}

/// write_seqlock()/write_sequnlock() - take the writer lock and open/close the write section.
/// Context: spins on the writer lock (spinlock_t), never sleeps. Writers are FIFO-fair
/// among themselves (qspinlock) and never wait for readers.
inline void write_seqlock(seqlock_t* sl) noexcept {
  spin_lock(&sl->lock);
  write_seqcount_begin(&sl->seqcount);
}
inline void write_sequnlock(seqlock_t* sl) noexcept {
  write_seqcount_end(&sl->seqcount);
  spin_unlock(&sl->lock);
}

/// read_seqlock_excl()/read_sequnlock_excl() - a reader that must not retry takes the
/// writer lock instead (excludes writers and other locking readers, not lockless readers).
inline void read_seqlock_excl(seqlock_t* sl) noexcept { spin_lock(&sl->lock); }
inline void read_sequnlock_excl(seqlock_t* sl) noexcept { spin_unlock(&sl->lock); }

}  // namespace kprim
