// kprim/spinlock/qspinlock.hpp: the kernel's queued spinlock (kernel/locking/qspinlock.c) in
// one 32-bit word: FIFO-fair under contention, one cache line touched per hand-over.
// Spins, never sleeps: for critical sections that may block or run long use kprim::mutex.
#pragma once

#include <kprim/spinlock/spin_wait.hpp>
#include <kprim/lockdep.hpp>
#include <kprim/thread_slot.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace kprim {

/// qspinlock_word - the lock word, readable as a whole or by field (little-endian layout):
///
///   bits  0- 7  locked   0 or 1: the lock is held
///   bits  8-15  pending  0 or 1: one contender spins on the word itself (no queue node);
///                        under spin_policy::yield: the queue head spins, do not steal
///   bits 16-17  tail idx which of the tail thread's 4 nodes (nesting level, e.g. signals)
///   bits 18-31  tail slot thread slot + 1 of the last queued waiter; 0 = empty queue
///
/// The word is written as a (tail, pending, locked) tuple at each step of the slow path.
/// Invariants: locked and pending are each 0 or 1; while the tail is non-zero the queue head
/// owns the right to take the lock next once locked == pending == 0.
union qspinlock_word {
  std::uint32_t val = 0;
  struct {
    std::uint8_t locked;
    std::uint8_t pending;
  } b;
  struct {
    std::uint16_t locked_pending;
    std::uint16_t tail;
  } h;
};

namespace qspin {
inline constexpr std::uint32_t locked_offset = 0, locked_bits = 8;
inline constexpr std::uint32_t pending_offset = 8, pending_bits = 8;
inline constexpr std::uint32_t tail_idx_offset = 16, tail_idx_bits = 2;
inline constexpr std::uint32_t tail_slot_offset = 18, tail_slot_bits = 14;
inline constexpr std::uint32_t tail_offset = tail_idx_offset;
inline constexpr std::uint32_t locked_val = 1u << locked_offset;
inline constexpr std::uint32_t pending_val = 1u << pending_offset;
inline constexpr std::uint32_t locked_mask = ((1u << locked_bits) - 1) << locked_offset;
inline constexpr std::uint32_t pending_mask = ((1u << pending_bits) - 1) << pending_offset;
inline constexpr std::uint32_t locked_pending_mask = locked_mask | pending_mask;
inline constexpr std::uint32_t tail_mask = ~locked_pending_mask;
inline constexpr unsigned max_nodes = 1u << tail_idx_bits;  // nesting levels per thread

static_assert(std::endian::native == std::endian::little, "byte fields assume little-endian");
static_assert(tail_slot_offset + tail_slot_bits == 32 && tail_idx_offset + tail_idx_bits == tail_slot_offset);
static_assert(max_thread_slots + 1 <= (1u << tail_slot_bits), "slot + 1 must fit the tail");
static_assert(sizeof(qspinlock_word) == 4 && alignof(qspinlock_word) == 4);
static_assert(offsetof(qspinlock_word, b.pending) == pending_offset / 8);
static_assert(offsetof(qspinlock_word, h.tail) == tail_offset / 8);
}  // namespace qspin

template <spin_policy P>
[[gnu::cold, gnu::noinline]] void queued_spin_lock_slowpath(qspinlock_word& lock, std::uint32_t val) noexcept;

/// basic_qspinlock<P> - queued spinlock; P chooses the preemption remedy (spin_wait.hpp).
/// Fairness, P == spin (the kernel's native algorithm): an uncontended lock is taken by
/// whoever gets there; the second contender waits in the pending byte; from the third on,
/// contenders queue FIFO on per-thread MCS nodes. P == yield (the default, the kernel's
/// paravirt hybrid): no pending path; contenders queue FIFO, but while the queue head is not
/// actively spinning (pending clear) anyone may take a free lock, so a descheduled head or
/// successor never stalls the running threads. The head first waits politely (stealing
/// allowed, one poll per polite_gap pauses in qspinlock.cpp, so the holder runs from its own
/// cache), then sets pending, which unlock keeps, so the next free lock is the head's: one
/// holder's runs are bounded in time, which keeps throughput and fairness over a trial
/// (bench_locks locks/contended/kprim_qspinlock/threads:2: ops_per_s, fairness,
/// owner_changes_per_op; bench/measure/locks_targets.sh sets them against the peers).
/// A free lock that keeps showing pending has a descheduled head; newcomers take it anyway.
/// P == virt: unfair test-and-set, no queue.
/// Requires: at most max_thread_slots threads, at most 4 nested slow paths per thread
/// (deeper nesting spins on trylock).
template <spin_policy P>
class basic_qspinlock : public detail::annotated_spinlock<basic_qspinlock<P>> {
 public:
  basic_qspinlock() = default;

