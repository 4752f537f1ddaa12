// slab_rcu.cpp: the RCU deferral of kmem_cache: a SLAB_TYPESAFE_BY_RCU cache's empty slabs
// are unmapped by call_rcu() callbacks after a grace period of the memb flavour, and
// kmem_cache_destroy() waits for readers and for those callbacks. Frees themselves are not
// delayed (that would be kfree_rcu()); see SLAB_TYPESAFE_BY_RCU in kprim/slab.hpp.
#include "slab_internal.hpp"

#include <kprim/rcu.hpp>

#include <new>
#include <type_traits>

namespace kprim::detail {

namespace {

/// A SLAB_TYPESAFE_BY_RCU slab waiting for its grace period: the header stays (the callback
/// finds the cache and the length there), the rcu_head overlays the list link and freelist,
/// which a slab off the lists no longer uses. Objects start after sizeof(slab): untouched.
struct slab_rcu {
  slab_head head;
  rcu_head rcu;
};
static_assert(sizeof(slab_rcu) <= sizeof(slab), "the rcu_head must stay within the slab header");
static_assert(std::is_standard_layout_v<slab_rcu>);

/// call_rcu() callback: the grace period has passed, no reader can hold one of the slab's
/// objects; unmap it. The cache outlives the callback (kmem_cache_destroy() runs rcu_barrier()).
void slab_free_rcu(rcu_head* h) noexcept {
  auto* d = container_of<&slab_rcu::rcu>(h);
  kmem_cache_s* s = d->head.cache;
  unmap_region(d, d->head.size);
  s->rcu_pending_slabs.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

/// call_rcu() wants a registered thread; one that is not registers for the call (it is not in
/// a read-side section, then).
void defer_slabs(kmem_cache_s* s, list_head* release) noexcept {
  const bool registered = rcu_flavour::registered();
  if (!registered) rcu_register_thread();
  for (slab& sl : entries_safe<&slab::node>(*release)) {
    const slab_head head = sl.head;
    auto* d = ::new (static_cast<void*>(&sl)) slab_rcu{head, {}};  // ends the slab's links
    s->rcu_pending_slabs.fetch_add(1, std::memory_order_relaxed);
    call_rcu(&d->rcu, slab_free_rcu);
  }
  INIT_LIST_HEAD(release);
  if (!registered) rcu_unregister_thread();
}

void rcu_destroy_slabs(kmem_cache_s* s, list_head* release) noexcept {
  synchronize_rcu();  // readers of freed objects are done with them
  unmap_slabs(s, release);
  rcu_barrier();  // slabs deferred before (shrink, limit, the flushes in destroy) are gone
}

}  // namespace kprim::detail
