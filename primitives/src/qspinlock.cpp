// The queued spinlock's slow path (kernel/locking/qspinlock.c, rewritten for user space with
// thread slots in place of CPU numbers and kprim::spin_policy in place of paravirt hooks).
//
// The lock word as (tail, pending, locked) - tail n: some thread's node, * any, x/y 0 or 1 -
// and every transition this file and qspinlock.hpp make. Left: who acquires; right: unlock.
//
//   spin (the kernel's algorithm)             yield (default: paravirt hybrid)
//   fast:     0,0,0 -> 0,0,1                  fast/steal:  *,0,0 -> *,0,1   (16-bit cmpxchg)
//   pending:  0,0,1 -> 0,1,1   fetch_or       queue:       *,x,y -> n,x,y   (tail xchg)
//             0,1,1 -> 0,1,0   (unlock)       head, polite: n,0,0 -> n,0,1  (cmpxchg, one poll
//             0,1,0 -> 0,0,1   16-bit store                                  per polite_gap pauses)
//   queue:    *,x,y -> n,x,y   tail xchg      head, then:  n,x,y -> n,1,y   (pending: no steals;
//                                                          set again if an unlock or newcomer cleared it)
//   head:     n,x,y -> n,0,0   wait                        n,1,0 -> n,0,1   (cmpxchg, bounded;
//   claim:    n,0,0 -> 0,0,1   cmpxchg (we are the tail: clear it)       then pending off, yield)
//             m,0,0 -> m,0,1   byte store (others queued: pass the head role to our next)
//                                             stale pending: n,1,0 -> n,0,1 by a newcomer
//   unlock:   *,*,1 -> *,*,0   fetch_sub      unlock:      *,x,1 -> *,x,0   (16-bit store)
//   virt:     0,0,0 -> 0,0,1 test-and-set loop, no queue; unlock 0,0,1 -> 0,0,0 (32-bit store)
//
// Ordering, in one place: a lock is taken by an acquire operation that reads the releasing
// store or RMW of the previous holder's unlock (release), directly or through the MCS hand-off
// (node->locked, release/acquire). Everything else on the word is relaxed, each for a reason
// given where it happens: a value read only to decide or to seed a cmpxchg that re-reads it, a
// hint (pending under the yield policy), or a store made by the one thread allowed to make it
// after it has already acquired.
#include <kprim/spinlock/qspinlock.hpp>

#include <kprim/cache.hpp>

