// slab_internal.hpp: the layout of kmem_cache_s and of a slab, and the interfaces between the
// allocator's layers, one source file each (the essay atop kprim/slab.hpp tells the layers):
//   slab.cpp           cache life cycle (create, shrink, destroy) and the out-of-line entry
//                      points that pick a layer (slow paths, bulk calls)
//   slab_page.cpp      slabs and pages: mappings, slab lists, objects in and out of slabs
//   slab_magazine.cpp  magazines, the depot and the per-thread caches
//   slab_debug.cpp     SLAB_POISON / SLAB_RED_ZONE checks and the KASAN-style annotations
//   slab_rcu.cpp       SLAB_TYPESAFE_BY_RCU: unmapping empty slabs after a grace period
//   slab_irq.cpp       allocation and free in kprim interrupt handlers (deferred frees)
//   slab_stats.cpp     statistics (slabinfo) and tunables
//   kmalloc.cpp        the kmalloc size classes over the above
// Not an API: include kprim/slab.hpp or kprim/kmalloc.hpp instead.
#pragma once

#include <kprim/list.hpp>
#include <kprim/slab.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace kprim {

namespace detail {

/// Internal creation flag: the cache has no magazines; every allocation goes to its slabs
/// (the magazine caches themselves, which must not need magazines to allocate one).
inline constexpr slab_flags_t SLAB_NO_MAGAZINES = 1u << 31;

inline constexpr std::size_t page_size = 4096;

/// A slab: this header at the base of a slab_size-aligned mapping, then objperslab objects of
/// `size` bytes from first_off. Objects below `carved` have been handed out at least once;
/// those above it are untouched (never written: a fresh slab costs no RSS until used, unless
/// the cache has a ctor, which populates every object at once). Free objects below `carved`
/// are on `freelist`, linked through the word at the cache's free-pointer offset.
/// Protected by the cache's node lock, except head (immutable while the slab is mapped).
struct slab {
  slab_head head;
  list_head node;  ///< on one node list (partial, full or empty), or a release list
  void* freelist;
  std::uint32_t inuse;   ///< objects out of the slab (allocated or in some magazine)
  std::uint32_t carved;  ///< objects handed out from the untouched tail so far
  std::uint32_t list;    ///< which node list holds it (slab_list_id)
  std::uint32_t pad_;
};
static_assert(sizeof(slab) <= 64, "slab header must fit one cache line");

enum slab_list_id : std::uint32_t { SLAB_PARTIAL = 0,
                                    SLAB_FULL = 1,
                                    SLAB_EMPTY = 2,
                                    SLAB_NR_LISTS = 3 };

/// One node list: a kprim::list_head of slabs (most recently added first) and its length
/// (the kernel's list_head + nr_*). Self-referential once constructed: never copied.
struct slab_list {
  list_head head;
  std::size_t nr = 0;
  slab_list() noexcept { INIT_LIST_HEAD(&head); }
  slab_list(const slab_list&) = delete;
  slab_list& operator=(const slab_list&) = delete;
  [[nodiscard]] slab* first() noexcept {
    return list_empty(&head) ? nullptr : container_of<&slab::node>(head.next);
  }
};

}  // namespace detail

/// The cache. Layout: the hot fields the inline fast paths read first, then read-mostly
/// geometry, then the node (slab lists) and the depot on lines of their own.
struct kmem_cache_s {
  detail::kmem_cache_hot hot;  ///< must stay first: kprim/slab.hpp reads it by cast
  std::uint32_t size;          ///< stride between objects
  std::uint32_t align;
  std::uint32_t fp_offset;     ///< free pointer word, from the object start
  std::uint32_t state_offset;  ///< debug: red-zone/state word (pad bytes from object_size)
  std::uint32_t first_off;     ///< offset of object 0 from the slab base
  std::uint32_t objperslab;
  std::uint32_t magazine_rounds;
  slab_flags_t flags;
  bool debug;   ///< SLAB_POISON or SLAB_RED_ZONE: no magazines, checks
  bool poison;  ///< SLAB_POISON, no ctor, not SLAB_TYPESAFE_BY_RCU
  bool direct;  ///< no magazines: debug caches and the magazine caches
  std::size_t slab_size;
  std::uintptr_t slab_mask;
  void (*ctor)(void*);
  char name[32];

