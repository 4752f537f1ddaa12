// slab_debug.cpp: the debug layer of kmem_cache: SLAB_POISON and SLAB_RED_ZONE caches, whose
// every object is checked on alloc and free (as SLUB's debug caches: no magazines, the node
// lock), and the KASAN-style shadow annotations of AddressSanitizer builds. See "Debug caches"
// in kprim/slab.hpp; the window helpers every layer uses are in slab_internal.hpp.
#include "slab_internal.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kprim::detail {

namespace {

unsigned char* state_bytes(const kmem_cache_s* s, void* obj) noexcept {
  return static_cast<unsigned char*>(obj) + s->hot.object_size;
}
/// Debug guard: the pad bytes after the object and the 8-byte state word after them.
std::size_t state_len(const kmem_cache_s* s) noexcept { return s->state_offset + 8 - s->hot.object_size; }

void set_guard(const kmem_cache_s* s, void* obj, unsigned char v) noexcept {
  std::memset(state_bytes(s, obj), v, state_len(s));
}
bool guard_is(const kmem_cache_s* s, void* obj, unsigned char v) noexcept {
  const unsigned char* b = state_bytes(s, obj);
  for (std::size_t i = 0, n = state_len(s); i < n; ++i)
    if (b[i] != v) return false;
  return true;
}

void poison_object(const kmem_cache_s* s, void* obj) noexcept {
  auto* b = static_cast<unsigned char*>(obj);
  std::memset(b, POISON_FREE, s->hot.object_size - 1);
  b[s->hot.object_size - 1] = POISON_END;
}
bool poison_intact(const kmem_cache_s* s, void* obj) noexcept {
  const auto* b = static_cast<const unsigned char*>(obj);
  const std::size_t n = s->hot.object_size;
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (b[i] != POISON_FREE) return false;
  return b[n - 1] == POISON_END;
}

}  // namespace

/// The state word alone (the last 8 bytes of the guard): tells allocated from free even when
/// an overflow has smashed the pad bytes before it.
bool state_word_is(const kmem_cache_s* s, void* obj, unsigned char v) noexcept {
  const unsigned char* b = static_cast<unsigned char*>(obj) + s->state_offset;
  for (int i = 0; i < 8; ++i)
    if (b[i] != v) return false;
  return true;
}

void set_state_word(const kmem_cache_s* s, void* obj, unsigned char v) noexcept {
  std::memset(static_cast<unsigned char*>(obj) + s->state_offset, v, 8);
}

void debug_init_object(const kmem_cache_s* s, void* obj) noexcept {
  set_guard(s, obj, SLUB_RED_INACTIVE);
  if (s->poison) poison_object(s, obj);
}

void slab_bug(const kmem_cache_s* s, const char* what, const void* obj) {
  std::fprintf(stderr, "BUG kmem_cache '%s': %s (object %p, object size %u)\n", s->name, what, obj,
               s->hot.object_size);
  std::fflush(stderr);
  std::abort();
}

void* debug_alloc(kmem_cache_s* s, gfp_t gfp) noexcept {
  void* p = nullptr;
  if (slab_alloc_bulk(s, &p, 1, gfp) == 0) return nullptr;
  // The object is ours now: nobody else can reach it, so the checks need no lock.
  kasan_window w(s, p);
  if (!state_word_is(s, p, SLUB_RED_INACTIVE))
    slab_bug(s,
             "free object's red zone/state word overwritten (write after free or overflow "
             "from the previous object)",
             p);
  if ((s->flags & SLAB_RED_ZONE) && !guard_is(s, p, SLUB_RED_INACTIVE))
    slab_bug(s, "red zone of a free object overwritten (overflow after free)", p);
  if (s->poison && !poison_intact(s, p)) slab_bug(s, "poison overwritten: use after free", p);
  set_guard(s, p, SLUB_RED_ACTIVE);
  return p;
}

void debug_free(kmem_cache_s* s, void* p) noexcept {
  slab* sl = slab_of(s, p);
  if (sl->head.cache != s) slab_bug(s, "kmem_cache_free: object does not belong to this cache", p);
  const std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(sl);
  if (off < s->first_off || (off - s->first_off) % s->size != 0 ||
      (off - s->first_off) / s->size >= s->objperslab)
    slab_bug(s, "kmem_cache_free: pointer is not the start of an object", p);
  LIST_HEAD(release);
  s->node_lock.lock();
  {
    // Closed before the unlock: once the object is on its slab's freelist another thread, or
    // a handler interrupting this one, may allocate it, and a window closing after that
    // would poison an allocated object.
    kasan_window w(s, p);
    if (state_word_is(s, p, SLUB_RED_INACTIVE)) {
      s->node_lock.unlock();
      slab_bug(s, "double free", p);
    }
    if (!state_word_is(s, p, SLUB_RED_ACTIVE) || ((s->flags & SLAB_RED_ZONE) && !guard_is(s, p, SLUB_RED_ACTIVE))) {
      s->node_lock.unlock();
      slab_bug(s, "red zone overwritten: write past the end of the object", p);
    }
    set_guard(s, p, SLUB_RED_INACTIVE);
    if (s->poison) poison_object(s, p);
  }
  slab_put(s, p, &release);
  --s->inuse_objs;
  s->node_lock.unlock();
  release_slabs(s, &release);
}

#if KPRIM_KASAN
void kasan_slab_alloc(kmem_cache_s* s, void* objp) noexcept { ASAN_UNPOISON_MEMORY_REGION(objp, s->hot.object_size); }
void kasan_slab_free(kmem_cache_s* s, void* objp) noexcept { kasan_poison_free(s, objp); }
#endif

}  // namespace kprim::detail
