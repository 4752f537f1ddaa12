// kprim/kmalloc.hpp: the kernel's general-purpose allocator (kmalloc, kzalloc, kfree, ksize)
// over power-of-two kmem_cache size classes, kmalloc-8 .. kmalloc-8k; larger requests get a
// mapping of their own. For many objects of one type use a kmem_cache (kprim/slab.hpp):
// tighter packing, constructors, and its own statistics.
#pragma once

#include <kprim/slab.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

/// ZERO_SIZE_PTR - what kmalloc(0) returns: not NULL, but faults on any access; kfree() and
/// ksize() accept it. ZERO_OR_NULL_PTR(x) tests for it or NULL.
#define ZERO_SIZE_PTR (reinterpret_cast<void*>(16))
#define ZERO_OR_NULL_PTR(x) (reinterpret_cast<std::uintptr_t>(x) <= reinterpret_cast<std::uintptr_t>(ZERO_SIZE_PTR))

namespace kprim {

inline constexpr unsigned KMALLOC_SHIFT_LOW = 3;    ///< smallest class: 8 bytes
inline constexpr unsigned KMALLOC_SHIFT_HIGH = 13;  ///< largest class: 8 KiB
inline constexpr std::size_t KMALLOC_MIN_SIZE = std::size_t{1} << KMALLOC_SHIFT_LOW;
inline constexpr std::size_t KMALLOC_MAX_CACHE_SIZE = std::size_t{1} << KMALLOC_SHIFT_HIGH;
inline constexpr unsigned KMALLOC_NR_CACHES = KMALLOC_SHIFT_HIGH - KMALLOC_SHIFT_LOW + 1;

namespace detail {

/// The size-class caches, created on first use (kmalloc_cache_init; nullptr in a kprim
/// interrupt handler, which must not take its mutex) and never destroyed.
extern constinit std::atomic<kmem_cache_s*> kmalloc_caches[KMALLOC_NR_CACHES];
[[gnu::cold]] kmem_cache_s* kmalloc_cache_init(unsigned index) noexcept;
[[gnu::cold]] void* kmalloc_large(std::size_t size, gfp_t gfp) noexcept;
[[gnu::cold]] void kfree_large(slab_head* h) noexcept;

/// kmalloc_index() - the class of a request of 1 .. KMALLOC_MAX_CACHE_SIZE bytes.
constexpr unsigned kmalloc_index(std::size_t size) noexcept {
  return size <= KMALLOC_MIN_SIZE ? 0 : static_cast<unsigned>(std::bit_width(size - 1)) - KMALLOC_SHIFT_LOW;
}

inline slab_head* kmalloc_head(const void* p) noexcept {
  return reinterpret_cast<slab_head*>(reinterpret_cast<std::uintptr_t>(p) & ~(slab_min_size - 1));
}

}  // namespace detail

/// kmalloc() - at least `size` bytes, or nullptr. Context as kmem_cache_alloc() (gfp decides
/// whether it may sleep; GFP_ATOMIC fails instead of waiting for a lock).
/// Guarantees: up to 8 KiB the block comes from the smallest power-of-two class that holds it
/// and is aligned to that class size (natural alignment, at most 4096); larger blocks get a
/// mapping of their own, 64-byte aligned. kmalloc(0) returns ZERO_SIZE_PTR.
/// Cost: the kmem_cache_alloc() fast path plus a class lookup (a bit_width) for small sizes;
/// an mmap system call for large ones.
[[nodiscard]] inline void* kmalloc(std::size_t size, gfp_t gfp) noexcept {
  if (unlikely(size > KMALLOC_MAX_CACHE_SIZE)) return detail::kmalloc_large(size, gfp);
  if (unlikely(size == 0)) return ZERO_SIZE_PTR;
  const unsigned i = detail::kmalloc_index(size);
  kmem_cache_s* s = detail::kmalloc_caches[i].load(std::memory_order_acquire);
  if (unlikely(s == nullptr) && (s = detail::kmalloc_cache_init(i)) == nullptr) return nullptr;
  return kmem_cache_alloc(s, gfp);
}

/// kzalloc() - kmalloc() of zeroed memory.
[[nodiscard]] inline void* kzalloc(std::size_t size, gfp_t gfp) noexcept { return kmalloc(size, gfp | __GFP_ZERO); }

/// kmalloc_array() / kcalloc() - n * size bytes (zeroed for kcalloc), nullptr on overflow.
[[nodiscard]] inline void* kmalloc_array(std::size_t n, std::size_t size, gfp_t gfp) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return nullptr;
  return kmalloc(bytes, gfp);
}
[[nodiscard]] inline void* kcalloc(std::size_t n, std::size_t size, gfp_t gfp) noexcept {
  return kmalloc_array(n, size, gfp | __GFP_ZERO);
}

/// kfree() - free a block from kmalloc()/kzalloc()/kcalloc() (NULL and ZERO_SIZE_PTR are
/// ignored), from any thread. Requirement: p came from this family, not from a kmem_cache of
/// your own (kfree finds the class from the 64 KiB-aligned slab header below p).
/// Context: may sleep (as kmem_cache_free()); large blocks are unmapped at once.
inline void kfree(const void* p) noexcept {
  if (unlikely(ZERO_OR_NULL_PTR(p))) return;
  detail::slab_head* h = detail::kmalloc_head(p);
  if (unlikely(h->cache == nullptr)) return detail::kfree_large(h);
  kmem_cache_free(h->cache, const_cast<void*>(p));
}

/// kmalloc_shrink() - kmem_cache_shrink() on every size-class cache created so far: this
/// thread's magazines, every depot and every empty slab go back (other threads' magazines
/// stay, as for kmem_cache_shrink()). Large blocks are unmapped at kfree() already.
/// Context: may sleep. Returns the bytes given back to the OS.
std::size_t kmalloc_shrink() noexcept;

/// ksize() - the usable size of a kmalloc() block (its class size, or the large block's
/// length); 0 for NULL or ZERO_SIZE_PTR. The whole usable size may be written.
/// Context: any. Cost: two loads.
[[nodiscard]] inline std::size_t ksize(const void* p) noexcept {
  if (ZERO_OR_NULL_PTR(p)) return 0;
  const detail::slab_head* h = detail::kmalloc_head(p);
  return h->cache == nullptr ? h->size : kmem_cache_size(h->cache);
}

}  // namespace kprim