  /// Node: the slab lists and their counts. Lock order: registry -> depot -> node.
  alignas(64) std::mutex node_lock;
  detail::slab_list lists[detail::SLAB_NR_LISTS];
  std::size_t inuse_objs = 0;  ///< objects out of the slabs
  unsigned max_empty_slabs = 2;
  /// SLAB_TYPESAFE_BY_RCU: slabs off the lists, waiting for a grace period to be unmapped
  /// (raised before call_rcu(), lowered by the callback; no lock).
  std::atomic<std::size_t> rcu_pending_slabs{0};

  /// Depot: full and empty magazines.
  alignas(64) std::mutex depot_lock;
  detail::magazine* depot_full = nullptr;
  detail::magazine* depot_empty = nullptr;
  std::size_t nr_full = 0, nr_empty = 0, depot_objs = 0;
  unsigned depot_max_full = 64;

  /// Per-thread caches of this cache, linked through thread_cache::node (registry lock).
  list_head threads{&threads, &threads};

  /// Objects freed in kprim interrupt handlers, linked through their free pointers: pushed
  /// lock-free by handlers, taken whole (exchange) by process context, which puts them back
  /// in their slabs. Until then they count as allocated (inuse_objs). Own line: handlers on
  /// every thread push here.
  alignas(64) std::atomic<void*> irq_freelist{nullptr};
};

namespace detail {

// ---- helpers every layer uses ----------------------------------------------------------------

/// slab_of() - the slab holding object p of cache s.
inline slab* slab_of(const kmem_cache_s* s, const void* p) noexcept {
  return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(p) & s->slab_mask);
}

inline void* object_at(const kmem_cache_s* s, slab* sl, std::size_t i) noexcept {
  return reinterpret_cast<char*>(sl) + s->first_off + i * s->size;
}

/// freepointer() - the word a free object is linked through (slab freelists, the irq list).
inline void*& freepointer(const kmem_cache_s* s, void* obj) noexcept {
  return *reinterpret_cast<void**>(static_cast<char*>(obj) + s->fp_offset);
}

/// lock_for() - take m as gfp allows: wait for it (GFP_KERNEL) or only try (GFP_ATOMIC).
inline bool lock_for(std::mutex& m, gfp_t gfp) noexcept {
  if (gfpflags_allow_blocking(gfp)) {
    m.lock();
    return true;
  }
  return m.try_lock();
}

/// The registry (slab.cpp): live caches by id, and every per-thread cache list
/// (kmem_cache_s::threads). Lock order: registry -> depot -> node.
extern std::mutex g_registry_lock;
extern kmem_cache_s* g_caches[max_caches];

// ---- debug layer (slab_debug.cpp) -------------------------------------------------------------

#if KPRIM_KASAN
/// kasan_poison_free() - give a free object the shadow of a free object: poisoned over its
/// stride, except that a SLAB_TYPESAFE_BY_RCU cache keeps the object_size bytes addressable
/// (RCU readers may still read a freed object; KASAN skips such caches the same way). Those
/// bytes are never poisoned, not even for a moment: a concurrent reader would be reported.
inline void kasan_poison_free(const kmem_cache_s* s, void* obj) noexcept {
  if (s->flags & SLAB_TYPESAFE_BY_RCU)
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(obj) + s->hot.object_size, s->size - s->hot.object_size);
  else
    ASAN_POISON_MEMORY_REGION(obj, s->size);
}
#endif

