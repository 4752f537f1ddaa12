// slab.cpp: kmem_cache's life cycle (create, shrink, destroy) and the out-of-line entry points
// that pick a layer for a call: kprim interrupt handlers (slab_irq.cpp), debug caches
// (slab_debug.cpp), caches without magazines (slab_page.cpp) or the magazines
// (slab_magazine.cpp). The fast paths are inline in kprim/slab.hpp; "Layers" there says
// which file holds which layer.
#include "slab_internal.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace kprim {

namespace detail {

std::mutex g_registry_lock;
kmem_cache_s* g_caches[max_caches];

namespace {

constexpr std::size_t max_object_size = std::size_t{1} << 20;
constexpr std::size_t max_slab_size = std::size_t{1} << 23;
constexpr unsigned min_objperslab = 4;

std::size_t round_up(std::size_t x, std::size_t a) noexcept { return (x + a - 1) / a * a; }

/// The kernel's calculate_alignment(): SLAB_HWCACHE_ALIGN aligns to a cache line, or to the
/// smallest power-of-two fraction of one that still holds the object.
std::size_t calculate_alignment(slab_flags_t flags, std::size_t align, std::size_t size) noexcept {
  if (flags & SLAB_HWCACHE_ALIGN) {
    std::size_t ralign = 64;
    while (size <= ralign / 2) ralign /= 2;
    align = std::max(align, ralign);
  }
  return std::max<std::size_t>(align, 8);
}

[[noreturn, gnu::cold]] void create_panic(const char* name, const char* why) {
  std::fprintf(stderr, "kmem_cache_create: failed to create slab '%s': %s\n", name ? name : "(null)", why);
  std::fflush(stderr);
  std::abort();
}

}  // namespace

void* kmem_cache_alloc_slow(kmem_cache_s* s, gfp_t gfp) noexcept {
  void* p = nullptr;
  const bool irq = in_kprim_irq();
  if (!irq && gfpflags_allow_blocking(gfp)) drain_irq_frees(s);
  if (irq) {
    p = irq_alloc(s);
  } else if (s->debug) {
    p = debug_alloc(s, gfp);
  } else if (s->direct) {
    if (slab_alloc_bulk(s, &p, 1, gfp) == 0) return nullptr;
  } else if (s->hot.percpu != 0) {
    p = pcpu_alloc(s, gfp);
  } else {
    p = magazine_alloc(s, gfp);
  }
  if (p == nullptr) return nullptr;
  kasan_slab_alloc(s, p);
  if (gfp & __GFP_ZERO) std::memset(p, 0, s->hot.object_size);
  return p;
}

void kmem_cache_free_slow(kmem_cache_s* s, void* objp) noexcept {
  if (in_kprim_irq()) return irq_defer_free(s, objp);
  drain_irq_frees(s);
  if (s->debug) return debug_free(s, objp);
  if (s->direct) return slab_free_bulk(s, &objp, 1);
  if (s->hot.percpu != 0) return pcpu_free_object(s, objp);
  magazine_free_object(s, objp);
}

}  // namespace detail

using namespace detail;

kmem_cache_t* kmem_cache_create(const char* name, std::size_t size, std::size_t align, slab_flags_t flags,
                                void (*ctor)(void*)) {
  const bool panic = flags & SLAB_PANIC;
  auto fail = [&](const char* why) -> kmem_cache_t* {
    if (panic) create_panic(name, why);
    return nullptr;
  };
  if (name == nullptr) return fail("no name");
  if (size == 0 || size > max_object_size) return fail("object size must be 1 .. 1 MiB");
  if (align > page_size || (align & (align - 1)) != 0) return fail("align must be 0 or a power of two <= 4096");
  if (flags & ~(SLAB_HWCACHE_ALIGN | SLAB_POISON | SLAB_RED_ZONE | SLAB_PANIC | SLAB_TYPESAFE_BY_RCU | SLAB_NO_MAGAZINES |
                SLAB_PERCPU_MAGAZINES))
    return fail("unknown flags");

  auto* s = new (std::nothrow) kmem_cache_s();
  if (s == nullptr) return fail("out of memory");
  s->hot.object_size = static_cast<std::uint32_t>(size);
  s->flags = flags;
  s->ctor = ctor;
  s->debug = (flags & (SLAB_POISON | SLAB_RED_ZONE)) != 0;
  const bool typesafe = (flags & SLAB_TYPESAFE_BY_RCU) != 0;
  s->poison = (flags & SLAB_POISON) && ctor == nullptr && !typesafe;  // the kernel's rule
  s->direct = s->debug || (flags & SLAB_NO_MAGAZINES);
  std::snprintf(s->name, sizeof s->name, "%s", name);

  // Object layout: [object][debug: pad + 8-byte state word][free pointer if the object's
  // own first word must survive being free (ctor, debug, or SLAB_TYPESAFE_BY_RCU: readers
  // may read a free object)] rounded up to the alignment.
  const std::size_t a = calculate_alignment(flags, align, size);
  std::size_t off = size;
  if (s->debug) {
    s->state_offset = static_cast<std::uint32_t>(round_up(size, 8));
    off = s->state_offset + 8;
  }
  if (ctor != nullptr || s->debug || typesafe) {
    off = round_up(off, 8);
    s->fp_offset = static_cast<std::uint32_t>(off);
    off += sizeof(void*);
  } else {
    s->fp_offset = 0;
    off = std::max(off, sizeof(void*));
  }
  s->align = static_cast<std::uint32_t>(a);
  s->size = static_cast<std::uint32_t>(round_up(off, a));
  s->first_off = static_cast<std::uint32_t>(round_up(sizeof(slab), a));
  s->slab_size = slab_min_size;
  while ((s->slab_size - s->first_off) / s->size < min_objperslab && s->slab_size < max_slab_size) s->slab_size *= 2;
  s->objperslab = static_cast<std::uint32_t>((s->slab_size - s->first_off) / s->size);
  s->slab_mask = ~(static_cast<std::uintptr_t>(s->slab_size) - 1);
  s->magazine_rounds = s->size <= 256 ? 128 : s->size <= 1024 ? 64
                                          : s->size <= 4096   ? 32
                                                              : 16;

  std::lock_guard<std::mutex> g(g_registry_lock);
  unsigned id = 0;
  while (id < max_caches && g_caches[id] != nullptr) ++id;
  if (id == max_caches) {
    delete s;
    return fail("too many caches");
  }
  s->hot.id = id;
  if ((flags & SLAB_PERCPU_MAGAZINES) && !s->direct) pcpu_enable(s);
  g_caches[id] = s;
  return s;
}

