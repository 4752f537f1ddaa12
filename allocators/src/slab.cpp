// slab.cpp: kmem_cache's slow paths: slab lists, the magazine depot, per-thread cache set-up
// and tear-down, debug checks and statistics. The fast paths are inline in kprim/slab.hpp.
#include "slab_internal.hpp"

#include <kprim/rcu.hpp>

#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace kprim {

namespace detail {

constinit thread_local cpu_cache* tls_cpu_caches[max_caches] = {};

namespace {

std::atomic<std::size_t> g_mapped_bytes{0};

/// The registry: live caches by id, and every per-thread cache list (kmem_cache_s::cpus).
/// Lock order: registry -> depot -> node.
std::mutex g_registry_lock;
kmem_cache_s* g_caches[max_caches];

constexpr std::size_t page_size = 4096;
constexpr std::size_t max_object_size = std::size_t{1} << 20;
constexpr std::size_t max_slab_size = std::size_t{1} << 23;
constexpr unsigned min_objperslab = 4;

// ---- slab lists (node lock held) ------------------------------------------------------------

void list_add(slab_list& l, slab* sl, std::uint32_t id) noexcept {
  sl->list = id;
  if (l.first == nullptr) {
    sl->next = sl->prev = sl;
  } else {
    sl->next = l.first;
    sl->prev = l.first->prev;
    l.first->prev->next = sl;
    l.first->prev = sl;
  }
  l.first = sl;
  ++l.nr;
}

void list_del(slab_list& l, slab* sl) noexcept {
  if (sl->next == sl) {
    l.first = nullptr;
  } else {
    sl->prev->next = sl->next;
    sl->next->prev = sl->prev;
    if (l.first == sl) l.first = sl->next;
  }
  --l.nr;
}

void list_move(kmem_cache_s* s, slab* sl, std::uint32_t to) noexcept {
  if (sl->list == to) return;
  list_del(s->lists[sl->list], sl);
  list_add(s->lists[to], sl, to);
}

/// The list a slab belongs on for its inuse count.
std::uint32_t list_for(const kmem_cache_s* s, const slab* sl) noexcept {
  if (sl->inuse == 0) return SLAB_EMPTY;
  return sl->inuse == s->objperslab ? SLAB_FULL : SLAB_PARTIAL;
}

void* object_at(const kmem_cache_s* s, slab* sl, std::size_t i) noexcept {
  return reinterpret_cast<char*>(sl) + s->first_off + i * s->size;
}

#if KPRIM_KASAN
/// kasan_poison_free() - give a free object the shadow of a free object: poisoned over its
/// stride, except that a SLAB_TYPESAFE_BY_RCU cache keeps the object_size bytes addressable
/// (RCU readers may still read a freed object; KASAN skips such caches the same way). Those
/// bytes are never poisoned, not even for a moment: a concurrent reader would be reported.
void kasan_poison_free(const kmem_cache_s* s, void* obj) noexcept {
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

void*& freepointer(const kmem_cache_s* s, void* obj) noexcept {
  return *reinterpret_cast<void**>(static_cast<char*>(obj) + s->fp_offset);
}

// ---- debug patterns ------------------------------------------------------------------------

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
/// The state word alone (the last 8 bytes of the guard): tells allocated from free even when
/// an overflow has smashed the pad bytes before it.
bool state_word_is(const kmem_cache_s* s, void* obj, unsigned char v) noexcept {
  const unsigned char* b = static_cast<unsigned char*>(obj) + s->state_offset;
  for (int i = 0; i < 8; ++i)
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

[[noreturn, gnu::cold]] void slab_bug(const kmem_cache_s* s, const char* what, const void* obj) {
  std::fprintf(stderr, "BUG kmem_cache '%s': %s (object %p, object size %u)\n", s->name, what, obj,
               s->hot.object_size);
  std::fflush(stderr);
  std::abort();
}

/// Prepare every object of a freshly mapped slab: ctor (Bonwick: construct once, when the
/// slab is populated), and for debug caches the free-state guard and poison.
void slab_populate(kmem_cache_s* s, slab* sl) noexcept {
  if (s->ctor == nullptr && !s->debug) return;  // carved lazily, untouched until used
  for (std::size_t i = 0; i < s->objperslab; ++i) {
    void* obj = object_at(s, sl, i);
    kasan_window w(s, obj);  // free from the start: poisoned when the window closes
    if (s->ctor) s->ctor(obj);
    if (s->debug) {
      set_guard(s, obj, SLUB_RED_INACTIVE);
      if (s->poison) poison_object(s, obj);
    }
  }
}

/// slab_new() - map and populate a slab (no lock held: ctors may be slow).
slab* slab_new(kmem_cache_s* s) noexcept {
  auto* sl = static_cast<slab*>(map_aligned(s->slab_size, s->slab_size));
  if (sl == nullptr) return nullptr;
  sl->head.cache = s;
  sl->head.size = s->slab_size;
  sl->next = sl->prev = nullptr;
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

/// Put one object back (node lock held). An empty slab beyond the limit is unlinked and
/// pushed on *release (its `next`), to be released after the lock is dropped; with a null
/// `release` it stays on the empty list.
void slab_put(kmem_cache_s* s, void* p, slab** release) noexcept {
  slab* sl = slab_of(s, p);
  {
    kasan_window w(s, p);
    freepointer(s, p) = sl->freelist;
  }
  sl->freelist = p;
  --sl->inuse;
  list_move(s, sl, list_for(s, sl));
  if (release != nullptr && sl->inuse == 0 && s->lists[SLAB_EMPTY].nr > s->max_empty_slabs) {
    list_del(s->lists[SLAB_EMPTY], sl);
    sl->next = *release;
    *release = sl;
  }
}

/// Unmap a list of slabs (linked through `next`) now.
void unmap_slabs(kmem_cache_s* s, slab* list) noexcept {
  while (list != nullptr) {
    slab* next = list->next;
    unmap_region(list, s->slab_size);
    list = next;
  }
}

/// A SLAB_TYPESAFE_BY_RCU slab waiting for its grace period: the header stays (the callback
/// finds the cache and the length there), the rcu_head overlays the list links and freelist,
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

/// Hand empty slabs to call_rcu() (SLAB_TYPESAFE_BY_RCU). call_rcu() wants a registered
/// thread; one that is not registers for the call (it is not in a read-side section, then).
void defer_slabs(kmem_cache_s* s, slab* list) noexcept {
  const bool registered = rcu_flavour::registered();
  if (!registered) rcu_register_thread();
  while (list != nullptr) {
    slab* next = list->next;
    const slab_head head = list->head;
    auto* d = ::new (static_cast<void*>(list)) slab_rcu{head, {}};
    s->rcu_pending_slabs.fetch_add(1, std::memory_order_relaxed);
    call_rcu(&d->rcu, slab_free_rcu);
    list = next;
  }
  if (!registered) rcu_unregister_thread();
}

/// Give back slabs taken off the lists: unmapped now, or after a grace period for a
/// SLAB_TYPESAFE_BY_RCU cache. Context: no kprim lock held; may sleep (RCU registration).
void release_slabs(kmem_cache_s* s, slab* list) noexcept {
  if (list == nullptr) return;
  if (s->flags & SLAB_TYPESAFE_BY_RCU) defer_slabs(s, list);
  else unmap_slabs(s, list);
}

bool lock_for(std::mutex& m, gfp_t gfp) noexcept {
  if (gfpflags_allow_blocking(gfp)) {
    m.lock();
    return true;
  }
  return m.try_lock();
}

// ---- the slab layer ------------------------------------------------------------------------

/// slab_alloc_bulk() - up to n objects from the slabs into out[]; returns how many (0 on
/// failure: GFP_ATOMIC and a busy lock, or no memory). Partial slabs first, then empty ones,
/// then a new slab. With all_or_nothing a shortfall puts back what was taken and returns 0.
/// A caller that may sleep maps a new slab with the lock dropped (ctors may be slow, others
/// proceed meanwhile); an atomic caller keeps it: dropping it would mean try-locking again,
/// and failing then would leave it holding objects it could only give back by waiting.
std::size_t slab_alloc_bulk(kmem_cache_s* s, void** out, std::size_t n, gfp_t gfp,
                            bool all_or_nothing = false) noexcept {
  const bool can_wait = gfpflags_allow_blocking(gfp);
  std::size_t got = 0;
  if (!lock_for(s->node_lock, gfp)) return 0;
  while (got < n) {
    slab* sl = s->lists[SLAB_PARTIAL].first;
    if (sl == nullptr) sl = s->lists[SLAB_EMPTY].first;
    if (sl == nullptr) {
      if (can_wait) s->node_lock.unlock();
      sl = slab_new(s);
      if (can_wait) s->node_lock.lock();
      if (sl == nullptr) break;
      list_add(s->lists[SLAB_EMPTY], sl, SLAB_EMPTY);
    }
    const std::size_t before = got;
    while (got < n && sl->inuse < s->objperslab) out[got++] = slab_take(s, sl);
    s->inuse_objs += got - before;
    list_move(s, sl, list_for(s, sl));
  }
  slab* release = nullptr;
  if (got < n && all_or_nothing) {
    // An atomic caller of a SLAB_TYPESAFE_BY_RCU cache keeps emptied slabs: releasing them
    // might mean registering with RCU (a mutex).
    slab** rel = can_wait || !(s->flags & SLAB_TYPESAFE_BY_RCU) ? &release : nullptr;
    for (std::size_t i = 0; i < got; ++i) slab_put(s, out[i], rel);
    s->inuse_objs -= got;
    got = 0;
  }
  s->node_lock.unlock();
  release_slabs(s, release);
  return got;
}

/// slab_free_bulk() - return n objects to their slabs (one lock round trip).
void slab_free_bulk(kmem_cache_s* s, void* const* objs, std::size_t n) noexcept {
  if (n == 0) return;
  slab* release = nullptr;
  s->node_lock.lock();
  for (std::size_t i = 0; i < n; ++i) slab_put(s, objs[i], &release);
  s->inuse_objs -= n;
  s->node_lock.unlock();
  release_slabs(s, release);
}

// ---- magazines and the depot ---------------------------------------------------------------

/// Magazines come from caches of their own (Bonwick), one per capacity, so that their memory
/// goes back to the OS with their slabs (malloc would keep it in its heap). These caches have
/// no magazines themselves: they allocate from their slabs directly.
constexpr std::uint32_t magazine_capacities[] = {16, 32, 64, 128};

kmem_cache_s* magazine_cache(std::uint32_t capacity) noexcept {
  static kmem_cache_s* const caches[] = {
      kmem_cache_create("kmem_magazine_16", sizeof(magazine) + 16 * sizeof(void*), 64,
                        SLAB_PANIC | SLAB_NO_MAGAZINES, nullptr),
      kmem_cache_create("kmem_magazine_32", sizeof(magazine) + 32 * sizeof(void*), 64,
                        SLAB_PANIC | SLAB_NO_MAGAZINES, nullptr),
      kmem_cache_create("kmem_magazine_64", sizeof(magazine) + 64 * sizeof(void*), 64,
                        SLAB_PANIC | SLAB_NO_MAGAZINES, nullptr),
      kmem_cache_create("kmem_magazine_128", sizeof(magazine) + 128 * sizeof(void*), 64,
                        SLAB_PANIC | SLAB_NO_MAGAZINES, nullptr),
  };
  for (std::size_t i = 0; i < std::size(magazine_capacities); ++i)
    if (magazine_capacities[i] == capacity) return caches[i];
  return nullptr;
}

void magazine_free(magazine* m) noexcept {
  if (m == nullptr) return;
  void* p = m;
  kmem_cache_s* mc = magazine_cache(m->capacity);
  kasan_slab_free(mc, p);
  slab_free_bulk(mc, &p, 1);
}

magazine* magazine_new(std::uint32_t capacity) noexcept {
  void* p = nullptr;
  kmem_cache_s* mc = magazine_cache(capacity);
  if (slab_alloc_bulk(mc, &p, 1, GFP_KERNEL) == 0) return nullptr;
  kasan_slab_alloc(mc, p);
  auto* m = static_cast<magazine*>(p);
  m->rounds = 0;
  m->capacity = capacity;
  m->next = nullptr;
  return m;
}

/// Return a magazine's objects to the slabs and empty it.
void magazine_flush(kmem_cache_s* s, magazine* m) noexcept {
  slab_free_bulk(s, m->objs(), m->rounds);
  m->rounds = 0;
}

void free_magazine_list(kmem_cache_s* s, magazine* m) noexcept {
  while (m != nullptr) {
    magazine* next = m->next;
    magazine_flush(s, m);
    magazine_free(m);
    m = next;
  }
}

/// Flush and free a per-thread cache, unlinking it from its cache (registry lock held).
void cpu_cache_release(cpu_cache* c) noexcept {
  kmem_cache_s* s = c->cache;
  magazine_flush(s, c->loaded);
  magazine_flush(s, c->previous);
  magazine_free(c->loaded);
  magazine_free(c->previous);
  if (c->prev) c->prev->next = c->next;
  else s->cpus = c->next;
  if (c->next) c->next->prev = c->prev;
  *c->home = nullptr;
  std::free(c);
}

/// Set once this thread's per-thread caches have been given back: an allocation from a later
/// thread_local destructor then goes to the slabs directly instead of creating a cache
/// that nothing would flush.
constinit thread_local bool t_exiting = false;

/// At thread exit, give every per-thread cache of this thread back.
struct tls_reaper {
  bool armed = false;
  ~tls_reaper() {
    t_exiting = true;
    std::lock_guard<std::mutex> g(g_registry_lock);
    for (cpu_cache*& c : tls_cpu_caches)
      if (c != nullptr) cpu_cache_release(c);
  }
};
thread_local tls_reaper t_reaper;

/// cpu_cache_create() - this thread's cache for s, with two empty magazines. nullptr if
/// memory or (GFP_ATOMIC) the registry lock is not available.
cpu_cache* cpu_cache_create(kmem_cache_s* s, gfp_t gfp) noexcept {
  if (t_exiting) return nullptr;
  t_reaper.armed = true;  // registers the thread-exit flush
  auto* c = static_cast<cpu_cache*>(std::malloc(sizeof(cpu_cache)));
  magazine* a = magazine_new(s->magazine_rounds);
  magazine* b = magazine_new(s->magazine_rounds);
  if (c == nullptr || a == nullptr || b == nullptr || !lock_for(g_registry_lock, gfp)) {
    std::free(c);
    magazine_free(a);
    magazine_free(b);
    return nullptr;
  }
  c->loaded = a;
  c->previous = b;
  c->cache = s;
  c->prev = nullptr;
  c->next = s->cpus;
  if (s->cpus) s->cpus->prev = c;
  s->cpus = c;
  c->home = &tls_cpu_caches[s->hot.id];
  *c->home = c;
  g_registry_lock.unlock();
  return c;
}

// ---- debug caches: every object checked under the node lock --------------------------------

void* debug_alloc(kmem_cache_s* s, gfp_t gfp) noexcept {
  void* p = nullptr;
  if (slab_alloc_bulk(s, &p, 1, gfp) == 0) return nullptr;
  // The object is ours now: nobody else can reach it, so the checks need no lock.
  kasan_window w(s, p);
  if (!state_word_is(s, p, SLUB_RED_INACTIVE))
    slab_bug(s, "free object's red zone/state word overwritten (write after free or overflow "
                "from the previous object)", p);
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
  slab* release = nullptr;
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
  release_slabs(s, release);
}

// ---- kprim interrupt handlers: never the magazines, never a lock wait -----------------------
/// Debug caches: the state word of an object freed in a handler, until the drain.
constexpr unsigned char slab_irq_deferred = 0xdd;
// A handler may have interrupted this thread anywhere in the code above (a magazine half
// popped, the depot or node mutex held), so it uses neither the per-thread cache nor a lock it
// would wait for. See "Interrupt handlers" in kprim/slab.hpp.

/// irq_alloc() - one object for a handler: the node mutex is only try-locked (busy, by the
/// interrupted code or another thread: nullptr, as GFP_ATOMIC may return), then a slab object
/// (a new slab is mapped with the lock held: mmap is a system call, safe in a handler).
void* irq_alloc(kmem_cache_s* s) noexcept {
  void* p = nullptr;
  if (s->debug) return debug_alloc(s, GFP_ATOMIC);
  if (slab_alloc_bulk(s, &p, 1, GFP_ATOMIC) == 0) return nullptr;
  return p;
}

/// irq_defer_free() - a handler's free: push objp on the cache's deferred list (lock-free).
/// Only pushes race with each other (process context takes the whole list with one exchange),
/// so the compare-and-swap has no ABA. objp keeps its debug state (still "allocated") until
/// the drain frees it with every check.
void irq_defer_free(kmem_cache_s* s, void* objp) noexcept {
  kasan_window w(s, objp);
  if (s->debug) {
    // A second deferred free would link the object into the list twice (a cycle): catch it
    // here with a state word of its own, which the drain turns back into "allocated" before
    // debug_free's checks. A state word that is neither is left for debug_free to report.
    if (state_word_is(s, objp, SLUB_RED_INACTIVE) || state_word_is(s, objp, slab_irq_deferred))
      slab_bug(s, "double free", objp);
    if (state_word_is(s, objp, SLUB_RED_ACTIVE))
      std::memset(static_cast<unsigned char*>(objp) + s->state_offset, slab_irq_deferred, 8);
  }
  void* head = s->irq_freelist.load(std::memory_order_relaxed);
  do {
    freepointer(s, objp) = head;
  } while (!s->irq_freelist.compare_exchange_weak(head, objp, std::memory_order_release, std::memory_order_relaxed));
}

/// drain_irq_frees() - give the handlers' deferred frees back to their slabs. Process context
/// only (takes the node mutex, may release slabs).
void drain_irq_frees(kmem_cache_s* s) noexcept {
  if (s->irq_freelist.load(std::memory_order_relaxed) == nullptr) return;
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
        if (state_word_is(s, p, slab_irq_deferred))
          std::memset(static_cast<unsigned char*>(p) + s->state_offset, SLUB_RED_ACTIVE, 8);
      }
      debug_free(s, p);
      p = next;
    }
    return;
  }
  if (p == nullptr) return;
  slab* release = nullptr;
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
  release_slabs(s, release);
}

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

#if KPRIM_KASAN
void kasan_slab_alloc(kmem_cache_s* s, void* objp) noexcept { ASAN_UNPOISON_MEMORY_REGION(objp, s->hot.object_size); }
void kasan_slab_free(kmem_cache_s* s, void* objp) noexcept { kasan_poison_free(s, objp); }
#endif

void unmap_region(void* p, std::size_t size) noexcept {
#if KPRIM_KASAN
  ASAN_UNPOISON_MEMORY_REGION(p, size);  // a later mapping at this address starts clean
#endif
  munmap(p, size);
  g_mapped_bytes.fetch_sub(size, std::memory_order_relaxed);
}

void* kmem_cache_alloc_slow(kmem_cache_s* s, gfp_t gfp) noexcept {
  void* p = nullptr;
  const bool irq = in_kprim_irq();
  if (!irq && gfpflags_allow_blocking(gfp)) drain_irq_frees(s);
  if (irq) {
    p = irq_alloc(s);
    if (p == nullptr) return nullptr;
  } else if (s->debug) {
    p = debug_alloc(s, gfp);
  } else if (s->direct) {
    if (slab_alloc_bulk(s, &p, 1, gfp) == 0) return nullptr;
  } else {
    cpu_cache* c = tls_cpu_caches[s->hot.id];
    if (c == nullptr) c = cpu_cache_create(s, gfp);
    if (c == nullptr) {
      if (slab_alloc_bulk(s, &p, 1, gfp) == 0) return nullptr;
    } else {
      // Bonwick's magazine allocation: loaded, else previous, else a full one from the
      // depot (handing it our empty previous), else refill loaded from the slabs.
      for (;;) {
        magazine* m = c->loaded;
        if (m->rounds != 0) {
          p = m->objs()[--m->rounds];
          break;
        }
        if (c->previous->rounds != 0) {
          std::swap(c->loaded, c->previous);
          continue;
        }
        if (!lock_for(s->depot_lock, gfp)) return nullptr;
        if (magazine* full = s->depot_full) {
          s->depot_full = full->next;
          --s->nr_full;
          s->depot_objs -= full->rounds;
          c->previous->next = s->depot_empty;
          s->depot_empty = c->previous;
          ++s->nr_empty;
          c->previous = c->loaded;
          c->loaded = full;
          s->depot_lock.unlock();
          continue;
        }
        s->depot_lock.unlock();
        m->rounds = static_cast<std::uint32_t>(slab_alloc_bulk(s, m->objs(), m->capacity, gfp));
        if (m->rounds == 0) return nullptr;
      }
    }
  }
  kasan_slab_alloc(s, p);
  if (gfp & __GFP_ZERO) std::memset(p, 0, s->hot.object_size);
  return p;
}

void kmem_cache_free_slow(kmem_cache_s* s, void* objp) noexcept {
  if (in_kprim_irq()) return irq_defer_free(s, objp);
  drain_irq_frees(s);
  if (s->debug) return debug_free(s, objp);
  if (s->direct) return slab_free_bulk(s, &objp, 1);
  cpu_cache* c = tls_cpu_caches[s->hot.id];
  if (c == nullptr) c = cpu_cache_create(s, GFP_KERNEL);
  if (c == nullptr) return slab_free_bulk(s, &objp, 1);
  // Bonwick's magazine free: loaded, else an empty previous, else trade the full previous
  // for an empty magazine at the depot; over the depot's limit, flush previous to the slabs.
  for (;;) {
    magazine* m = c->loaded;
    if (m->rounds != m->capacity) {
      m->objs()[m->rounds++] = objp;
      return;
    }
    if (c->previous->rounds == 0) {
      std::swap(c->loaded, c->previous);
      continue;
    }
    s->depot_lock.lock();
    if (s->nr_full < s->depot_max_full) {
      magazine* e = s->depot_empty;
      if (e != nullptr) {
        s->depot_empty = e->next;
        --s->nr_empty;
      } else {
        s->depot_lock.unlock();
        e = magazine_new(s->magazine_rounds);
        if (e == nullptr) {
          magazine_flush(s, c->previous);
          continue;
        }
        s->depot_lock.lock();
      }
      c->previous->next = s->depot_full;
      s->depot_full = c->previous;
      ++s->nr_full;
      s->depot_objs += c->previous->rounds;
      s->depot_lock.unlock();
      c->previous = c->loaded;
      c->loaded = e;
      continue;
    }
    s->depot_lock.unlock();
    magazine_flush(s, c->previous);
  }
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
  if (flags & ~(SLAB_HWCACHE_ALIGN | SLAB_POISON | SLAB_RED_ZONE | SLAB_PANIC | SLAB_TYPESAFE_BY_RCU | SLAB_NO_MAGAZINES))
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
  s->magazine_rounds = s->size <= 256 ? 128 : s->size <= 1024 ? 64 : s->size <= 4096 ? 32 : 16;

  std::lock_guard<std::mutex> g(g_registry_lock);
  unsigned id = 0;
  while (id < max_caches && g_caches[id] != nullptr) ++id;
  if (id == max_caches) {
    delete s;
    return fail("too many caches");
  }
  s->hot.id = id;
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
    cpu_cache* c = tls_cpu_caches[s->hot.id];  // never set for direct caches
    if (c != nullptr) {
      for (magazine* m : {c->loaded, c->previous}) {
        while (got < size && m->rounds != 0) p[got++] = m->objs()[--m->rounds];
      }
    }
    if (got < size && slab_alloc_bulk(s, p + got, size - got, gfp, true) == 0) {
      // Only magazine objects were taken: they go back where they came from, without a lock
      // (the two magazines held them a moment ago, so they have the room).
      for (std::size_t i = got; i-- > 0;) {
        magazine* m = c->loaded->rounds != c->loaded->capacity ? c->loaded : c->previous;
        m->objs()[m->rounds++] = p[i];
      }
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
  std::size_t i = 0;
  if (cpu_cache* c = tls_cpu_caches[s->hot.id]) {
    for (magazine* m : {c->loaded, c->previous}) {
      while (i < size && m->rounds != m->capacity) m->objs()[m->rounds++] = p[i++];
    }
  }
  slab_free_bulk(s, p + i, size - i);
}

std::size_t kmem_cache_shrink(kmem_cache_t* s) noexcept {
  drain_irq_frees(s);
  if (cpu_cache* c = tls_cpu_caches[s->hot.id]) {
    magazine_flush(s, c->loaded);
    magazine_flush(s, c->previous);
  }
  s->depot_lock.lock();
  magazine* full = s->depot_full;
  magazine* empty = s->depot_empty;
  s->depot_full = s->depot_empty = nullptr;
  s->nr_full = s->nr_empty = s->depot_objs = 0;
  s->depot_lock.unlock();
  free_magazine_list(s, full);
  free_magazine_list(s, empty);

  s->node_lock.lock();
  slab_list& e = s->lists[SLAB_EMPTY];
  slab* release = nullptr;
  while (slab* sl = e.first) {
    list_del(e, sl);
    sl->next = release;
    release = sl;
  }
  s->node_lock.unlock();
  std::size_t bytes = 0;
  for (slab* sl = release; sl != nullptr; sl = sl->next) bytes += s->slab_size;
  release_slabs(s, release);
  return bytes;
}

std::size_t kmem_cache_destroy(kmem_cache_t* s) noexcept {
  if (s == nullptr) return 0;
  drain_irq_frees(s);
  {
    std::lock_guard<std::mutex> g(g_registry_lock);
    while (s->cpus != nullptr) cpu_cache_release(s->cpus);
    g_caches[s->hot.id] = nullptr;
  }
  free_magazine_list(s, s->depot_full);
  free_magazine_list(s, s->depot_empty);
  s->depot_full = s->depot_empty = nullptr;

  const std::size_t leaked = s->inuse_objs;
  slab* release = nullptr;
  for (std::uint32_t id = 0; id < SLAB_NR_LISTS; ++id) {
    slab_list& l = s->lists[id];
    while (slab* sl = l.first) {
      list_del(l, sl);
      if (sl->inuse != 0) continue;  // holds live objects: left mapped
      sl->next = release;
      release = sl;
    }
  }
  if (s->flags & SLAB_TYPESAFE_BY_RCU) {
    synchronize_rcu();        // readers of freed objects are done with them
    unmap_slabs(s, release);
    rcu_barrier();            // slabs deferred before (shrink, limit, the flushes above) are gone
  } else {
    unmap_slabs(s, release);
  }
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

void kmem_cache_set_tunables(kmem_cache_t* s, const kmem_cache_tunables& t) noexcept {
  {
    std::lock_guard<std::mutex> g(s->depot_lock);
    s->depot_max_full = t.depot_max_full;
  }
  std::lock_guard<std::mutex> g(s->node_lock);
  s->max_empty_slabs = t.max_empty_slabs;
}

slabinfo kmem_cache_get_info(kmem_cache_t* s) noexcept {
  slabinfo i{};
  std::snprintf(i.name, sizeof i.name, "%s", s->name);
  i.objsize = s->hot.object_size;
  i.size = s->size;
  i.objperslab = s->objperslab;
  i.pagesperslab = s->slab_size / page_size;
  i.magazine_rounds = s->debug ? 0 : s->magazine_rounds;
  drain_irq_frees(s);  // handlers' deferred frees count as free, as they are
  {
    std::lock_guard<std::mutex> g(s->depot_lock);
    i.depot_objs = s->depot_objs;
    i.depot_full = s->nr_full;
    i.depot_max_full = s->depot_max_full;
  }
  std::lock_guard<std::mutex> g(s->node_lock);
  i.empty_slabs = s->lists[SLAB_EMPTY].nr;
  i.active_slabs = s->lists[SLAB_PARTIAL].nr + s->lists[SLAB_FULL].nr;
  i.num_slabs = i.active_slabs + i.empty_slabs;
  i.num_objs = i.num_slabs * s->objperslab;
  i.active_objs = s->inuse_objs >= i.depot_objs ? s->inuse_objs - i.depot_objs : 0;
  i.rcu_pending_slabs = s->rcu_pending_slabs.load(std::memory_order_relaxed);
  i.mapped_bytes = (i.num_slabs + i.rcu_pending_slabs) * s->slab_size;
  i.max_empty_slabs = s->max_empty_slabs;
  return i;
}

void slabinfo_show(std::FILE* out) noexcept {
  std::fprintf(out, "slabinfo - version: 2.1 (kprim)\n");
  std::fprintf(out,
               "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : "
               "tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> "
               "<sharedavail> : depot <full_magazines> <objects>\n");
  std::lock_guard<std::mutex> g(g_registry_lock);
  for (kmem_cache_s* s : g_caches) {
    if (s == nullptr) continue;
    const slabinfo i = kmem_cache_get_info(s);
    std::fprintf(out, "%-17s %6zu %6zu %6zu %4zu %4zu : tunables %4zu %4u %4u : slabdata %6zu %6zu %6u : depot %4zu %6zu\n",
                 i.name, i.active_objs, i.num_objs, i.size, i.objperslab, i.pagesperslab,
                 i.magazine_rounds, i.depot_max_full, i.max_empty_slabs, i.active_slabs, i.num_slabs, 0u,
                 i.depot_full, i.depot_objs);
  }
}

std::size_t kmem_mapped_bytes() noexcept { return g_mapped_bytes.load(std::memory_order_relaxed); }

}  // namespace kprim