/// kasan_window - the allocator's own access to a free object (its free pointer, debug
/// patterns, constructor): the stride is addressable inside the window and gets the shadow of
/// a free object again when it closes. Nothing in builds without AddressSanitizer.
struct kasan_window {
#if KPRIM_KASAN
  const kmem_cache_s* s;
  void* p;
  kasan_window(const kmem_cache_s* cache, void* obj) noexcept : s(cache), p(obj) { ASAN_UNPOISON_MEMORY_REGION(p, s->size); }
  ~kasan_window() { kasan_poison_free(s, p); }
#else
  kasan_window(const kmem_cache_s*, void*) noexcept {}
#endif
  kasan_window(const kasan_window&) = delete;
  kasan_window& operator=(const kasan_window&) = delete;
};

/// Debug state words (the 8 bytes at state_offset; see SLAB_RED_ZONE in kprim/slab.hpp).
/// slab_irq_deferred marks an object freed in a handler until the drain frees it.
inline constexpr unsigned char slab_irq_deferred = 0xdd;
bool state_word_is(const kmem_cache_s* s, void* obj, unsigned char v) noexcept;
void set_state_word(const kmem_cache_s* s, void* obj, unsigned char v) noexcept;
/// debug_init_object() - a debug cache's object as a fresh slab leaves it: free-state guard,
/// poison (caller holds a kasan_window).
void debug_init_object(const kmem_cache_s* s, void* obj) noexcept;
/// debug_alloc()/debug_free() - a debug cache's allocation and free, each object checked.
void* debug_alloc(kmem_cache_s* s, gfp_t gfp) noexcept;
void debug_free(kmem_cache_s* s, void* p) noexcept;
[[noreturn, gnu::cold]] void slab_bug(const kmem_cache_s* s, const char* what, const void* obj);

// ---- slab layer (slab_page.cpp) ---------------------------------------------------------------

/// map_aligned() - `size` bytes (a multiple of the page size) from mmap at an address aligned
/// to `align` (a power of two, >= page size); nullptr on failure. unmap_region() gives a
/// mapping back. Both keep the process-wide kmem_mapped_bytes() figure. Context: system
/// calls; never take a kprim lock.
void* map_aligned(std::size_t size, std::size_t align) noexcept;
void unmap_region(void* p, std::size_t size) noexcept;

/// slab_list_move() - move sl to node list `to` (node lock held).
void slab_list_move(kmem_cache_s* s, slab* sl, std::uint32_t to) noexcept;
/// slab_list_del() - unlink sl from its node list (node lock held).
void slab_list_del(kmem_cache_s* s, slab* sl) noexcept;

/// slab_put() - put one object back (node lock held). An empty slab beyond the limit is
/// unlinked and added to *release, to be released after the lock is dropped; with a null
/// `release` it stays on the empty list.
void slab_put(kmem_cache_s* s, void* p, list_head* release) noexcept;
/// slab_alloc_bulk() - up to n objects from the slabs into out[]; returns how many (0 on
/// failure: GFP_ATOMIC and a busy lock, or no memory). With all_or_nothing a shortfall puts
/// back what was taken and returns 0.
std::size_t slab_alloc_bulk(kmem_cache_s* s, void** out, std::size_t n, gfp_t gfp,
                            bool all_or_nothing = false) noexcept;
/// slab_free_bulk() - return n objects to their slabs (one lock round trip).
void slab_free_bulk(kmem_cache_s* s, void* const* objs, std::size_t n) noexcept;
/// unmap_slabs() - unmap a release list of slabs now.
void unmap_slabs(kmem_cache_s* s, list_head* release) noexcept;
/// release_slabs() - give back slabs taken off the lists: unmapped now, or after a grace
/// period for a SLAB_TYPESAFE_BY_RCU cache. Context: no kprim lock held; may sleep.
void release_slabs(kmem_cache_s* s, list_head* release) noexcept;

// ---- RCU deferral (slab_rcu.cpp) --------------------------------------------------------------

