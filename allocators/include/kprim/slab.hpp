// kprim/slab.hpp: the kernel's object-cache allocator (kmem_cache_create/alloc/free) for
// fixed-size objects, with Bonwick's per-thread (or per-CPU) magazines over a locked depot and
// mmap'ed slabs.
// For variable sizes use kprim/kmalloc.hpp; for objects that outlive no thread and need no
// cache-wide sharing, a plain free list in the owner is cheaper still.
// Tests: allocators/tests/slab_test.cpp (and slab_{stress,debug,rcu,irq}_test.cpp);
// benchmark: bench/bench_slab.cpp (against glibc, jemalloc, tcmalloc, mimalloc, tbbmalloc).
//
// Layers (Bonwick, "Magazines and Vmem", USENIX 2001; the kernel's SLAB/SLUB), one source
// file each under allocators/src/ (the fast paths are inline below):
//   per-thread cache  a `loaded` and a `previous` magazine (arrays of object pointers) per
//                     thread per cache. alloc pops from `loaded`, free pushes to it: no lock, no
//                     atomic instruction. Frees from any thread land in the freeing thread's
//                     magazine, so a cross-thread free costs what a local one does.
//   depot             per cache, full and empty magazines under one mutex; a thread trades a
//                     whole magazine at a time (one lock round trip per `magazine_rounds`
//                     objects). GFP_ATOMIC callers only try-lock it and fail instead of waiting.
//                     With the per-thread caches: slab_magazine.cpp.
//   slab layer        slabs of slab_size bytes (64 KiB unless objects are big), mmap'ed at an
//                     address aligned to their size, header at the base; partial, full and
//                     empty lists (kprim::list_head) under the node mutex. Constructors run
//                     when a slab is populated; objects go back to magazines and slabs in
//                     constructed state. Empty slabs beyond `max_empty_slabs` are unmapped,
//                     the rest on shrink. slab_page.cpp.
// Cache creation, shrink and destroy, and the out-of-line slow paths that pick a layer live in
// slab.cpp; statistics (slabinfo) and tunables in slab_stats.cpp.
// Debug caches (SLAB_POISON, SLAB_RED_ZONE; slab_debug.cpp) bypass the magazines and check
// every object on alloc and free under the node lock, as SLUB's debug caches do. Under
// AddressSanitizer every cache also keeps ASan's shadow memory (KASAN-style, slab_debug.cpp
// too): free objects and the padding after allocated ones are poisoned; the allocator's own
// accesses to free objects (free pointer, patterns, ctor) open the shadow briefly, so
// SLAB_POISON/SLAB_RED_ZONE and ASan coexist.
//
// Interrupt handlers (kprim/irq.hpp; slab_irq.cpp): a kprim handler may interrupt its thread
// anywhere, in the middle of this thread's magazine pop or of a slow path holding the depot or
// node mutex.
// So in a handler (detail::slab_in_kprim_irq(): one TLS load on each fast path) allocation and free
// never touch the per-thread magazines and never wait for a lock: kmem_cache_alloc try-locks
// the node mutex and takes one object from a slab (nullptr if the interrupted code, or another
// thread, holds it), kmem_cache_free pushes the object onto the cache's lock-free deferred-free
// list (a Treiber push through the object's free pointer; only pushes race, so no ABA), which
// process context drains into the slabs on its next slow path, shrink, get_info or destroy
// (the kernel's kfree_nolock()/defer_free). GFP_KERNEL in a handler is reported by the debug
// layer (might_sleep) and treated as GFP_ATOMIC. The first kmalloc() of a size class creates
// its cache (a mutex): in a handler, before any process-context use, it returns nullptr.
//
// Thread model: per-thread by default; per-CPU with SLAB_PERCPU_MAGAZINES. A thread's
// magazines are flushed back to the slabs when it exits.
//
// Per-CPU magazines (SLAB_PERCPU_MAGAZINES; slab_magazine.cpp, the sequences in
// kprim/percpu/rseq.hpp): the kernel's per-CPU slab caches, on glibc's rseq registration.
//   layout      one slot per (CPU, cache) in a table of nr_cpus x max_caches pointers
//               (detail::g_pcpu); a slot points at that CPU's one loaded magazine, or at
//               pcpu_none, a magazine of capacity 0 that every pop finds empty and every push
//               full, so the fast path has no null check.
//   fast path   alloc: read cpu_id_start, then one restartable sequence (rseq_x86::stack_pop):
//               arm the descriptor, check cpu_id, load the slot, load rounds, branch out if 0,
//               load objs[rounds - 1], commit by storing rounds - 1. free (stack_push): the same,
//               comparing rounds with capacity, storing the pointer above rounds, committing by
//               storing rounds + 1. No lock, no atomic read-modify-write.
//   slow path   a miss (empty/full, or an abort) retries the sequence a few times, then takes a
//               full (alloc) or empty (free) magazine from the depot, or a new one filled from
//               the slabs, makes its own change to it while no other thread can see it, and
//               installs it with one rseq exchange of the slot; the magazine it took out goes
//               to the depot (full or empty list), as Bonwick's per-CPU layer trades with it.
//   invariants  (1) only a sequence running on CPU c, or the slow path's exchange on CPU c,
//               writes slot c or the magazine it points at: the kernel restarts a sequence that
//               is preempted, migrated or signalled before its commit, so two threads on one CPU
//               never interleave inside them. (2) A magazine out of every slot belongs to the one
//               thread that took it out: a sequence that read the old slot value either
//               committed before the exchange or restarts and reads the new one. (3) A slot
//               read before the commit is re-read after a restart: nothing is cached across
//               the sequence but the CPU number, which the sequence checks.
//   fallbacks   the locked path (one object from the slabs under the node lock) when this
//               thread's rseq area reports no CPU (registration failed) or a CPU beyond the
//               table; GFP_ATOMIC misses also take it (retiring a magazine would wait for the
//               depot lock). Without rseq at all (not x86-64, glibc.pthread.rseq=0,
//               ThreadSanitizer, which cannot see the asm's accesses) the flag is ignored and
//               the cache is per-thread. AddressSanitizer builds keep the rseq path (the asm is
//               not instrumented; the KASAN annotations run after the pop and before the push).
//   shrink      flushes the calling CPU's magazine only (another CPU's may be in use);
//               kmem_cache_destroy() flushes them all (no thread uses the cache then).
//   bulk calls  bypass the per-CPU magazines (one slab-lock round trip).
//   default     per-thread. The per-CPU fast path is about 25 instructions against 14 (g++ 12
//               -O3): the per-thread path's pop plus the rseq area's address, the CPU number and
//               its bound, the slot's address, the arming store and the CPU check, and the
//               per-thread slot it tries first; bench/bench_slab.cpp measures it slower on the
//               64 B pair (rows kprim_kmem_cache and kprim_kmem_cache_pcpu; bench/measure/
//               slab_targets.sh). What per-CPU buys is memory: magazines are bounded by CPUs,
//               not by threads, and a thread's exit strands nothing. Use the flag for caches
//               used by many more threads than CPUs.
// SLAB_TYPESAFE_BY_RCU caches keep a slab's memory mapped for an RCU grace period after it
// empties (slab_rcu.cpp; kprim/rcu.hpp, memb flavour: kprim::slab links kprim::rcu_memb);
// see the flag.
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>
#include <kprim/detail/irq_state.hpp>
#include <kprim/list.hpp>
#include <kprim/percpu/rseq.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace kprim {

