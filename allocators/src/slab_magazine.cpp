// slab_magazine.cpp: the magazine layer of kmem_cache (Bonwick 2001): magazines and their
// own caches, the per-cache depot of full and empty magazines, and the per-thread caches
// (loaded + previous magazine) with their creation and thread-exit flush. The inline fast
// paths in kprim/slab.hpp pop and push the loaded magazine; the slow paths here trade
// magazines; below this layer are the slabs (slab_page.cpp).
#include "slab_internal.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <utility>

namespace kprim {

namespace detail {

constinit thread_local thread_cache* tls_thread_caches[max_caches] = {};

namespace {

// ---- magazines -------------------------------------------------------------------------------

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

// ---- per-thread caches -------------------------------------------------------------------------

/// Flush and free a per-thread cache, unlinking it from its cache (registry lock held).
void thread_cache_release(thread_cache* c) noexcept {
  kmem_cache_s* s = c->cache;
  magazine_flush(s, c->loaded);
  magazine_flush(s, c->previous);
  magazine_free(c->loaded);
  magazine_free(c->previous);
  list_del(&c->node);
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
    for (thread_cache*& c : tls_thread_caches)
      if (c != nullptr) thread_cache_release(c);
  }
};
thread_local tls_reaper t_reaper;

/// thread_cache_create() - this thread's cache for s, with two empty magazines. nullptr if
/// memory or (GFP_ATOMIC) the registry lock is not available.
thread_cache* thread_cache_create(kmem_cache_s* s, gfp_t gfp) noexcept {
  if (t_exiting) return nullptr;
  t_reaper.armed = true;  // registers the thread-exit flush
  auto* c = static_cast<thread_cache*>(std::malloc(sizeof(thread_cache)));
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
  list_add(&c->node, &s->threads);
  c->home = &tls_thread_caches[s->hot.id];
  *c->home = c;
  g_registry_lock.unlock();
  return c;
}

}  // namespace

void* magazine_alloc(kmem_cache_s* s, gfp_t gfp) noexcept {
  thread_cache* c = tls_thread_caches[s->hot.id];
  if (c == nullptr) c = thread_cache_create(s, gfp);
  if (c == nullptr) {
    void* p = nullptr;
    return slab_alloc_bulk(s, &p, 1, gfp) == 0 ? nullptr : p;
  }
  // Bonwick's magazine allocation: loaded, else previous, else a full one from the depot
  // (handing it our empty previous), else refill loaded from the slabs.
  for (;;) {
    magazine* m = c->loaded;
    if (m->rounds != 0) return m->objs()[--m->rounds];
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

void magazine_free_object(kmem_cache_s* s, void* objp) noexcept {
  thread_cache* c = tls_thread_caches[s->hot.id];
  if (c == nullptr) c = thread_cache_create(s, GFP_KERNEL);
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

std::size_t magazine_alloc_bulk(kmem_cache_s* s, void** p, std::size_t n) noexcept {
  std::size_t got = 0;
  if (thread_cache* c = tls_thread_caches[s->hot.id]) {  // never set for direct caches
    for (magazine* m : {c->loaded, c->previous}) {
      while (got < n && m->rounds != 0) p[got++] = m->objs()[--m->rounds];
    }
  }
  return got;
}

void magazine_unalloc_bulk(kmem_cache_s* s, void* const* p, std::size_t n) noexcept {
  // The two magazines held these objects a moment ago, so they have the room.
  thread_cache* c = tls_thread_caches[s->hot.id];
  for (std::size_t i = n; i-- > 0;) {
    magazine* m = c->loaded->rounds != c->loaded->capacity ? c->loaded : c->previous;
    m->objs()[m->rounds++] = p[i];
  }
}

std::size_t magazine_free_bulk(kmem_cache_s* s, void* const* p, std::size_t n) noexcept {
  std::size_t i = 0;
  if (thread_cache* c = tls_thread_caches[s->hot.id]) {
    for (magazine* m : {c->loaded, c->previous}) {
      while (i < n && m->rounds != m->capacity) m->objs()[m->rounds++] = p[i++];
    }
  }
  return i;
}

void magazines_flush_this_thread(kmem_cache_s* s) noexcept {
  if (thread_cache* c = tls_thread_caches[s->hot.id]) {
    magazine_flush(s, c->loaded);
    magazine_flush(s, c->previous);
  }
}

void depot_flush(kmem_cache_s* s) noexcept {
  s->depot_lock.lock();
  magazine* full = s->depot_full;
  magazine* empty = s->depot_empty;
  s->depot_full = s->depot_empty = nullptr;
  s->nr_full = s->nr_empty = s->depot_objs = 0;
  s->depot_lock.unlock();
  free_magazine_list(s, full);
  free_magazine_list(s, empty);
}

void thread_caches_release(kmem_cache_s* s) noexcept {
  while (!list_empty(&s->threads)) thread_cache_release(container_of<&thread_cache::node>(s->threads.next));
}

// ---- per-CPU magazines (SLAB_PERCPU_MAGAZINES) -------------------------------------------------

#if KPRIM_SLAB_PERCPU
constinit pcpu_table g_pcpu = {nullptr, 0};

namespace {

/// The magazine every unused slot points at: capacity 0, so a pop finds it empty and a push
/// finds it full, and the fast path needs no null check. Never written, never retired.
constinit magazine pcpu_none = {0, 0, nullptr};

/// possible_cpus() - the highest CPU number the kernel may report, plus one: from
/// /sys/devices/system/cpu/possible ("0-15", "0,2-3"), else the configured CPU count.
unsigned possible_cpus() noexcept {
  unsigned n = 0;
  if (std::FILE* f = std::fopen("/sys/devices/system/cpu/possible", "r")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, f) != nullptr) {
      for (char* q = buf; *q != '\0';) {
        char* end;
        const unsigned long v = std::strtoul(q, &end, 10);
        if (end == q) break;
        n = std::max<unsigned>(n, static_cast<unsigned>(v) + 1);
        q = (*end == '-' || *end == ',') ? end + 1 : end;
        if (*end == '\n') break;
      }
    }
    std::fclose(f);
  }
  const long conf = sysconf(_SC_NPROCESSORS_CONF);
  return std::max<unsigned>(n, conf > 0 ? static_cast<unsigned>(conf) : 1u);
}

void** pcpu_slot(unsigned cpu, std::uint32_t id) noexcept {
  return &g_pcpu.slots[std::size_t{cpu} * max_caches + id];
}

/// pcpu_get() - a magazine this thread owns for the slow paths: a full one from the depot
/// (want_full), else an empty one from the depot or a new one; nullptr if none can be had
/// without breaking gfp (GFP_ATOMIC: depot try-locked, no new magazine).
magazine* pcpu_get(kmem_cache_s* s, gfp_t gfp, bool want_full) noexcept {
  if (!lock_for(s->depot_lock, gfp)) return nullptr;
  magazine* m = nullptr;
  if (want_full && s->depot_full != nullptr) {
    m = s->depot_full;
    s->depot_full = m->next;
    --s->nr_full;
    s->depot_objs -= m->rounds;
  } else if (s->depot_empty != nullptr) {
    m = s->depot_empty;
    s->depot_empty = m->next;
    --s->nr_empty;
  }
  s->depot_lock.unlock();
  if (m == nullptr && gfpflags_allow_blocking(gfp)) m = magazine_new(s->magazine_rounds);
  return m;
}

/// pcpu_retire() - give back a magazine this thread took out of a slot (or never installed):
/// with objects to the depot's full list (over depot_max_full: its objects to the slabs), empty
/// to the depot's empty list. pcpu_none is ignored.
void pcpu_retire(kmem_cache_s* s, magazine* m) noexcept {
  if (m == nullptr || m == &pcpu_none) return;
  s->depot_lock.lock();
  if (m->rounds != 0 && s->nr_full >= s->depot_max_full) {
    s->depot_lock.unlock();
    magazine_flush(s, m);
    s->depot_lock.lock();
  }
  if (m->rounds != 0) {
    m->next = s->depot_full;
    s->depot_full = m;
    ++s->nr_full;
    s->depot_objs += m->rounds;
  } else {
    m->next = s->depot_empty;
    s->depot_empty = m;
    ++s->nr_empty;
  }
  s->depot_lock.unlock();
}

/// pcpu_install() - put m (owned by this thread) in the current CPU's slot of s with one
/// rseq exchange, and retire what was there. False when rseq is unusable on this thread
/// (registration failed, or a CPU number beyond the table): m is still the caller's.
bool pcpu_install(kmem_cache_s* s, magazine* m) noexcept {
  struct rseq* rs = rseq_x86::area();
  for (;;) {
    if (static_cast<std::int32_t>(__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED)) < 0) return false;
    const unsigned cpu = rseq_x86::cpu_start(rs);
    if (cpu >= g_pcpu.nr_cpus) return false;
    std::uintptr_t old;
    if (rseq_x86::xchg(rs, cpu, reinterpret_cast<std::uintptr_t*>(pcpu_slot(cpu, s->hot.id)),
                       reinterpret_cast<std::uintptr_t>(m), &old)) {
      pcpu_retire(s, reinterpret_cast<magazine*>(old));
      return true;
    }
  }
}

/// rseq_usable() - whether this thread's rseq area reports a CPU the table covers.
bool rseq_usable() noexcept {
  struct rseq* rs = rseq_x86::area();
  return static_cast<std::int32_t>(__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED)) >= 0 &&
         rseq_x86::cpu_start(rs) < g_pcpu.nr_cpus;
}

}  // namespace

