// slab_page.cpp: the slab layer of kmem_cache: mappings from the OS (map_aligned), the node's
// partial/full/empty slab lists (kprim::list_head), and objects taken from and put back into
// slabs under the node lock. The layers above (magazines, debug, irq) call in here; see
// "Layers" in kprim/slab.hpp.
#include "slab_internal.hpp"

#include <sys/mman.h>

#include <atomic>

namespace kprim {

namespace detail {

namespace {

std::atomic<std::size_t> g_mapped_bytes{0};

// ---- slab lists (node lock held) ------------------------------------------------------------

void slab_list_add(kmem_cache_s* s, slab* sl, std::uint32_t id) noexcept {
  sl->list = id;
  list_add(&sl->node, &s->lists[id].head);  // first: the next allocation's pick
  ++s->lists[id].nr;
}

/// The list a slab belongs on for its inuse count.
std::uint32_t list_for(const kmem_cache_s* s, const slab* sl) noexcept {
  if (sl->inuse == 0) return SLAB_EMPTY;
  return sl->inuse == s->objperslab ? SLAB_FULL : SLAB_PARTIAL;
}

/// Prepare every object of a freshly mapped slab: ctor (Bonwick: construct once, when the
/// slab is populated), and for debug caches the free-state guard and poison.
void slab_populate(kmem_cache_s* s, slab* sl) noexcept {
  if (s->ctor == nullptr && !s->debug) return;  // carved lazily, untouched until used
  for (std::size_t i = 0; i < s->objperslab; ++i) {
    void* obj = object_at(s, sl, i);
    kasan_window w(s, obj);  // free from the start: poisoned when the window closes
    if (s->ctor) s->ctor(obj);
    if (s->debug) debug_init_object(s, obj);
  }
}

/// slab_new() - map and populate a slab (no lock held: ctors may be slow).
slab* slab_new(kmem_cache_s* s) noexcept {
  auto* sl = static_cast<slab*>(map_aligned(s->slab_size, s->slab_size));
  if (sl == nullptr) return nullptr;
  sl->head.cache = s;
  sl->head.size = s->slab_size;
  INIT_LIST_HEAD(&sl->node);
  sl->freelist = nullptr;
  sl->inuse = 0;
  sl->carved = 0;
  sl->list = SLAB_EMPTY;
  slab_populate(s, sl);
  return sl;
}

/// Take one object from a slab that has one (node lock held).
void* slab_take(kmem_cache_s* s, slab* sl) noexcept {
  void* p;
  if (sl->freelist != nullptr) {
    p = sl->freelist;
    kasan_window w(s, p);
    sl->freelist = freepointer(s, p);
  } else {
    p = object_at(s, sl, sl->carved++);
#if KPRIM_KASAN
    kasan_poison_free(s, p);  // first hand-out: free until allocated
#endif
  }
  ++sl->inuse;
  return p;
}

}  // namespace

void* map_aligned(std::size_t size, std::size_t align) noexcept {
  if (size + align < size) return nullptr;
  void* raw = mmap(nullptr, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (base + align - 1) & ~(align - 1);
  if (aligned != base) munmap(raw, aligned - base);
  const std::uintptr_t tail = base + size + align - (aligned + size);
  if (tail != 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  g_mapped_bytes.fetch_add(size, std::memory_order_relaxed);
  return reinterpret_cast<void*>(aligned);
}

void unmap_region(void* p, std::size_t size) noexcept {
#if KPRIM_KASAN
  ASAN_UNPOISON_MEMORY_REGION(p, size);  // a later mapping at this address starts clean
#endif
  munmap(p, size);
  g_mapped_bytes.fetch_sub(size, std::memory_order_relaxed);
}

void slab_list_del(kmem_cache_s* s, slab* sl) noexcept {
  list_del(&sl->node);
  --s->lists[sl->list].nr;
}

void slab_list_move(kmem_cache_s* s, slab* sl, std::uint32_t to) noexcept {
  if (sl->list == to) return;
  slab_list_del(s, sl);
  slab_list_add(s, sl, to);
}

void slab_put(kmem_cache_s* s, void* p, list_head* release) noexcept {
  slab* sl = slab_of(s, p);
  {
    kasan_window w(s, p);
    freepointer(s, p) = sl->freelist;
  }
  sl->freelist = p;
  --sl->inuse;
  slab_list_move(s, sl, list_for(s, sl));
  if (release != nullptr && sl->inuse == 0 && s->lists[SLAB_EMPTY].nr > s->max_empty_slabs) {
    slab_list_del(s, sl);
    list_add(&sl->node, release);
  }
}

/// Partial slabs first, then empty ones, then a new slab. A caller that may sleep maps a new
/// slab with the lock dropped (ctors may be slow, others proceed meanwhile); an atomic caller
/// keeps it: dropping it would mean try-locking again, and failing then would leave it holding
/// objects it could only give back by waiting.
std::size_t slab_alloc_bulk(kmem_cache_s* s, void** out, std::size_t n, gfp_t gfp, bool all_or_nothing) noexcept {
  const bool can_wait = gfpflags_allow_blocking(gfp);
  std::size_t got = 0;
  if (!lock_for(s->node_lock, gfp)) return 0;
  while (got < n) {
    slab* sl = s->lists[SLAB_PARTIAL].first();
    if (sl == nullptr) sl = s->lists[SLAB_EMPTY].first();
    if (sl == nullptr) {
      if (can_wait) s->node_lock.unlock();
      sl = slab_new(s);
      if (can_wait) s->node_lock.lock();
      if (sl == nullptr) break;
      slab_list_add(s, sl, SLAB_EMPTY);
    }
    const std::size_t before = got;
    while (got < n && sl->inuse < s->objperslab) out[got++] = slab_take(s, sl);
    s->inuse_objs += got - before;
    slab_list_move(s, sl, list_for(s, sl));
  }
  LIST_HEAD(release);
  if (got < n && all_or_nothing) {
    // An atomic caller of a SLAB_TYPESAFE_BY_RCU cache keeps emptied slabs: releasing them
    // might mean registering with RCU (a mutex).
    list_head* rel = can_wait || !(s->flags & SLAB_TYPESAFE_BY_RCU) ? &release : nullptr;
    for (std::size_t i = 0; i < got; ++i) slab_put(s, out[i], rel);
    s->inuse_objs -= got;
    got = 0;
  }
  s->node_lock.unlock();
  release_slabs(s, &release);
  return got;
}

void slab_free_bulk(kmem_cache_s* s, void* const* objs, std::size_t n) noexcept {
  if (n == 0) return;
  LIST_HEAD(release);
  s->node_lock.lock();
  for (std::size_t i = 0; i < n; ++i) slab_put(s, objs[i], &release);
  s->inuse_objs -= n;
  s->node_lock.unlock();
  release_slabs(s, &release);
}

void unmap_slabs(kmem_cache_s* s, list_head* release) noexcept {
  for (slab& sl : entries_safe<&slab::node>(*release)) unmap_region(&sl, s->slab_size);
  INIT_LIST_HEAD(release);
}

void release_slabs(kmem_cache_s* s, list_head* release) noexcept {
  if (list_empty(release)) return;
  if (s->flags & SLAB_TYPESAFE_BY_RCU) defer_slabs(s, release);
  else unmap_slabs(s, release);
}

}  // namespace detail

std::size_t kmem_mapped_bytes() noexcept { return detail::g_mapped_bytes.load(std::memory_order_relaxed); }

}  // namespace kprim