// ---- Flags ---------------------------------------------------------------------------------

using slab_flags_t = unsigned;
/// Align objects on cache lines (or a power-of-two fraction of one for objects of half a line
/// or less, as the kernel does), so that two hot objects never share a line.
inline constexpr slab_flags_t SLAB_HWCACHE_ALIGN = 1u << 0;
/// Fill free objects with POISON_FREE (0x6b, last byte POISON_END 0xa5) and verify the
/// pattern on allocation: a write after free is reported. Ignored for caches with a
/// constructor (poison would destroy the constructed state; the kernel does the same).
inline constexpr slab_flags_t SLAB_POISON = 1u << 1;
/// Guard bytes after each object (SLUB_RED_ACTIVE 0xcc while allocated, SLUB_RED_INACTIVE 0xbb
/// while free), verified on free and on allocation: overflows and double frees are reported.
inline constexpr slab_flags_t SLAB_RED_ZONE = 1u << 2;
/// kmem_cache_create() aborts the process with a message instead of returning nullptr.
inline constexpr slab_flags_t SLAB_PANIC = 1u << 3;
/// SLAB_TYPESAFE_BY_RCU - the kernel's contract: an object may be freed and reused for another
/// object of the same cache at once, but its memory stays an object of this cache for at least
/// an RCU grace period: a slab that empties is unmapped (shrink, the empty-slab limit) only
/// after a grace period of the memb flavour (call_rcu()), and kmem_cache_destroy() waits for
/// one (synchronize_rcu(), then rcu_barrier()). It is NOT kfree_rcu(): frees are not delayed.
/// A reader inside rcu_read_lock() (kprim/rcu.hpp, default memb flavour) that found an object
///   may:     read its object_size bytes without a fault, even after it was freed, its slab
///            emptied and shrunk, or it was reallocated; find there a value some object of
///            this cache held (the ctor's, or one a user stored: freeing writes nothing into
///            the object, the free pointer lives after it);
///   may not: assume it is still the object it looked up. It must re-validate identity after
///            taking a reference (e.g. atomic_inc_not_zero on a refcount, then re-check the
///            key; or a lock inside the object, then re-check), and read fields that a
///            reallocation may rewrite with atomic/READ_ONCE loads. Readers of other flavours
///            (qsbr, mb, bp) are not waited for.
/// Debug interplay (the kernel's choices): SLAB_POISON never fills free objects of such a
/// cache (with or without a ctor), as that would destroy the type; red zones still apply.
/// Under AddressSanitizer free objects stay addressable over object_size bytes (padding and
/// the free pointer are poisoned), so ASan reports no use after free for them, as KASAN.
/// Cost: the alloc/free fast paths are those of every cache; releasing an empty slab costs a
/// call_rcu() (a thread not registered with RCU registers for that call: a mutex).
inline constexpr slab_flags_t SLAB_TYPESAFE_BY_RCU = 1u << 4;
/// SLAB_PERCPU_MAGAZINES - one magazine per CPU instead of two per thread: alloc and free
/// pop and push the current CPU's magazine in a restartable sequence (see "Per-CPU
/// magazines" above). Memory held in magazines is bounded by CPUs, not threads; each
/// operation costs an rseq arm and a CPU check more than the per-thread path. Ignored (the
/// cache is per-thread) where rseq is unavailable: not x86-64, glibc did not register rseq,
/// or ThreadSanitizer builds; ignored by debug caches, which have no magazines.
inline constexpr slab_flags_t SLAB_PERCPU_MAGAZINES = 1u << 5;