/// defer_slabs() - hand a release list of empty slabs to call_rcu(); each is unmapped after a
/// grace period. Context: no kprim lock held; may register the thread with RCU (a mutex).
void defer_slabs(kmem_cache_s* s, list_head* release) noexcept;
/// rcu_destroy_slabs() - kmem_cache_destroy()'s end for a SLAB_TYPESAFE_BY_RCU cache: wait for
/// readers (synchronize_rcu), unmap `release`, then wait for every deferred slab (rcu_barrier).
void rcu_destroy_slabs(kmem_cache_s* s, list_head* release) noexcept;

// ---- magazines and the depot (slab_magazine.cpp) --------------------------------------------

/// magazine_alloc()/magazine_free_object() - the slow paths of kmem_cache_alloc/free for a
/// cache with magazines, through this thread's cache (created on first use). nullptr /
/// direct-to-slab when no per-thread cache can be had.
void* magazine_alloc(kmem_cache_s* s, gfp_t gfp) noexcept;
void magazine_free_object(kmem_cache_s* s, void* objp) noexcept;
/// magazine_alloc_bulk()/magazine_free_bulk() - take/put up to n objects from/into this
/// thread's two magazines (no lock); return how many. magazine_unalloc_bulk() puts back
/// what magazine_alloc_bulk() took (the magazines have the room).
std::size_t magazine_alloc_bulk(kmem_cache_s* s, void** p, std::size_t n) noexcept;
std::size_t magazine_free_bulk(kmem_cache_s* s, void* const* p, std::size_t n) noexcept;
void magazine_unalloc_bulk(kmem_cache_s* s, void* const* p, std::size_t n) noexcept;
/// magazines_flush_this_thread() - return this thread's magazines' objects to the slabs.
void magazines_flush_this_thread(kmem_cache_s* s) noexcept;
/// depot_flush() - empty the depot: every magazine's objects to the slabs, magazines freed.
void depot_flush(kmem_cache_s* s) noexcept;
/// thread_caches_release() - flush and free every thread's cache of s (registry lock held;
/// no thread uses s).
void thread_caches_release(kmem_cache_s* s) noexcept;

/// pcpu_enable() - set up the per-CPU slots (once) and mark s per-CPU, if rseq is registered
/// on this thread (registry lock held). Returns whether s is now per-CPU.
bool pcpu_enable(kmem_cache_s* s) noexcept;
/// pcpu_alloc()/pcpu_free_object() - the slow paths of a per-CPU cache: retry the current
/// CPU's magazine, else trade it for a full/empty one from the depot (or the slabs) with one
/// rseq exchange of the slot; the locked path (the slabs) when rseq is not usable.
void* pcpu_alloc(kmem_cache_s* s, gfp_t gfp) noexcept;
void pcpu_free_object(kmem_cache_s* s, void* objp) noexcept;
/// pcpu_flush_this_cpu() - return the calling CPU's magazine of s to the slabs (shrink).
void pcpu_flush_this_cpu(kmem_cache_s* s) noexcept;
/// pcpu_release() - flush and free every CPU's magazine of s (no thread uses s).
void pcpu_release(kmem_cache_s* s) noexcept;

// ---- interrupt handlers (slab_irq.cpp) -----------------------------------------------------

/// irq_alloc() - one object for a handler (try-locks only). irq_defer_free() - a handler's
/// free, lock-free, deferred. drain_irq_frees() - process context puts the deferred frees
/// back in their slabs.
void* irq_alloc(kmem_cache_s* s) noexcept;
void irq_defer_free(kmem_cache_s* s, void* objp) noexcept;
void drain_irq_frees_slow(kmem_cache_s* s) noexcept;
inline void drain_irq_frees(kmem_cache_s* s) noexcept {
  if (s->irq_freelist.load(std::memory_order_relaxed) != nullptr) drain_irq_frees_slow(s);
}

}  // namespace detail

}  // namespace kprim
