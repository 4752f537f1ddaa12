// slab_internal.hpp: the layout of kmem_cache_s and of a slab, shared by slab.cpp and
// kmalloc.cpp. Not an API: include kprim/slab.hpp or kprim/kmalloc.hpp instead.
#pragma once

#include <kprim/slab.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace kprim {

namespace detail {

/// Internal creation flag: the cache has no magazines; every allocation goes to its slabs
/// (the magazine caches themselves, which must not need magazines to allocate one).
inline constexpr slab_flags_t SLAB_NO_MAGAZINES = 1u << 31;

/// A slab: this header at the base of a slab_size-aligned mapping, then objperslab objects of
/// `size` bytes from first_off. Objects below `carved` have been handed out at least once;
/// those above it are untouched (never written: a fresh slab costs no RSS until used, unless
/// the cache has a ctor, which populates every object at once). Free objects below `carved`
/// are on `freelist`, linked through the word at the cache's free-pointer offset.
/// Protected by the cache's node lock, except head (immutable while the slab is mapped).
struct slab {
  slab_head head;
  slab* next;  ///< node list link (partial, full or empty list)
  slab* prev;
  void* freelist;
  std::uint32_t inuse;   ///< objects out of the slab (allocated or in some magazine)
  std::uint32_t carved;  ///< objects handed out from the untouched tail so far
  std::uint32_t list;    ///< which node list holds it (slab_list_id)
  std::uint32_t pad_;
};
static_assert(sizeof(slab) <= 64, "slab header must fit one cache line");

enum slab_list_id : std::uint32_t { SLAB_PARTIAL = 0, SLAB_FULL = 1, SLAB_EMPTY = 2, SLAB_NR_LISTS = 3 };

/// A circular doubly linked list of slabs with a count (the kernel's list_head + nr_*).
struct slab_list {
  slab* first = nullptr;
  std::size_t nr = 0;
};

/// map_aligned() - `size` bytes (a multiple of the page size) from mmap at an address aligned
/// to `align` (a power of two, >= page size); nullptr on failure. unmap_region() gives a mapping back. Both keep the
/// process-wide kmem_mapped_bytes() figure. Context: system calls; never take a kprim lock.
void* map_aligned(std::size_t size, std::size_t align) noexcept;
void unmap_region(void* p, std::size_t size) noexcept;

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
  bool debug;                  ///< SLAB_POISON or SLAB_RED_ZONE: no magazines, checks
  bool poison;                 ///< SLAB_POISON, no ctor, not SLAB_TYPESAFE_BY_RCU
  bool direct;                 ///< no magazines: debug caches and the magazine caches
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

  /// Per-thread caches of this cache (registry lock).
  detail::cpu_cache* cpus = nullptr;

  /// Objects freed in kprim interrupt handlers, linked through their free pointers: pushed
  /// lock-free by handlers, taken whole (exchange) by process context, which puts them back
  /// in their slabs. Until then they count as allocated (inuse_objs). Own line: handlers on
  /// every thread push here.
  alignas(64) std::atomic<void*> irq_freelist{nullptr};
};

namespace detail {

/// slab_of() - the slab holding object p of cache s.
inline slab* slab_of(const kmem_cache_s* s, const void* p) noexcept {
  return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(p) & s->slab_mask);
}

}  // namespace detail

}  // namespace kprim