inline constexpr unsigned char POISON_FREE = 0x6b;
inline constexpr unsigned char POISON_END = 0xa5;
inline constexpr unsigned char SLUB_RED_ACTIVE = 0xcc;
inline constexpr unsigned char SLUB_RED_INACTIVE = 0xbb;

/// Allocation context (the kernel's gfp_t).
///   GFP_KERNEL  the caller may sleep: takes the depot and node mutexes, maps pages.
///   GFP_ATOMIC  the caller must not sleep on a lock: every mutex is only try-locked, so the
///               allocation fails (returns nullptr) when a lock is busy. It may still map
///               pages (an mmap system call, which takes the process's mmap lock in the OS).
///   GFP_NOWAIT  same as GFP_ATOMIC here (the kernel's differ in access to reserves).
///   __GFP_ZERO  return zeroed memory (kmem_cache_zalloc, kzalloc).
using gfp_t = unsigned;
inline constexpr gfp_t __GFP_ZERO = 1u << 0;
inline constexpr gfp_t __GFP_NOWAIT_BIT = 1u << 1;
inline constexpr gfp_t GFP_KERNEL = 0;
inline constexpr gfp_t GFP_ATOMIC = __GFP_NOWAIT_BIT;
inline constexpr gfp_t GFP_NOWAIT = __GFP_NOWAIT_BIT;

