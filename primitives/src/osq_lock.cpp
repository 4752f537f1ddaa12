// The optimistic spin queue (kernel/locking/osq_lock.c) on thread-slot nodes.
#include <kprim/osq_lock.hpp>

#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>
#include <kprim/thread_slot.hpp>

#include <algorithm>

#include <unistd.h>

namespace kprim {

namespace {

struct alignas(cacheline_size) optimistic_spin_node {
  std::atomic<optimistic_spin_node*> next;
  std::atomic<optimistic_spin_node*> prev;
  std::atomic<std::uint32_t> locked;  // 1: the predecessor handed the OSQ to us
};

optimistic_spin_node osq_nodes[max_thread_slots];

constexpr std::uint32_t osq_unlocked_val = 0;

/// Spinner admission: threads inside an OSQ (waiting in it or holding it), all locks
/// together, are kept below the CPU count, so the lock owners keep a CPU to run on. The
/// user-space stand-in for the kernel's "stop spinning when need_resched()".
std::atomic<long> nr_spinners{0};
const long max_spinners = std::max(1l, ::sysconf(_SC_NPROCESSORS_ONLN) - 1);

inline std::uint32_t encode_cpu(unsigned slot) noexcept { return slot + 1; }
inline optimistic_spin_node* decode_cpu(std::uint32_t v) noexcept { return &osq_nodes[v - 1]; }
/// node_cpu() - the encoded slot of a node's owner: fixed by the node's place in the table.
inline std::uint32_t node_cpu(const optimistic_spin_node* n) noexcept {
  return encode_cpu(static_cast<unsigned>(n - osq_nodes));
}

/// osq_wait_next() - get a stable node->next, or, when we are the tail, move the tail back to
/// old_cpu (our predecessor, or empty when unlocking) and return nullptr.
optimistic_spin_node* osq_wait_next(optimistic_spin_queue* lock, optimistic_spin_node* node,
                                    std::uint32_t old_cpu) noexcept {
  const std::uint32_t curr = node_cpu(node);
  for (;;) {
    std::uint32_t expect = curr;
    // acq_rel, not the kernel's acquire: from osq_unlock (old_cpu = unlocked) this CAS is the
    // release of the OSQ, and the next osq_lock's exchange must see the holder's writes (the
    // kernel never uses the OSQ to protect data; kprim's tests and users may). Same
    // instruction on x86-64 (lock cmpxchg); casal instead of casa on arm64.
    if (lock->tail.load(std::memory_order_relaxed) == curr &&
        lock->tail.compare_exchange_strong(expect, old_cpu, std::memory_order_acq_rel,
                                           std::memory_order_relaxed))
      return nullptr;  // we were last: the tail now points at old_cpu
    // Take next with xchg: left in place, a concurrent unqueue from next could finish its
    // step A believing we are still its valid predecessor.
    if (node->next.load(std::memory_order_relaxed)) {
      if (optimistic_spin_node* next = node->next.exchange(nullptr, std::memory_order_acq_rel)) return next;
    }
    cpu_relax();
  }
}

}  // namespace

bool spinner_enter() noexcept {
  if (nr_spinners.fetch_add(1, std::memory_order_relaxed) < max_spinners) return true;
  nr_spinners.fetch_sub(1, std::memory_order_relaxed);
  return false;
}
void spinner_leave() noexcept { nr_spinners.fetch_sub(1, std::memory_order_relaxed); }

bool osq_lock(optimistic_spin_queue* lock) noexcept {
  if (!spinner_enter()) return false;
  const unsigned slot = this_thread_slot();
  optimistic_spin_node* node = &osq_nodes[slot];
  const std::uint32_t curr = encode_cpu(slot);
  node->locked.store(0, std::memory_order_relaxed);
  node->next.store(nullptr, std::memory_order_relaxed);

  // Acquire pairs with an uncontended unlock's release; release publishes our node.
  const std::uint32_t old = lock->tail.exchange(curr, std::memory_order_acq_rel);
  if (old == osq_unlocked_val) return true;

  optimistic_spin_node* prev = decode_cpu(old);
  node->prev.store(prev, std::memory_order_relaxed);
  // Release: node->prev is visible before prev->next points at us (the kernel's smp_wmb()).
  prev->next.store(node, std::memory_order_release);

  // Wait for the OSQ or for the budget to run out (need_resched() in the kernel).
  for (unsigned rounds = 0; rounds < optimistic_spin_limit; ++rounds) {
    if (node->locked.load(std::memory_order_acquire)) return true;
    cpu_relax();
  }

  // Unqueue. Step A: undo prev->next = node, unless prev is handing the OSQ to us right now.
  for (;;) {
    optimistic_spin_node* expect = node;
    if (prev->next.load(std::memory_order_relaxed) == node &&
        prev->next.compare_exchange_strong(expect, nullptr, std::memory_order_acq_rel,
                                           std::memory_order_relaxed))
      break;
    // The cmpxchg fails only against an unlock (we get locked) or against prev's own
    // unqueue, whose step C gives us a new prev.
    if (node->locked.load(std::memory_order_acquire)) return true;
    cpu_relax();
    prev = node->prev.load(std::memory_order_relaxed);
  }

  // Step B: stabilise next, or move the tail back to prev if we are last.
  optimistic_spin_node* next = osq_wait_next(lock, node, node_cpu(prev));
  spinner_leave();
  if (!next) return false;

  // Step C: unlink. prev waits for a new next (we cleared it), next waits in its step A.
  next->prev.store(prev, std::memory_order_relaxed);
  prev->next.store(next, std::memory_order_release);
  return false;
}

void osq_unlock(optimistic_spin_queue* lock) noexcept {
  spinner_leave();
  const unsigned slot = this_thread_slot();
  std::uint32_t curr = encode_cpu(slot);
  // Fast path: we are the only one.
  if (likely(lock->tail.compare_exchange_strong(curr, osq_unlocked_val, std::memory_order_release,
                                                std::memory_order_relaxed)))
    return;
  optimistic_spin_node* node = &osq_nodes[slot];
  optimistic_spin_node* next = node->next.exchange(nullptr, std::memory_order_acq_rel);
  if (!next) next = osq_wait_next(lock, node, osq_unlocked_val);
  if (next) next->locked.store(1, std::memory_order_release);
}

}  // namespace kprim
