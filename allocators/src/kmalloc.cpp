// kmalloc.cpp: the kmalloc layer over kmem_cache: creation of the size-class caches, the
// large-block path and kmalloc_shrink().
// The fast paths are inline in kprim/kmalloc.hpp.
#include <kprim/kmalloc.hpp>

#include "slab_internal.hpp"

#include <cstdio>

namespace kprim::detail {

constinit std::atomic<kmem_cache_s*> kmalloc_caches[KMALLOC_NR_CACHES] = {};

namespace {
std::mutex g_kmalloc_init_lock;
constexpr std::size_t large_header = 64;  ///< slab_head at the mapping base, block after it
}  // namespace

kmem_cache_s* kmalloc_cache_init(unsigned index) noexcept {
  if (in_kprim_irq()) return nullptr;  // creating a cache takes mutexes and allocates
  std::lock_guard<std::mutex> g(g_kmalloc_init_lock);
  kmem_cache_s* s = kmalloc_caches[index].load(std::memory_order_relaxed);
  if (s != nullptr) return s;
  const std::size_t size = std::size_t{1} << (index + KMALLOC_SHIFT_LOW);
  char name[32];
  if (size >= 1024) std::snprintf(name, sizeof name, "kmalloc-%zuk", size / 1024);
  else std::snprintf(name, sizeof name, "kmalloc-%zu", size);
  // Natural alignment up to a page, as the kernel guarantees for power-of-two sizes. The
  // class caches must use slab_min_size slabs: kfree() finds the header by that mask.
  s = kmem_cache_create(name, size, std::min<std::size_t>(size, 4096), SLAB_PANIC, nullptr);
  if (s->slab_size != slab_min_size) {
    std::fprintf(stderr, "kmalloc: cache %s has %zu-byte slabs, kfree needs %zu\n", name, s->slab_size, slab_min_size);
    std::abort();
  }
  kmalloc_caches[index].store(s, std::memory_order_release);
  return s;
}

void* kmalloc_large(std::size_t size, gfp_t gfp) noexcept {
  constexpr std::size_t page = 4096;
  if (size > (~std::size_t{0} >> 1)) return nullptr;
  const std::size_t map = (large_header + size + page - 1) / page * page;
  auto* h = static_cast<slab_head*>(map_aligned(map, slab_min_size));
  if (h == nullptr) return nullptr;
  h->cache = nullptr;
  h->size = map - large_header;
  (void)gfp;  // fresh anonymous pages are already zero: __GFP_ZERO costs nothing here
  return reinterpret_cast<char*>(h) + large_header;
}

void kfree_large(slab_head* h) noexcept { unmap_region(h, h->size + large_header); }

}  // namespace kprim::detail

std::size_t kprim::kmalloc_shrink() noexcept {
  std::size_t bytes = 0;
  for (auto& c : detail::kmalloc_caches)
    if (kmem_cache_s* s = c.load(std::memory_order_acquire)) bytes += kmem_cache_shrink(s);
  return bytes;
}