/// gfpflags_allow_blocking() - whether `gfp` lets the allocator wait for a lock.
constexpr bool gfpflags_allow_blocking(gfp_t gfp) noexcept { return (gfp & __GFP_NOWAIT_BIT) == 0; }

/// The cache type. `kmem_cache_s` / `kmem_cache_t` are the kernel's names from before 2.6.20;
/// `kmem_cache` is kept for the typed front kmem_cache<T> below.
struct kmem_cache_s;
using kmem_cache_t = kmem_cache_s;

// ---- Internals the inline fast paths need (layout is private to the allocator) ---------------

namespace detail {

/// Slabs and large kmalloc mappings are aligned to at least this, so masking an object address
/// finds the header of a slab of slab_min_size bytes (every kmalloc cache's slab size).
inline constexpr std::size_t slab_min_shift = 16;
inline constexpr std::size_t slab_min_size = std::size_t{1} << slab_min_shift;

/// A magazine: `rounds` object pointers in objs()[0 .. rounds). Capacity is the cache's
/// magazine_rounds. Owned by one thread while loaded/previous, by the depot otherwise.
struct magazine {
  std::uint32_t rounds;
  std::uint32_t capacity;
  magazine* next;  ///< depot list link
  void** objs() noexcept { return reinterpret_cast<void**>(this + 1); }
};
static_assert(sizeof(magazine) == 16);

/// One thread's view of one cache: Bonwick's per-CPU layer, per thread here (see "Thread
/// model" above). Only the owning thread touches loaded/previous, except
/// kmem_cache_destroy() (which requires that no thread uses the cache).
struct thread_cache {
  magazine* loaded;
  magazine* previous;
  kmem_cache_s* cache;
  list_head node;       ///< on the cache's list of per-thread caches (registry lock)
  thread_cache** home;  ///< this thread's slot pointing here (nulled when the cache is destroyed)
};

/// Cache ids index every thread's slot table; at most this many caches exist at once.
inline constexpr unsigned max_caches = 512;

/// This thread's per-cache slots, by cache id. nullptr: no per-thread cache yet, or a cache
/// without magazines (debug caches, the magazine caches), which never has one. Zero-initialised static TLS: no init guard on access.
extern constinit thread_local thread_cache* tls_thread_caches[max_caches];

/// The fields of a cache that the fast paths read: first in kmem_cache_s, one cache line.
struct kmem_cache_hot {
  std::uint32_t id;
  std::uint32_t object_size;  ///< bytes the user asked for
  std::uint32_t percpu;       ///< SLAB_PERCPU_MAGAZINES in effect (rseq available)
};

#if KPRIM_PERCPU_RSEQ
#define KPRIM_SLAB_PERCPU 1
/// The per-CPU magazine slots of every cache: slots[cpu * max_caches + id] points at CPU
/// cpu's magazine of cache id, or at an empty magazine of capacity 0 (pcpu_none) that every
/// pop and push finds empty and full. Allocated when the first per-CPU cache is created;
/// nr_cpus bounds the CPU numbers the kernel can report (the possible mask's highest + 1).
struct pcpu_table {
  void** slots;
  unsigned nr_cpus;
};
extern constinit pcpu_table g_pcpu;

/// pcpu_pop()/pcpu_push() - one object from / into the current CPU's magazine of s, in one
/// restartable sequence; false on an empty/full magazine, an abort or an unknown CPU (the
/// slow path decides).
[[gnu::always_inline]] inline bool pcpu_pop(std::uint32_t id, void** out) noexcept {
  struct rseq* rs = rseq_x86::area();
  const unsigned cpu = rseq_x86::cpu_start(rs);
  if (unlikely(cpu >= g_pcpu.nr_cpus)) return false;
  return rseq_x86::stack_pop(rs, cpu, &g_pcpu.slots[std::size_t{cpu} * max_caches + id], out) > 0;
}
[[gnu::always_inline]] inline bool pcpu_push(std::uint32_t id, void* p) noexcept {
  struct rseq* rs = rseq_x86::area();
  const unsigned cpu = rseq_x86::cpu_start(rs);
  if (unlikely(cpu >= g_pcpu.nr_cpus)) return false;
  return rseq_x86::stack_push(rs, cpu, &g_pcpu.slots[std::size_t{cpu} * max_caches + id], p) > 0;
}
#else
#define KPRIM_SLAB_PERCPU 0
#endif

/// The header at the base of every slab (and of every large kmalloc mapping).
struct slab_head {
  kmem_cache_s* cache;  ///< nullptr for a large kmalloc mapping
  std::size_t size;     ///< large mapping: usable bytes; slab: unused here
};

// KASAN-style annotations, in AddressSanitizer builds only: a free object (in a magazine, the
// depot or a slab) is poisoned over its whole stride; an allocated one is addressable over its
// object_size bytes only, so ASan reports a use after free and an overflow into the padding
// as it would for the heap. Elsewhere they compile to nothing.
#if defined(__SANITIZE_ADDRESS__)
#define KPRIM_KASAN 1
void kasan_slab_alloc(kmem_cache_s* s, void* objp) noexcept;
void kasan_slab_free(kmem_cache_s* s, void* objp) noexcept;
#else
#define KPRIM_KASAN 0
inline void kasan_slab_alloc(kmem_cache_s*, void*) noexcept {}
inline void kasan_slab_free(kmem_cache_s*, void*) noexcept {}
#endif

/// slab_in_kprim_irq() - detail::in_kprim_irq() for the fast paths, as one load from the
/// thread pointer. GCC does not fold an atomic load of a thread_local into a %fs-relative
/// move (it computes the address first: three instructions); a volatile load of the same
/// byte it does fold. Enough here: the flag is written only by this thread and by the signal
/// trampoline running on it, which is what volatile covers (the sig_atomic_t rule), and the
/// atomic is a lock-free byte with the layout of its value.
inline bool slab_in_kprim_irq() noexcept {
  static_assert(sizeof(tls_irq.hardirq) == 1 && std::atomic<unsigned char>::is_always_lock_free);
  return *reinterpret_cast<const volatile unsigned char*>(&tls_irq.hardirq) != 0;
}

[[gnu::cold]] void* kmem_cache_alloc_slow(kmem_cache_s* s, gfp_t gfp) noexcept;
[[gnu::cold]] void kmem_cache_free_slow(kmem_cache_s* s, void* objp) noexcept;

inline kmem_cache_hot& hot(kmem_cache_s* s) noexcept { return *reinterpret_cast<kmem_cache_hot*>(s); }

}  // namespace detail