  // lock()/try_lock()/unlock() with the ThreadSanitizer annotations, and the checkers'
  // destructor, come from detail::annotated_spinlock (kprim/lockdep.hpp); raw_*() below are
  // the bare algorithm.
  basic_qspinlock(const basic_qspinlock&) = delete;
  basic_qspinlock& operator=(const basic_qspinlock&) = delete;

  /// lock() - queued_spin_lock(). Ordering: acquire. Context: spins (yields per P), never
  /// sleeps; not reentrant. Cost: one cmpxchg uncontended; the slow path is out of line.
  /// P == yield takes a free lock with a 16-bit cmpxchg of (pending, locked): it may pass
  /// queued waiters whose head is not actively spinning (the paravirt hybrid's stealing).
  void raw_lock() noexcept {
    if constexpr (P == spin_policy::yield) {
      if (likely(steal())) return;
      queued_spin_lock_slowpath<P>(w_, 0);
    } else {
      std::uint32_t val = 0;  // 0,0,0 -> 0,0,1
      if (likely(word().compare_exchange_strong(val, qspin::locked_val, std::memory_order_acquire,
                                                std::memory_order_relaxed)))
        return;
      queued_spin_lock_slowpath<P>(w_, val);
    }
  }

  /// try_lock() - queued_spin_trylock(): take the lock only if the whole word is 0 (P ==
  /// yield: if locked and pending are 0, as lock() does). Ordering: acquire on success,
  /// relaxed on failure. Context: never waits. O(1).
  [[nodiscard]] bool raw_try_lock() noexcept {
    if constexpr (P == spin_policy::yield) return steal();
    std::uint32_t val = word().load(std::memory_order_relaxed);
    if (unlikely(val != 0)) return false;
    return likely(word().compare_exchange_strong(val, qspin::locked_val, std::memory_order_acquire,
                                                 std::memory_order_relaxed));
  }

  /// unlock() - queued_spin_unlock(): clear the locked byte, never losing a waiter's tail
  /// (or, P == spin, pending) update. Requires: held by the caller. Ordering: release.
  /// The kernel stores one byte. On the AMD reference VM a store narrower than the next
  /// locked cmpxchg of the same word stalls that cmpxchg (the store cannot be forwarded to
  /// it; measured by bench_locks locks/uncontended/kprim_qspinlock against kprim_tas), so the
  /// store matches the fast path's width:
  ///   spin:  32-bit fetch_sub (pending is owned by a contender, it must survive);
  ///   yield: 16-bit store of (pending, locked) = (pending as read just before, 0): a queue
  ///          head that has waited long set pending to stop steals (fairness), and it survives
  ///          the unlock; a pending set between the load and the store is lost, which the head
  ///          tolerates (it is only a hint there) and sets again;
  ///   virt:  32-bit store of 0 (without a queue the word is only ever 0 or 1).
  void raw_unlock() noexcept {
    if constexpr (P == spin_policy::yield)
      // Relaxed load: only the pending hint, which nothing orders.
      locked_pending().store(locked_pending().load(std::memory_order_relaxed) & qspin::pending_mask,
                             std::memory_order_release);
    else if constexpr (P == spin_policy::virt)
      word().store(0, std::memory_order_release);
    else
      word().fetch_sub(qspin::locked_val, std::memory_order_release);
  }

  /// is_locked() - queued_spin_is_locked(): true while held or contended (any bit set).
  /// Ordering: relaxed; a snapshot for assertions and heuristics only.
  [[nodiscard]] bool is_locked() const noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(w_.val)).load(std::memory_order_relaxed) != 0;
  }

  /// is_contended() - queued_spin_is_contended(): a pending contender or a queue exists.
  [[nodiscard]] bool is_contended() const noexcept {
    return (std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(w_.val)).load(std::memory_order_relaxed) &
            ~qspin::locked_mask) != 0;
  }

 private:
  std::atomic_ref<std::uint32_t> word() noexcept { return std::atomic_ref<std::uint32_t>(w_.val); }
  std::atomic_ref<std::uint16_t> locked_pending() noexcept { return std::atomic_ref<std::uint16_t>(w_.h.locked_pending); }
  /// steal() - *,0,0 -> *,0,1 (P == yield only).
  bool steal() noexcept {
    std::uint16_t free = 0;
    return locked_pending().compare_exchange_strong(free, qspin::locked_val, std::memory_order_acquire,
                                                    std::memory_order_relaxed);
  }
  qspinlock_word w_;
};

/// The default queued spinlock: spin, then yield when a hand-over stalls (see spinlock.hpp
/// for the measurement behind the choice).
using qspinlock = basic_qspinlock<spin_policy::yield>;
static_assert(sizeof(qspinlock) == 4 && alignof(qspinlock) == 4);

}  // namespace kprim