namespace kprim {

namespace {

/// qnode - one MCS queue node. Each thread slot owns max_nodes of them (one per nesting level)
/// in a static table, so a tail decodes to a node that outlives any thread that used it.
struct qnode {
  std::atomic<qnode*> next;
  std::atomic<std::uint32_t> locked;  // set to 1 by the predecessor: we are the queue head
  std::uint32_t count;                // nesting depth; only in node 0, only its thread touches it
};

struct alignas(cacheline_size) qnode_block {
  qnode nodes[qspin::max_nodes];
};
static_assert(sizeof(qnode_block) == cacheline_size, "a thread's nodes share one line");

qnode_block qnodes[max_thread_slots];

constexpr std::uint32_t pending_loops = 1;  // _Q_PENDING_LOOPS on x86

/// The yield policy's queue head (head_wait_and_lock()): pauses of its polite phase in all,
/// the gap between two of its polls, and how many polls a newcomer sees a free lock with
/// pending set before it concludes the head is not running (hybrid_unfair_trylock()).
/// The gap is what sets spinlock_t's throughput at 2 threads (bench_locks
/// locks/contended/kprim_qspinlock/threads:2, bench/measure/locks_targets.sh): every poll pulls
/// the line from the running holder, and a poll that finds the lock free between the holder's
/// unlock and its next lock takes it (a hand-over, the line and the guarded data move). Polls
/// that start at 1 pause and back off to 64 end the holder's run within a few hundred
/// nanoseconds; a fixed gap of 128 pauses (a few microseconds where `pause` is slow, as on the
/// reference VM) gives runs of hundreds of operations from the holder's own cache. The price:
/// a lock released for good is noticed up to one gap late (locks/handover/kprim_qspinlock:
/// handover_p50_ns).
constexpr unsigned polite_pauses = 2048, polite_gap = 128, pending_stale_polls = 8;

inline std::uint32_t encode_tail(unsigned slot, unsigned idx) noexcept {
  return ((slot + 1) << qspin::tail_slot_offset) | (idx << qspin::tail_idx_offset);
}

inline qnode* decode_tail(std::uint32_t tail) noexcept {
  const unsigned slot = (tail >> qspin::tail_slot_offset) - 1;
  const unsigned idx = (tail >> qspin::tail_idx_offset) & (qspin::max_nodes - 1);
  return &qnodes[slot].nodes[idx];
}

inline std::atomic_ref<std::uint32_t> val_of(qspinlock_word& l) noexcept { return std::atomic_ref<std::uint32_t>(l.val); }

/// try_lock on the whole word: 0,0,0 -> 0,0,1. The relaxed load only filters (a held lock
/// is not worth a cmpxchg); the cmpxchg re-reads the word and acquires.
inline bool whole_trylock(qspinlock_word& l) noexcept {
  std::uint32_t v = val_of(l).load(std::memory_order_relaxed);
  return v == 0 && val_of(l).compare_exchange_strong(v, qspin::locked_val, std::memory_order_acquire,
                                                     std::memory_order_relaxed);
}

/// Wait until pred(word) holds; returns the word that satisfied it. The kernel's
/// atomic_cond_read_relaxed(): under the spin policy smp_cond_load_relaxed() (WFE on arm64).
/// Relaxed is enough: the value only decides the next step, and every step that takes the lock
/// after it is an acquire RMW or acquire load of its own.
template <spin_policy P, class Pred>
inline std::uint32_t cond_read_relaxed(qspinlock_word& l, Pred pred) noexcept {
  if constexpr (P == spin_policy::spin) {
    return smp_cond_load_relaxed(&l.val, pred);
  } else {
    spin_wait<P> w;
    for (;;) {
      const std::uint32_t v = val_of(l).load(std::memory_order_relaxed);
      if (pred(v)) return v;
      w.relax();
    }
  }
}

/// Unfair trylock of the paravirt hybrid (pv_hybrid_queued_unfair_trylock()): while waiters
/// are queued but the head is not actively spinning (pending clear), a newcomer may steal a
/// free lock: *,0,0 -> *,0,1. Returns false as soon as there is no queue or the head spins.
/// This is what keeps a descheduled queue head from stalling everyone in user space.
/// A head that set pending takes a free lock within one poll (head_wait_and_lock()); a free lock
/// that still shows pending after pending_stale_polls polls has a head that is not running
/// (descheduled after it set pending; the unlock keeps pending), and a newcomer takes it
/// anyway: *,1,0 -> *,0,1. So pending never lets a descheduled head stall the running threads.
bool hybrid_unfair_trylock(qspinlock_word& lock) noexcept {
  auto locked_pending = std::atomic_ref<std::uint16_t>(lock.h.locked_pending);
  spin_wait<spin_policy::yield> w;
  unsigned free_with_pending = 0;
  for (;;) {
    // Relaxed: a filter; the cmpxchg below acquires when it takes the lock.
    const std::uint32_t v = val_of(lock).load(std::memory_order_relaxed);
    std::uint16_t expect = static_cast<std::uint16_t>(v & qspin::pending_mask);
    if (!(v & qspin::locked_pending_mask) || (!(v & qspin::locked_mask) && ++free_with_pending > pending_stale_polls)) {
      if (locked_pending.compare_exchange_strong(expect, qspin::locked_val, std::memory_order_acquire,
                                                 std::memory_order_relaxed))
        return true;
      continue;
    }
    if (!(v & qspin::tail_mask)) return false;
    if ((v & qspin::pending_mask) && (v & qspin::locked_mask)) return false;  // the head spins: queue
    w.relax();
  }
}

/// The queue head's wait under the yield policy (pv_wait_head_or_lock() with sched_yield()
/// in place of halting): set pending to turn stealing off, spin a bounded time on
/// *,1,0 -> *,0,1; if the holder is slow (likely descheduled), clear pending so running
/// newcomers may steal, yield, and try again. Returns the lock word with the lock held.
std::uint32_t head_wait_and_lock(qspinlock_word& lock) noexcept {
  auto pending = std::atomic_ref<std::uint8_t>(lock.b.pending);
  auto locked_pending = std::atomic_ref<std::uint16_t>(lock.h.locked_pending);
  // First a polite phase: pending clear (the holder may re-take the lock), one poll every
  // polite_gap pauses (none right away: the steal just failed), because every poll pulls the
  // line from the running holder and makes its next lock and unlock pay a transfer, and a poll
  // that lands between its unlock and its next lock ends its run. With two threads this turns
  // a hand-over per operation (about two line transfers each) into runs of the holder from its
  // own cache; the phase's bound (polite_pauses) caps the runs in time, and both threads take
  // turns as holder and head, hence the fairness over a trial.
  for (unsigned spent = 0; spent < polite_pauses; spent += polite_gap) {
    for (unsigned i = 0; i < polite_gap; ++i) cpu_relax();
    std::uint16_t lp = locked_pending.load(std::memory_order_relaxed);  // seeds the cmpxchg
    if (!(lp & qspin::locked_mask) &&
        locked_pending.compare_exchange_strong(lp, qspin::locked_val, std::memory_order_acquire,
                                               std::memory_order_relaxed))
      return val_of(lock).load(std::memory_order_relaxed) | qspin::locked_val;  // as below
  }
  for (;;) {
    // Relaxed: pending is a hint to stealers here (it publishes no data); a stealer that
    // misses it only takes a free lock, which the hybrid allows anyway.
    pending.store(1, std::memory_order_relaxed);
    for (unsigned loop = spin_then_yield_limit; loop; --loop) {
      // *,1,0 -> *,0,1; also *,0,0 -> *,0,1: an unlock's 16-bit store clears our hint.
      // Relaxed load: seeds the cmpxchg, which acquires.
      std::uint16_t lp = locked_pending.load(std::memory_order_relaxed);
      if (!(lp & qspin::locked_mask) &&
          locked_pending.compare_exchange_strong(lp, qspin::locked_val, std::memory_order_acquire,
                                                 std::memory_order_relaxed))
        // Relaxed: we hold the lock; the tail read here only seeds the claim cmpxchg.
        return val_of(lock).load(std::memory_order_relaxed) | qspin::locked_val;
      // Pending gone while the lock is held: an unlock's store raced with ours and lost it, or a
      // newcomer took the lock as if we were descheduled. Ask again (relaxed, as above).
      if (!(lp & qspin::pending_mask)) pending.store(1, std::memory_order_relaxed);
      cpu_relax();
    }
    pending.store(0, std::memory_order_relaxed);  // the hint off (relaxed, as above)
    ::sched_yield();
    std::uint16_t free = 0;
    if (locked_pending.compare_exchange_strong(free, qspin::locked_val, std::memory_order_acquire,
                                               std::memory_order_relaxed))
      return val_of(lock).load(std::memory_order_relaxed) | qspin::locked_val;
  }
}

}  // namespace

template <spin_policy P>
void queued_spin_lock_slowpath(qspinlock_word& lock, std::uint32_t val) noexcept {
  auto word = val_of(lock);

  if constexpr (P == spin_policy::virt) {
    // virt_spin_lock(): no queue, so a descheduled waiter never holds up a hand-over.
    // *,*,* -> 0,0,1 whenever the word reads 0; unfair, but throughput survives preemption.
    spin_wait<P> w;
    do {
      while (word.load(std::memory_order_relaxed) != 0) w.relax();
    } while (!whole_trylock(lock));
    return;
  } else if constexpr (P == spin_policy::spin) {
    // A pending waiter is about to take the lock (0,1,0 -> 0,0,1): wait a bounded time for it.
    if (val == qspin::pending_val) {
      std::uint32_t cnt = pending_loops;
      val = cond_read_relaxed<P>(lock, [&](std::uint32_t v) { return v != qspin::pending_val || cnt-- == 0; });
    }

    // Any contention beyond the holder: queue.
    if ((val & ~qspin::locked_mask) == 0) {
      // trylock || pending: 0,0,* -> 0,1,*
      val = word.fetch_or(qspin::pending_val, std::memory_order_acquire);
      if (likely((val & ~qspin::locked_mask) == 0)) {
        // We are pending: wait for the owner to go away. 0,1,1 -> *,1,0
        if (val & qspin::locked_mask)
          spin_cond_load_acquire<P>(&lock.b.locked, [](std::uint8_t locked) { return locked == 0; });
        // Take ownership and clear pending in one 16-bit store: *,1,0 -> *,0,1. Relaxed (the
        // kernel's clear_pending_set_locked() is a WRITE_ONCE): the acquire was the load that
        // saw locked == 0, and while pending is ours nobody else may set locked.
        std::atomic_ref<std::uint16_t>(lock.h.locked_pending).store(qspin::locked_val, std::memory_order_relaxed);
        return;
      }
      // Someone else is pending or queued. Undo our pending bit if we set it (our bit may
      // have made a queue head's n,0,0 -> 0,0,1 cmpxchg fail; it now waits on pending).
      // Relaxed: withdrawing our own bit publishes nothing.
      if (!(val & qspin::pending_mask))
        std::atomic_ref<std::uint8_t>(lock.b.pending).store(0, std::memory_order_relaxed);
    }
  }

  // queue:
  const unsigned slot = this_thread_slot();
  qnode* node = &qnodes[slot].nodes[0];
  const unsigned idx = node->count++;
  const std::uint32_t tail = encode_tail(slot, idx);

  if (unlikely(idx >= qspin::max_nodes)) {
    // Nested deeper than the node supply (signal handlers within signal handlers): spin.
    spin_wait<P> w;
    while (!whole_trylock(lock)) w.relax();
    --qnodes[slot].nodes[0].count;
    return;
  }
  node = &qnodes[slot].nodes[idx];
  // Relaxed: initialisation, published by the release of the tail exchange below (a successor
  // reaches the node only through the tail).
  node->locked.store(0, std::memory_order_relaxed);
  node->next.store(nullptr, std::memory_order_relaxed);

  // The node's line may have been cold: try once more before queueing. Under the yield
  // policy this is the paravirt hybrid's unfair trylock: steal while the head is not spinning.
  if (P == spin_policy::yield ? hybrid_unfair_trylock(lock) : whole_trylock(lock)) {
    --qnodes[slot].nodes[0].count;
    return;
  }

  // Publish the tail: p,*,* -> n,*,*. Release orders our node's initialisation before a
  // successor can find it; acquire pairs with the predecessor's own publication.
  const std::uint32_t old =
      static_cast<std::uint32_t>(std::atomic_ref<std::uint16_t>(lock.h.tail).exchange(static_cast<std::uint16_t>(tail >> qspin::tail_offset), std::memory_order_acq_rel))
      << qspin::tail_offset;

  qnode* next = nullptr;
  if (old & qspin::tail_mask) {
    qnode* prev = decode_tail(old);
    // Link in. Release: our node's initialisation is visible to whoever follows the link.
    prev->next.store(node, std::memory_order_release);
    // Wait to become the head (arch_mcs_spin_lock_contended(): smp_cond_load_acquire(), WFE
    // on arm64, under the spin policy); acquire pairs with the predecessor's release.
    spin_cond_load_acquire<P>(&node->locked, [](std::uint32_t head) { return head != 0; });
    next = node->next.load(std::memory_order_acquire);
  }

  if constexpr (P == spin_policy::yield) {
    // We are the head and already hold the lock when this returns: n,*,1.
    val = head_wait_and_lock(lock);
  } else {
    // We are the head: wait for owner and pending to go away. *,x,y -> *,0,0. The acquire
    // pairs with the owner's release store to the locked byte.
    val = spin_cond_load_acquire<P>(&lock.val, [](std::uint32_t v) { return (v & qspin::locked_pending_mask) == 0; });
  }

  // Claim the lock. n,0,0 -> 0,0,1 if we are the only one queued (clear the tail too);
  // otherwise *,*,0 -> *,*,1 by setting the locked byte alone. (Under the yield policy we
  // hold it already: n,0,1 -> 0,0,1 clears the tail, and setting locked again is harmless.)
  // Relaxed cmpxchg and store: the lock was acquired above (the head's acquire wait, or the
  // yield policy's acquire cmpxchg); these only clear the tail or set the locked byte, which
  // only the head may do once locked and pending are 0.
  if ((val & qspin::tail_mask) == tail &&
      word.compare_exchange_strong(val, qspin::locked_val, std::memory_order_relaxed,
                                   std::memory_order_relaxed)) {
    --qnodes[slot].nodes[0].count;
    return;
  }
  // Somebody queued behind us (or set pending, then saw the tail and will queue): we will
  // see a successor.
  std::atomic_ref<std::uint8_t>(lock.b.locked).store(1, std::memory_order_relaxed);
  if (!next) next = spin_cond_load_acquire<P>(&node->next, [](qnode* n) { return n != nullptr; });
  next->locked.store(1, std::memory_order_release);  // pass the MCS head role on
  --qnodes[slot].nodes[0].count;
}

template void queued_spin_lock_slowpath<spin_policy::spin>(qspinlock_word&, std::uint32_t) noexcept;
template void queued_spin_lock_slowpath<spin_policy::yield>(qspinlock_word&, std::uint32_t) noexcept;
template void queued_spin_lock_slowpath<spin_policy::virt>(qspinlock_word&, std::uint32_t) noexcept;

}  // namespace kprim