// ---- The API ---------------------------------------------------------------------------------

/// kmem_cache_create() - create a cache of `size`-byte objects.
/// @name:  shown in statistics and debug reports; copied.
/// @size:  object size in bytes, 1 .. 1 MiB.
/// @align: minimum alignment (0 or a power of two up to 4096); at least 8 is always given.
/// @flags: SLAB_HWCACHE_ALIGN, SLAB_POISON, SLAB_RED_ZONE, SLAB_PANIC, SLAB_TYPESAFE_BY_RCU.
/// @ctor:  optional; run once on every object when its slab is populated (not on every
///         allocation). Objects must be freed back in their constructed state.
/// Context: may sleep (takes the registry mutex, allocates). Returns nullptr on bad arguments
/// or when max_caches caches exist, unless SLAB_PANIC (then it aborts with a message).
kmem_cache_t* kmem_cache_create(const char* name, std::size_t size, std::size_t align, slab_flags_t flags,
                                void (*ctor)(void*));

/// kmem_cache_alloc() - one object from cache `s`, constructed if the cache has a ctor.
/// Context: GFP_KERNEL may sleep on the depot/node mutexes and map pages; GFP_ATOMIC never
/// waits for a lock and returns nullptr if it would have to. In a kprim interrupt handler:
/// async-signal-safe (see "Interrupt handlers" above). Cost: fast path a pop from this
/// thread's magazine, or this CPU's in one rseq sequence (no lock, no atomic); a miss trades magazines with the depot (one lock)
/// or refills a magazine from the slabs (one lock per magazine). Returns nullptr on failure.
/// The object is aligned as requested at creation; its bytes are undefined unless the cache
/// has a ctor (constructed state) or gfp has __GFP_ZERO.
[[nodiscard]] inline void* kmem_cache_alloc(kmem_cache_t* s, gfp_t gfp) noexcept {
#if KPRIM_DEBUG_LOCKING
  if (gfpflags_allow_blocking(gfp)) might_sleep();  // the kernel's might_alloc()
#endif
  detail::thread_cache* c = detail::tls_thread_caches[detail::hot(s).id];
  if (likely(c != nullptr) && likely(!detail::slab_in_kprim_irq())) {
    detail::magazine* m = c->loaded;
    if (likely(m->rounds != 0)) {
      void* p = m->objs()[--m->rounds];
      detail::kasan_slab_alloc(s, p);
      if (unlikely(gfp & __GFP_ZERO)) std::memset(p, 0, detail::hot(s).object_size);
      return p;
    }
  }
#if KPRIM_SLAB_PERCPU
  else if (detail::hot(s).percpu != 0 && likely(!detail::slab_in_kprim_irq())) {
    void* p;
    if (likely(detail::pcpu_pop(detail::hot(s).id, &p))) {
      detail::kasan_slab_alloc(s, p);
      if (unlikely(gfp & __GFP_ZERO)) std::memset(p, 0, detail::hot(s).object_size);
      return p;
    }
  }
#endif
  return detail::kmem_cache_alloc_slow(s, gfp);
}