bool pcpu_enable(kmem_cache_s* s) noexcept {
  if (__rseq_size == 0) return false;  // glibc did not register rseq (e.g. glibc.pthread.rseq=0)
  if (g_pcpu.slots == nullptr) {
    const unsigned n = possible_cpus();
    auto** slots = static_cast<void**>(std::malloc(sizeof(void*) * n * max_caches));
    if (slots == nullptr) return false;
    for (std::size_t i = 0; i < std::size_t{n} * max_caches; ++i) slots[i] = &pcpu_none;
    g_pcpu.slots = slots;  // never freed: slots of later caches live here too
    g_pcpu.nr_cpus = n;
  }
  s->hot.percpu = 1;
  return true;
}

void* pcpu_alloc(kmem_cache_s* s, gfp_t gfp) noexcept {
  void* p = nullptr;
  // Retry the fast path: its miss may have been an abort (preempted, migrated, signalled).
  for (int tries = 0; tries < 4 && rseq_usable(); ++tries) {
    if (pcpu_pop(s->hot.id, &p)) return p;
  }
  // GFP_ATOMIC does not trade magazines (retiring one waits for the depot lock): one object
  // from the slabs, the node lock only try-locked.
  magazine* m = nullptr;
  if (gfpflags_allow_blocking(gfp) && rseq_usable()) m = pcpu_get(s, gfp, true);
  if (m == nullptr) return slab_alloc_bulk(s, &p, 1, gfp) == 0 ? nullptr : p;  // locked path
  if (m->rounds == 0) {
    m->rounds = static_cast<std::uint32_t>(slab_alloc_bulk(s, m->objs(), m->capacity, gfp));
    if (m->rounds == 0) {
      pcpu_retire(s, m);
      return nullptr;
    }
  }
  p = m->objs()[--m->rounds];  // ours before the magazine is published
  if (!pcpu_install(s, m)) pcpu_retire(s, m);
  return p;
}