int kmem_cache_alloc_bulk(kmem_cache_t* s, gfp_t gfp, std::size_t size, void** p) noexcept {
  std::size_t got = 0;
  if (in_kprim_irq()) {
    for (; got < size; ++got) {
      p[got] = irq_alloc(s);
      if (p[got] == nullptr) break;
    }
    if (got < size) {
      for (std::size_t i = 0; i < got; ++i) irq_defer_free(s, p[i]);  // no lock wait in a handler
      return 0;
    }
  } else if (s->debug) {
    for (; got < size; ++got) {
      p[got] = debug_alloc(s, gfp);
      if (p[got] == nullptr) break;
    }
    if (got < size) {
      kmem_cache_free_bulk(s, got, p);  // debug caches: may wait for the node lock
      return 0;
    }
  } else {
    got = magazine_alloc_bulk(s, p, size);
    if (got < size && slab_alloc_bulk(s, p + got, size - got, gfp, true) == 0) {
      // Only magazine objects were taken: they go back where they came from, without a lock.
      magazine_unalloc_bulk(s, p, got);
      return 0;
    }
  }
  for (std::size_t i = 0; i < size; ++i) kasan_slab_alloc(s, p[i]);
  if (gfp & __GFP_ZERO)
    for (std::size_t i = 0; i < size; ++i) std::memset(p[i], 0, s->hot.object_size);
  return static_cast<int>(size);
}

void kmem_cache_free_bulk(kmem_cache_t* s, std::size_t size, void** p) noexcept {
  for (std::size_t i = 0; i < size; ++i) kasan_slab_free(s, p[i]);
  if (in_kprim_irq()) {
    for (std::size_t i = 0; i < size; ++i) irq_defer_free(s, p[i]);
    return;
  }
  if (s->debug) {
    for (std::size_t i = 0; i < size; ++i) debug_free(s, p[i]);
    return;
  }
  const std::size_t i = magazine_free_bulk(s, p, size);
  slab_free_bulk(s, p + i, size - i);
}

std::size_t kmem_cache_shrink(kmem_cache_t* s) noexcept {
  drain_irq_frees(s);
  magazines_flush_this_thread(s);
  if (s->hot.percpu != 0) pcpu_flush_this_cpu(s);
  depot_flush(s);

  LIST_HEAD(release);
  std::size_t bytes = 0;
  s->node_lock.lock();
  while (slab* sl = s->lists[SLAB_EMPTY].first()) {
    slab_list_del(s, sl);
    list_add(&sl->node, &release);
    bytes += s->slab_size;
  }
  s->node_lock.unlock();
  release_slabs(s, &release);
  return bytes;
}

std::size_t kmem_cache_destroy(kmem_cache_t* s) noexcept {
  if (s == nullptr) return 0;
  drain_irq_frees(s);
  {
    std::lock_guard<std::mutex> g(g_registry_lock);
    thread_caches_release(s);
    if (s->hot.percpu != 0) pcpu_release(s);
    g_caches[s->hot.id] = nullptr;
  }
  depot_flush(s);

  const std::size_t leaked = s->inuse_objs;
  LIST_HEAD(release);
  for (std::uint32_t id = 0; id < SLAB_NR_LISTS; ++id) {
    while (slab* sl = s->lists[id].first()) {
      slab_list_del(s, sl);
      if (sl->inuse != 0) continue;  // holds live objects: left mapped
      list_add(&sl->node, &release);
    }
  }
  if (s->flags & SLAB_TYPESAFE_BY_RCU) rcu_destroy_slabs(s, &release);
  else unmap_slabs(s, &release);
  if (leaked != 0) {
    std::fprintf(stderr, "kmem_cache_destroy %s: Slab cache still has objects (%zu objects)\n", s->name, leaked);
    std::fflush(stderr);
#if defined(__SANITIZE_ADDRESS__)
    __lsan_ignore_object(s);  // reported above; LeakSanitizer need not report it again
#endif
    return leaked;  // the cache stays allocated: its leaked slabs still point at it
  }
  delete s;
  return 0;
}

}  // namespace kprim