/// kmem_cache_zalloc() - kmem_cache_alloc() with __GFP_ZERO: the object's bytes are zero
/// (for a cache with a ctor this overwrites the constructed state; the caller knows that).
[[nodiscard]] inline void* kmem_cache_zalloc(kmem_cache_t* s, gfp_t gfp) noexcept {
  return kmem_cache_alloc(s, gfp | __GFP_ZERO);
}

/// kmem_cache_free() - give back an object of `s`, from any thread.
/// Requirements: objp came from kmem_cache_alloc(s) (or the bulk variant) and is not already
/// free (debug caches report a violation naming the cache and abort; others corrupt silently,
/// as the kernel's do); objp is in constructed state if the cache has a ctor.
/// Context: never fails; may sleep on the depot mutex when the magazines are full. In a kprim
/// interrupt handler: async-signal-safe and lock-free (deferred to process context).
/// Cost: fast path a push onto this thread's magazine, the same for a cross-thread free.
inline void kmem_cache_free(kmem_cache_t* s, void* objp) noexcept {
  detail::kasan_slab_free(s, objp);
  detail::thread_cache* c = detail::tls_thread_caches[detail::hot(s).id];
  if (likely(c != nullptr) && likely(!detail::slab_in_kprim_irq())) {
    detail::magazine* m = c->loaded;
    if (likely(m->rounds != m->capacity)) {
      m->objs()[m->rounds++] = objp;
      return;
    }
  }
#if KPRIM_SLAB_PERCPU
  else if (detail::hot(s).percpu != 0 && likely(!detail::slab_in_kprim_irq())) {
    if (likely(detail::pcpu_push(detail::hot(s).id, objp))) return;
  }
#endif
  detail::kmem_cache_free_slow(s, objp);
}