void pcpu_free_object(kmem_cache_s* s, void* objp) noexcept {
  for (int tries = 0; tries < 4 && rseq_usable(); ++tries) {
    if (pcpu_push(s->hot.id, objp)) return;
  }
  magazine* m = rseq_usable() ? pcpu_get(s, GFP_KERNEL, false) : nullptr;
  if (m == nullptr) return slab_free_bulk(s, &objp, 1);  // locked path
  m->objs()[m->rounds++] = objp;                         // an empty magazine: room for one
  if (!pcpu_install(s, m)) pcpu_retire(s, m);
}

void pcpu_flush_this_cpu(kmem_cache_s* s) noexcept {
  if (!rseq_usable()) return;
  magazine* none = &pcpu_none;
  struct rseq* rs = rseq_x86::area();
  for (;;) {
    const unsigned cpu = rseq_x86::cpu_start(rs);
    std::uintptr_t old;
    if (!rseq_x86::xchg(rs, cpu, reinterpret_cast<std::uintptr_t*>(pcpu_slot(cpu, s->hot.id)),
                        reinterpret_cast<std::uintptr_t>(none), &old))
      continue;
    auto* m = reinterpret_cast<magazine*>(old);
    if (m != &pcpu_none) {
      magazine_flush(s, m);
      magazine_free(m);
    }
    return;
  }
}

void pcpu_release(kmem_cache_s* s) noexcept {
  for (unsigned cpu = 0; cpu < g_pcpu.nr_cpus; ++cpu) {
    void** slot = pcpu_slot(cpu, s->hot.id);
    auto* m = static_cast<magazine*>(*slot);
    if (m != &pcpu_none) {
      magazine_flush(s, m);
      magazine_free(m);
    }
    *slot = &pcpu_none;
  }
  s->hot.percpu = 0;
}
#else
bool pcpu_enable(kmem_cache_s*) noexcept { return false; }
void* pcpu_alloc(kmem_cache_s* s, gfp_t gfp) noexcept { return magazine_alloc(s, gfp); }
void pcpu_free_object(kmem_cache_s* s, void* objp) noexcept { magazine_free_object(s, objp); }
void pcpu_flush_this_cpu(kmem_cache_s*) noexcept {}
void pcpu_release(kmem_cache_s*) noexcept {}
#endif  // KPRIM_SLAB_PERCPU

}  // namespace detail

}  // namespace kprim
