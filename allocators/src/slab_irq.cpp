// slab_irq.cpp: kmem_cache in kprim interrupt handlers: never the magazines, never a lock
// wait. A handler may have interrupted this thread anywhere (a magazine half popped, the depot
// or node mutex held), so it allocates from a slab under a try-locked node mutex and frees
// onto a lock-free deferred list that process context drains. See "Interrupt handlers" in
// kprim/slab.hpp.
#include "slab_internal.hpp"

namespace kprim::detail {

/// One object for a handler: the node mutex is only try-locked (busy, by the interrupted code
/// or another thread: nullptr, as GFP_ATOMIC may return), then a slab object (a new slab is
/// mapped with the lock held: mmap is a system call, safe in a handler).
void* irq_alloc(kmem_cache_s* s) noexcept {
  void* p = nullptr;
  if (s->debug) return debug_alloc(s, GFP_ATOMIC);
  if (slab_alloc_bulk(s, &p, 1, GFP_ATOMIC) == 0) return nullptr;
  return p;
}

/// Push objp on the cache's deferred list (lock-free). Only pushes race with each other
/// (process context takes the whole list with one exchange), so the compare-and-swap has no
/// ABA. objp keeps its debug state (still "allocated") until the drain frees it with every
/// check.
void irq_defer_free(kmem_cache_s* s, void* objp) noexcept {
  kasan_window w(s, objp);
  if (s->debug) {
    // A second deferred free would link the object into the list twice (a cycle): catch it
    // here with a state word of its own, which the drain turns back into "allocated" before
    // debug_free's checks. A state word that is neither is left for debug_free to report.
    if (state_word_is(s, objp, SLUB_RED_INACTIVE) || state_word_is(s, objp, slab_irq_deferred))
      slab_bug(s, "double free", objp);
    if (state_word_is(s, objp, SLUB_RED_ACTIVE)) set_state_word(s, objp, slab_irq_deferred);
  }
  void* head = s->irq_freelist.load(std::memory_order_relaxed);
  do {
    freepointer(s, objp) = head;
  } while (!s->irq_freelist.compare_exchange_weak(head, objp, std::memory_order_release, std::memory_order_relaxed));
}

/// Give the handlers' deferred frees back to their slabs. Process context only (takes the
/// node mutex, may release slabs).
void drain_irq_frees_slow(kmem_cache_s* s) noexcept {
  void* p = s->irq_freelist.exchange(nullptr, std::memory_order_acquire);
  auto next_of = [s](void* obj) {
    kasan_window w(s, obj);
    return freepointer(s, obj);
  };
  if (s->debug) {
    while (p != nullptr) {
      void* next = next_of(p);
      {
        kasan_window w(s, p);
        if (state_word_is(s, p, slab_irq_deferred)) set_state_word(s, p, SLUB_RED_ACTIVE);
      }
      debug_free(s, p);
      p = next;
    }
    return;
  }
  if (p == nullptr) return;
  LIST_HEAD(release);
  std::size_t n = 0;
  s->node_lock.lock();
  while (p != nullptr) {
    void* next = next_of(p);
    slab_put(s, p, &release);
    ++n;
    p = next;
  }
  s->inuse_objs -= n;
  s->node_lock.unlock();
  release_slabs(s, &release);
}

}  // namespace kprim::detail