/// kmem_cache_alloc_bulk() - allocate `size` objects into p[0 .. size): all or nothing.
/// Returns size on success, 0 on failure (then nothing is allocated). Context as
/// kmem_cache_alloc(): a failed GFP_ATOMIC call gives back what it took without waiting
/// (except in debug caches, whose give-back takes the node lock; and in SLAB_TYPESAFE_BY_RCU
/// caches it keeps the slabs it emptied on the empty list, over max_empty_slabs until a
/// shrink, rather than register with RCU). Cost: this thread's magazines first, then one
/// slab-lock round trip for the rest.
[[nodiscard]] int kmem_cache_alloc_bulk(kmem_cache_t* s, gfp_t gfp, std::size_t size, void** p) noexcept;

/// kmem_cache_free_bulk() - free p[0 .. size) (requirements as kmem_cache_free()).
void kmem_cache_free_bulk(kmem_cache_t* s, std::size_t size, void** p) noexcept;

/// kmem_cache_shrink() - return the calling thread's magazines and the depot's objects to
/// their slabs, and unmap every empty slab. Other threads' loaded/previous magazines are not
/// touched (they may be in use); they return when those threads exit.
/// SLAB_TYPESAFE_BY_RCU: the empty slabs leave the cache at once but are unmapped by call_rcu()
/// callbacks after a grace period (rcu_barrier() waits for that); the return value counts them.
/// Context: may sleep. Returns the bytes given back to the OS (the kernel returns 0/1).
std::size_t kmem_cache_shrink(kmem_cache_t* s) noexcept;

/// kmem_cache_destroy() - flush every thread's magazines, unmap every slab and free the cache.
/// Requirement: no thread uses `s` during or after the call. If objects are still allocated
/// it prints "kmem_cache_destroy <name>: Slab cache still has objects (<n> objects)" on
/// stderr, as the kernel does, and leaks the slabs that hold them (so stray pointers stay
/// valid memory) while freeing the rest. nullptr is ignored. Context: may sleep.
/// SLAB_TYPESAFE_BY_RCU: waits for a grace period before unmapping (readers may still hold
/// freed objects), then for every slab release still queued (rcu_barrier()), so every slab is
/// unmapped and no callback touches the cache after the call; so it must not be called inside
/// an RCU read-side critical section or from an RCU callback. Registered readers elsewhere
/// only delay it until their current read-side sections end.
/// Returns the number of objects that were still allocated (0 for a clean destroy).
std::size_t kmem_cache_destroy(kmem_cache_t* s) noexcept;

/// kmem_cache_size() - the object size given at creation.
[[nodiscard]] inline unsigned kmem_cache_size(kmem_cache_t* s) noexcept { return detail::hot(s).object_size; }

/// Tunables, settable at any time; read under the locks that use them.
///   max_empty_slabs  empty slabs kept mapped for reuse; more are unmapped at once (default 2)
///   depot_max_full   full magazines the depot keeps; a thread that would exceed it returns
///                    the magazine's objects to the slabs instead (default 64)
struct kmem_cache_tunables {
  unsigned max_empty_slabs = 2;
  unsigned depot_max_full = 64;
};
void kmem_cache_set_tunables(kmem_cache_t* s, const kmem_cache_tunables& t) noexcept;

/// One cache's statistics, the columns of /proc/slabinfo plus kprim's own.
/// active_objs counts objects out of the slabs (allocated, or cached in some thread's
/// magazines) minus those in the depot; num_objs is every object slot of every slab.
/// rcu_pending_slabs: empty slabs of a SLAB_TYPESAFE_BY_RCU cache waiting for a grace period
/// to be unmapped (not in num_slabs); mapped_bytes counts them with num_slabs.
struct slabinfo {
  char name[32];
  std::size_t active_objs, num_objs, objsize, size, objperslab, pagesperslab;
  std::size_t active_slabs, num_slabs, empty_slabs;
  std::size_t depot_objs, depot_full, magazine_rounds, mapped_bytes, rcu_pending_slabs;
  unsigned max_empty_slabs, depot_max_full;
};

/// kmem_cache_get_info() - a snapshot of `s`'s statistics. Context: may sleep (takes the
/// node and depot mutexes briefly). Figures are exact for slabs, the depot and mappings.
[[nodiscard]] slabinfo kmem_cache_get_info(kmem_cache_t* s) noexcept;

/// slabinfo_show() - print every live cache in /proc/slabinfo's format (version 2.1, plus a
/// depot column) to `out`. Context: may sleep.
void slabinfo_show(std::FILE* out) noexcept;

/// kmem_mapped_bytes() - bytes the slab allocator currently has mapped from the OS (slabs and
/// large kmalloc mappings, all caches). Context: any; a relaxed read.
[[nodiscard]] std::size_t kmem_mapped_bytes() noexcept;

// ---- Typed front -------------------------------------------------------------------------

/// kmem_cache<T> - a cache of T with RAII lifetime: create() constructs a T in a slab object
/// with the given arguments, destroy() runs ~T and frees it. The destructor calls
/// kmem_cache_destroy() (which reports leaked objects). Not copyable or movable.
/// Use the raw API with a ctor for Bonwick's constructed-state objects.
template <class T>
class kmem_cache {
 public:
  /// Context: may sleep. Aborts with a message if the cache cannot be created (SLAB_PANIC).
  explicit kmem_cache(const char* name, slab_flags_t flags = 0)
      : s_(kmem_cache_create(name, sizeof(T), alignof(T), flags | SLAB_PANIC, nullptr)) {}
  ~kmem_cache() { kmem_cache_destroy(s_); }
  kmem_cache(const kmem_cache&) = delete;
  kmem_cache& operator=(const kmem_cache&) = delete;

  /// create() - allocate (GFP_KERNEL) and construct a T from args. Returns nullptr if memory
  /// is exhausted; if T's constructor throws, the object is freed and the exception propagates.
  template <class... Args>
  [[nodiscard]] T* create(Args&&... args) {
    void* p = kmem_cache_alloc(s_, GFP_KERNEL);
    if (p == nullptr) return nullptr;
    if constexpr (std::is_nothrow_constructible_v<T, Args...>) {
      return ::new (p) T(std::forward<Args>(args)...);
    } else {
      try {
        return ::new (p) T(std::forward<Args>(args)...);
      } catch (...) {
        kmem_cache_free(s_, p);
        throw;
      }
    }
  }
  /// destroy() - run ~T and free the object (any thread). nullptr is ignored.
  void destroy(T* p) noexcept {
    if (p == nullptr) return;
    p->~T();
    kmem_cache_free(s_, p);
  }
  /// shrink(), info(), raw(): kmem_cache_shrink(), kmem_cache_get_info(), the raw cache.
  std::size_t shrink() noexcept { return kmem_cache_shrink(s_); }
  [[nodiscard]] slabinfo info() const noexcept { return kmem_cache_get_info(s_); }
  [[nodiscard]] kmem_cache_t* raw() const noexcept { return s_; }

 private:
  kmem_cache_t* s_;
};

}  // namespace kprim
