// kprim/rcu.hpp: read-copy update with the kernel's names (rcu_read_lock(), rcu_dereference(),
// synchronize_rcu(), call_rcu(), kfree_rcu(), ...) over liburcu, which runs the grace periods.
// For read-mostly data read far more often than written. Write-heavy data, or readers that must
// see every update at once, want a lock (kprim/spinlock.hpp, a reader-writer lock) instead.
//
// Flavour: chosen at compile time by the CMake target the code links (one library each):
//   kprim::rcu_memb (default; KPRIM_RCU_FLAVOUR_MEMB)  kprim::rcu_qsbr (KPRIM_RCU_FLAVOUR_QSBR)
//   kprim::rcu_mb   (KPRIM_RCU_FLAVOUR_MB)             kprim::rcu_bp   (KPRIM_RCU_FLAVOUR_BP)
// kprim::rcu_flavour names the chosen one. Every function below is a template whose first
// argument defaults to it, so code using several flavours in one process (they coexist: their
// symbols are prefixed) names the others explicitly: synchronize_rcu<kprim::rcu_qsbr>().
//
//     kprim::rcu_thread reg;                     // every reading thread, for its lifetime
//     { kprim::rcu_read_guard g; use(kprim::rcu_dereference(gp)); }
//     old = kprim::rcu_replace_pointer(gp, fresh, lock_held);   // updater, serialised
//     kprim::kfree_rcu<&foo::rcu>(old);          // deleted after a grace period
//
// Debug builds (KPRIM_DEBUG_RCU, on when NDEBUG is not defined) abort with a message on misuse
// that would otherwise be a silent race or a hang: reading on an unregistered thread, unbalanced
// rcu_read_unlock(), synchronize_rcu()/rcu_barrier() inside a read-side section (deadlock),
// rcu_dereference() outside one, a qsbr quiescent state inside one, double registration.
// KPRIM_DEBUG_RCU must have the same value in every translation unit of a program.
#pragma once

#if defined(KPRIM_RCU_FLAVOUR_MEMB) + defined(KPRIM_RCU_FLAVOUR_QSBR) + defined(KPRIM_RCU_FLAVOUR_MB) + \
        defined(KPRIM_RCU_FLAVOUR_BP) >                                                                 \
    1
#error "kprim/rcu.hpp: more than one KPRIM_RCU_FLAVOUR_* defined (link exactly one kprim::rcu_<flavour>)"
#endif

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>
#include <kprim/lockdep.hpp>
#include <kprim/rcu/pointer.hpp>

#if defined(KPRIM_RCU_FLAVOUR_QSBR)
#include <kprim/rcu/qsbr.hpp>
#elif defined(KPRIM_RCU_FLAVOUR_MB)
#include <kprim/rcu/mb.hpp>
#elif defined(KPRIM_RCU_FLAVOUR_BP)
#include <kprim/rcu/bp.hpp>
#else
#include <kprim/rcu/memb.hpp>
#endif

#if KPRIM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <mutex>
#include <new>
#include <string_view>
#include <type_traits>
#include <vector>

#ifndef KPRIM_DEBUG_RCU
#ifdef NDEBUG
#define KPRIM_DEBUG_RCU 0
#else
#define KPRIM_DEBUG_RCU 1
#endif
#endif

namespace kprim {

/// rcu_flavour - the flavour this program was built for (see the file comment).
#if defined(KPRIM_RCU_FLAVOUR_QSBR)
using rcu_flavour = rcu_qsbr;
#elif defined(KPRIM_RCU_FLAVOUR_MB)
using rcu_flavour = rcu_mb;
#elif defined(KPRIM_RCU_FLAVOUR_BP)
using rcu_flavour = rcu_bp;
#else
using rcu_flavour = rcu_memb;
#endif

/// rcu_flavour_name() - "memb", "qsbr", "mb" or "bp" (benchmarks record it in their context).
template <rcu_flavour_type F = rcu_flavour>
[[nodiscard]] constexpr std::string_view rcu_flavour_name() noexcept {
  return F::name;
}

/// rcu_head - the link call_rcu() queues; embed one in each object freed through RCU.
/// The same type as liburcu's (16 bytes: a queue link and the callback), except under
/// ThreadSanitizer, where it also keeps the callback so a trampoline can tell TSan about the
/// grace period (liburcu itself is not instrumented).
#if KPRIM_TSAN
struct rcu_head {
  ::rcu_head urcu;
  void (*func)(rcu_head*);
};
#else
using rcu_head = ::rcu_head;
#endif
using rcu_callback_t = void (*)(rcu_head*);

namespace detail {

/// Read-side nesting of the calling thread, per flavour; maintained in debug builds only.
template <class F>
inline thread_local unsigned rcu_nesting = 0;

[[noreturn, gnu::cold, gnu::noinline]] inline void rcu_misuse(std::string_view flavour, const char* what) noexcept {
  std::fprintf(stderr, "kprim: RCU (%.*s flavour): %s\n", static_cast<int>(flavour.size()), flavour.data(), what);
  std::abort();
}

/// Debug check: the calling thread may run read-side code of flavour F.
template <class F>
inline void rcu_check_reader(const char* op) noexcept {
  if (unlikely(!F::registered()))
    rcu_misuse(F::name, op);
  if constexpr (F::needs_quiescent_states)
    if (unlikely(!F::read_ongoing())) rcu_misuse(F::name, "read-side use by a thread that is offline (rcu_thread_offline())");
}

#if KPRIM_TSAN
// ThreadSanitizer cannot see liburcu's grace periods (its library is not instrumented, its
// fast paths use plain volatile accesses and sys_membarrier). These sync addresses model them:
// every end of a read-side section releases gp, every grace period's end acquires it; every
// callback's completion releases cb_done, rcu_barrier() acquires it. The model errs towards
// more happens-before (a reader that starts after a grace period began also releases into it),
// so TSan reports no false races; it can miss a reader that outlives a grace period.
template <class F>
inline char rcu_tsan_gp;
template <class F>
inline char rcu_tsan_cb_done;

template <class F>
void rcu_tsan_trampoline(::rcu_head* h) {
  auto* k = reinterpret_cast<rcu_head*>(h);  // urcu is the first member
  __tsan_acquire(k);
  __tsan_acquire(&rcu_tsan_gp<F>);
  k->func(k);
  __tsan_release(&rcu_tsan_cb_done<F>);
}
#endif

template <class F>
inline void rcu_tsan_end_of_reader() noexcept {
#if KPRIM_TSAN
  __tsan_release(&rcu_tsan_gp<F>);
#endif
}

}  // namespace detail

// ---- read side --------------------------------------------------------------------------

/// rcu_read_lock() - begin a read-side critical section: objects reached through
/// rcu_dereference() stay allocated until the matching rcu_read_unlock(). Nests.
/// Requirements: the thread is registered (rcu_thread), except with rcu_bp. Context: may not
/// block for long (a grace period waits for it); must not call synchronize_rcu(). Ordering:
/// none needed by the reader (memb: the updater's sys_membarrier orders it; mb: smp_mb();
/// qsbr: no code at all). Cost: memb a few plain instructions, qsbr zero. Wait-free.
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_read_lock() noexcept {
#if KPRIM_DEBUG_RCU
  detail::rcu_check_reader<F>("rcu_read_lock() on a thread not registered with RCU: hold a kprim::rcu_thread in it first");
  ++detail::rcu_nesting<F>;
#endif
  F::read_lock();
  __rcu_read_lock_depth_inc();  // kprim/context.hpp: might_sleep() inside is reported
}

/// rcu_read_unlock() - end the innermost read-side critical section; after the outermost one
/// the thread may no longer use pointers it obtained inside. Requirements: matches an
/// rcu_read_lock() of the same thread. Cost: as rcu_read_lock() (memb: plus a check for a
/// waiting updater). Wait-free.
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_read_unlock() noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(detail::rcu_nesting<F> == 0)) detail::rcu_misuse(F::name, "rcu_read_unlock() without rcu_read_lock()");
  --detail::rcu_nesting<F>;
#endif
  __rcu_read_lock_depth_dec();
  detail::rcu_tsan_end_of_reader<F>();
  F::read_unlock();
}

/// rcu_read_lock_held() - the thread is in a read-side critical section (qsbr: is online,
/// which is the same promise). Context: any registered thread. Cost: one thread-local load.
template <rcu_flavour_type F = rcu_flavour>
[[nodiscard]] inline bool rcu_read_lock_held() noexcept {
  return F::registered() && F::read_ongoing();
}

/// rcu_read_guard - rcu_read_lock() for the guard's scope (the kernel's guard(rcu)()).
template <rcu_flavour_type F = rcu_flavour>
class [[nodiscard]] rcu_read_guard {
 public:
  rcu_read_guard() noexcept { rcu_read_lock<F>(); }
  ~rcu_read_guard() { rcu_read_unlock<F>(); }
  rcu_read_guard(const rcu_read_guard&) = delete;
  rcu_read_guard& operator=(const rcu_read_guard&) = delete;
};

/// rcu_dereference() - load an RCU-protected pointer inside a read-side critical section
/// (kprim/rcu/pointer.hpp: rcu_dereference_raw()). Debug builds abort outside one.
/// Ordering: consume/acquire. Cost: one load.
/// With KPRIM_DEBUG_LOCKING (and not KPRIM_DEBUG_RCU) a use outside a reader prints RCU
/// lockdep's "suspicious rcu_dereference_check() usage!" (kprim/lockdep.hpp) and goes on.
#if KPRIM_DEBUG_LOCKING
#define KPRIM_RCU_AT_ , [[maybe_unused]] const std::source_location& at = std::source_location::current()
#else
#define KPRIM_RCU_AT_
#endif
template <rcu_flavour_type F = rcu_flavour, class T>
[[nodiscard]] inline T* rcu_dereference(T* const& p KPRIM_RCU_AT_) noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(!rcu_read_lock_held<F>()))
    detail::rcu_misuse(F::name, "rcu_dereference() outside a read-side critical section");
#elif KPRIM_DEBUG_LOCKING
  if (unlikely(!rcu_read_lock_held<F>())) debug::report_rcu_suspicious("suspicious rcu_dereference_check() usage", at);
#endif
  return rcu_dereference_raw(p);
}

/// rcu_dereference_check() - rcu_dereference() that is also legal where `c` holds (typically:
/// the update-side lock is held). Debug builds abort when neither holds. Cost: one load.
template <rcu_flavour_type F = rcu_flavour, class T>
[[nodiscard]] inline T* rcu_dereference_check(T* const& p, [[maybe_unused]] bool c KPRIM_RCU_AT_) noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(!c && !rcu_read_lock_held<F>()))
    detail::rcu_misuse(F::name, "rcu_dereference_check() outside a read-side critical section, condition false");
#elif KPRIM_DEBUG_LOCKING
  if (unlikely(!c && !rcu_read_lock_held<F>())) debug::report_rcu_suspicious("suspicious rcu_dereference_check() usage", at);
#endif
  return rcu_dereference_raw(p);
}
#undef KPRIM_RCU_AT_

/// rcu_quiescent_state() - qsbr: announce that this thread holds no RCU-protected pointer
/// (grace periods wait for it otherwise). Other flavours: no-op. Requirements: registered,
/// online, outside rcu_read_lock(). Cost: qsbr a load and a store when a grace period is
/// pending, plus a full barrier and a wake-up check; else nothing.
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_quiescent_state() noexcept {
#if KPRIM_DEBUG_RCU
  if constexpr (F::needs_quiescent_states) {
    detail::rcu_check_reader<F>("rcu_quiescent_state() on a thread not registered with RCU");
    if (unlikely(detail::rcu_nesting<F> != 0))
      detail::rcu_misuse(F::name, "rcu_quiescent_state() inside a read-side critical section");
  }
#endif
  detail::rcu_tsan_end_of_reader<F>();
  F::quiescent_state();
}

/// rcu_thread_offline()/rcu_thread_online() - qsbr: leave/rejoin the set of threads grace
/// periods wait for, around blocking (sleeping, I/O, long waits). An offline thread may not
/// read. Other flavours: no-ops. Requirements: registered, outside rcu_read_lock().
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_thread_offline() noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(detail::rcu_nesting<F> != 0))
    detail::rcu_misuse(F::name, "rcu_thread_offline() inside a read-side critical section");
#endif
  detail::rcu_tsan_end_of_reader<F>();
  F::thread_offline();
}
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_thread_online() noexcept {
  F::thread_online();
}

/// rcu_offline_scope - qsbr: rcu_thread_offline() for the scope (wrap blocking calls).
template <rcu_flavour_type F = rcu_flavour>
class [[nodiscard]] rcu_offline_scope {
 public:
  rcu_offline_scope() noexcept { rcu_thread_offline<F>(); }
  ~rcu_offline_scope() { rcu_thread_online<F>(); }
  rcu_offline_scope(const rcu_offline_scope&) = delete;
  rcu_offline_scope& operator=(const rcu_offline_scope&) = delete;
};

// ---- registration -----------------------------------------------------------------------

/// rcu_register_thread() - make the calling thread an RCU reader (qsbr: online at once).
/// Prefer the RAII rcu_thread. Requirements: not registered yet (debug builds abort).
/// Context: may sleep (takes liburcu's registry mutex). Cost: O(1) plus the mutex.
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_register_thread() noexcept {
#if KPRIM_DEBUG_RCU
  if (!F::auto_registers && unlikely(F::registered()))
    detail::rcu_misuse(F::name, "thread registered with RCU twice");
#endif
  F::register_thread();
}

/// rcu_unregister_thread() - the calling thread stops being an RCU reader. Requirements:
/// registered, outside any read-side critical section. Context: may sleep. A registered
/// thread must unregister before it exits, or grace periods may wait on it forever.
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_unregister_thread() noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(!F::registered())) detail::rcu_misuse(F::name, "rcu_unregister_thread() on a thread not registered");
  if (unlikely(detail::rcu_nesting<F> != 0))
    detail::rcu_misuse(F::name, "rcu_unregister_thread() inside a read-side critical section");
#endif
  detail::rcu_tsan_end_of_reader<F>();
  F::unregister_thread();
}

/// rcu_thread - the calling thread is an RCU reader of flavour F while this object lives.
/// Construct it first thing in a thread (or as a thread_local) and let it end last.
/// Not movable: registration belongs to a thread.
template <rcu_flavour_type F = rcu_flavour>
class [[nodiscard]] rcu_thread {
 public:
  rcu_thread() noexcept { rcu_register_thread<F>(); }
  ~rcu_thread() { rcu_unregister_thread<F>(); }
  rcu_thread(const rcu_thread&) = delete;
  rcu_thread& operator=(const rcu_thread&) = delete;
};

// ---- update side ------------------------------------------------------------------------

/// synchronize_rcu() - wait for a grace period: every read-side critical section that began
/// before the call has ended when it returns, so objects unlinked before the call may be
/// freed. Requirements: not inside a read-side critical section (debug builds abort: it would
/// wait for itself); any thread, registered or not (qsbr: an online caller is taken offline
/// while it waits). Context: sleeps (futex), typically tens of microseconds to milliseconds.
/// Ordering: full barrier on both sides. Concurrent callers share grace periods.
template <rcu_flavour_type F = rcu_flavour>
inline void synchronize_rcu() noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(detail::rcu_nesting<F> != 0))
    detail::rcu_misuse(F::name, "synchronize_rcu() inside a read-side critical section (it would wait for itself)");
#endif
#if KPRIM_DEBUG_LOCKING
  debug::might_sleep_at(__FILE__, __LINE__, /*rcu=*/false);  // may sleep: not under a spinlock
#endif
  F::synchronize();
#if KPRIM_TSAN
  __tsan_acquire(&detail::rcu_tsan_gp<F>);
#endif
}

/// call_rcu() - run func(head) after a grace period, on liburcu's callback thread, without
/// waiting. Requirements: the caller is registered (qsbr: and online); head stays untouched
/// until func runs; func must not block for long (it delays every later callback). Context:
/// may be called inside a read-side critical section; never sleeps. Ordering: the caller's
/// earlier writes are visible to func. Cost: one wait-free enqueue and a futex wake if the
/// callback thread sleeps. Callbacks still queued when the process exits never run: call
/// rcu_barrier() first where that matters (leak checkers).
template <rcu_flavour_type F = rcu_flavour>
inline void call_rcu(rcu_head* head, rcu_callback_t func) noexcept {
#if KPRIM_DEBUG_RCU
  detail::rcu_check_reader<F>("call_rcu() on a thread not registered with RCU");
#endif
#if KPRIM_TSAN
  head->func = func;
  __tsan_release(head);
  F::call(&head->urcu, &detail::rcu_tsan_trampoline<F>);
#else
  F::call(head, func);
#endif
}

// ---- kfree_rcu() batching ------------------------------------------------------------------
// The kernel's kfree_rcu() does not queue one callback per object: it collects the pointers in
// per-CPU pages and hands a whole page to one grace period (kernel/rcu/tree.c, kvfree_rcu_bulk_data).
// Here each thread has such a page per flavour: kfree_rcu() stores the object's rcu_head in it
// (a few plain stores under the page owner's uncontended lock), and only a full page, or one
// older than kfree_rcu_drain_ms, goes to call_rcu(), whose single callback frees every object of
// the page. So liburcu's callback queue (a cache line shared by every updater and the callback
// thread, and a futex wake when that thread sleeps) is touched once per page instead of once per
// object. rcu_barrier() also frees every thread's partial page; a thread's partial page goes to
// call_rcu() when the thread exits.

namespace detail {

/// One page of deferred frees: rcu_head pointers whose func frees their object.
struct kfree_rcu_page {
  static constexpr std::size_t bytes = 4096;
  rcu_head head;          ///< queued with call_rcu() when the page is submitted
  unsigned n;             ///< objs[0..n) are filled
  std::int64_t first_ms;  ///< CLOCK_MONOTONIC_COARSE of objs[0]'s arrival
  rcu_head* objs[(bytes - sizeof(rcu_head) - 2 * sizeof(std::int64_t)) / sizeof(rcu_head*)];
};
static_assert(sizeof(kfree_rcu_page) <= kfree_rcu_page::bytes);

/// A page older than this is submitted by the next kfree_rcu() (the kernel's KFREE_DRAIN_JIFFIES,
/// HZ/50): bounds how long an object of a slow trickle of frees waits past its grace period.
inline constexpr std::int64_t kfree_rcu_drain_ms = 20;

[[nodiscard]] inline std::int64_t coarse_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // vDSO, no system call
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

/// Runs every object's free callback, then frees the page. Context: after a grace period that
/// began after the last object was queued (a call_rcu() callback, or after synchronize_rcu()).
inline void kfree_rcu_page_free(kfree_rcu_page* p) noexcept {
  for (unsigned i = 0; i < p->n; ++i) {
    if (i + 1 < p->n) __builtin_prefetch(p->objs[i + 1]);
    p->objs[i]->func(p->objs[i]);
  }
  ::operator delete(p, kfree_rcu_page::bytes);
}
inline void kfree_rcu_page_callback(rcu_head* h) {
  kfree_rcu_page_free(container_of(h, kfree_rcu_page, head));
}

/// One thread's page for flavour F, and the link that lets rcu_barrier() find it. `busy` is a
/// test-and-set lock: taken by the owner on every kfree_rcu() (never contended but by
/// rcu_barrier() taking the page away), so the owner never sleeps.
template <class F>
struct kfree_rcu_batch {
  std::atomic<bool> busy{false};
  kfree_rcu_page* page = nullptr;
  kfree_rcu_batch* prev = nullptr;  // registry links, under registry().lock
  kfree_rcu_batch* next = nullptr;
  bool listed = false;  // owner-only

  struct list {
    std::mutex lock;
    kfree_rcu_batch* first = nullptr;
  };
  /// Every thread's batch of flavour F; never destroyed (thread exits may follow static
  /// destruction), reachable, so leak checkers stay quiet.
  static list& registry() noexcept {
    static list* l = new list;
    return *l;
  }

  void lock() noexcept {
    while (busy.exchange(true, std::memory_order_acquire))
      while (busy.load(std::memory_order_relaxed)) cpu_relax();
  }
  void unlock() noexcept { busy.store(false, std::memory_order_release); }

  /// take() - the partial page, leaving none. Context: any thread.
  kfree_rcu_page* take() noexcept {
    lock();
    kfree_rcu_page* p = page;
    page = nullptr;
    unlock();
    return p;
  }

  [[gnu::cold, gnu::noinline]] void enlist() noexcept {
    list& r = registry();
    std::lock_guard g(r.lock);
    next = r.first;
    if (next) next->prev = this;
    r.first = this;
    listed = true;
  }

  /// Thread exit: leave the registry, then hand the partial page to a grace period (call_rcu()
  /// where this thread may still call it, else wait for one here).
  ~kfree_rcu_batch() {
    if (listed) {
      list& r = registry();
      std::lock_guard g(r.lock);
      if (prev) prev->next = next;
      else r.first = next;
      if (next) next->prev = prev;
    }
    kfree_rcu_page* p = take();
    if (!p) return;
    bool may_call = F::registered();
    if constexpr (F::needs_quiescent_states) may_call = may_call && F::read_ongoing();
    if (may_call) {
      call_rcu<F>(&p->head, &kfree_rcu_page_callback);
    } else {
      synchronize_rcu<F>();
      kfree_rcu_page_free(p);
    }
  }
};

template <class F>
[[nodiscard]] inline kfree_rcu_batch<F>& kfree_rcu_this_thread() noexcept {
  static thread_local kfree_rcu_batch<F> b;
  return b;
}

/// kfree_rcu_queue() - the body of kfree_rcu(): h->func frees h's object. Falls back to one
/// call_rcu() per object when no page can be allocated (as the kernel does). Out of line (the
/// kernel's kvfree_call_rcu() is too): it runs on the rare update path, so its code stays out
/// of the caller's loop of reads, at the price of one call per freed object.
template <class F>
[[gnu::noinline]] void kfree_rcu_queue(rcu_head* h, rcu_callback_t free_fn) noexcept {
  h->func = free_fn;
  kfree_rcu_batch<F>& b = kfree_rcu_this_thread<F>();
  if (unlikely(!b.listed)) b.enlist();
  kfree_rcu_page* full = nullptr;
  b.lock();
  kfree_rcu_page* p = b.page;
  if (unlikely(!p)) {
    p = b.page = static_cast<kfree_rcu_page*>(::operator new(kfree_rcu_page::bytes, std::nothrow));
    if (unlikely(!p)) {
      b.unlock();
      call_rcu<F>(h, free_fn);
      return;
    }
    p->n = 0;
    p->first_ms = coarse_ms();
  }
  p->objs[p->n++] = h;
  if (unlikely(p->n == std::size(p->objs) || coarse_ms() - p->first_ms >= kfree_rcu_drain_ms)) {
    full = p;
    b.page = nullptr;
  }
  b.unlock();
  if (unlikely(full != nullptr)) call_rcu<F>(&full->head, &kfree_rcu_page_callback);
}

/// kfree_rcu_drain() - free every thread's partial page of flavour F after a grace period.
/// Context: may sleep (synchronize_rcu()); not inside a read-side section.
template <class F>
inline void kfree_rcu_drain() noexcept {
  std::vector<kfree_rcu_page*> pages;
  {
    auto& r = kfree_rcu_batch<F>::registry();
    std::lock_guard g(r.lock);
    for (auto* b = r.first; b; b = b->next)
      if (kfree_rcu_page* p = b->take()) pages.push_back(p);
  }
  if (pages.empty()) return;
  synchronize_rcu<F>();  // every object in them was unreachable before take()
  for (kfree_rcu_page* p : pages) kfree_rcu_page_free(p);
}

}  // namespace detail

/// rcu_barrier() - wait until every callback queued by call_rcu() before the call has run.
/// Also frees every object kfree_rcu() still holds in any thread's partial batch page.
/// Use before unloading callback code, destroying what callbacks touch, or exiting.
/// Requirements: any thread (qsbr: an online caller is taken offline while it waits); not
/// inside a read-side critical section (liburcu would print an error and return at once;
/// debug builds abort); not from a callback. Context: sleeps (at least one grace period).
template <rcu_flavour_type F = rcu_flavour>
inline void rcu_barrier() noexcept {
#if KPRIM_DEBUG_RCU
  if (unlikely(detail::rcu_nesting<F> != 0))
    detail::rcu_misuse(F::name, "rcu_barrier() inside a read-side critical section (it would wait for itself)");
#endif
  detail::kfree_rcu_drain<F>();
  F::barrier();
#if KPRIM_TSAN
  __tsan_acquire(&detail::rcu_tsan_cb_done<F>);
#endif
}

namespace detail {
template <auto Member>
void kfree_rcu_callback(rcu_head* head) {
  delete container_of<Member>(head);
}
}  // namespace detail

/// kfree_rcu<&T::member>(p) - `delete p` after a grace period, p's rcu_head being
/// p->member: the common call_rcu() whose callback only frees. Batched as in the kernel: p
/// joins the calling thread's page of pending frees, and one call_rcu() per page (509 objects,
/// or the page's age reaching kfree_rcu_drain_ms at the next kfree_rcu()) frees them all. So
/// up to one page per thread can wait past its grace period until the page fills, the thread
/// exits, or rcu_barrier() runs (which frees them: call it before exit where leak checkers
/// look). No ordering against call_rcu() callbacks. Requirements: p came from `new T`, is
/// unreachable by new readers (unlinked or replaced), and the caller may call call_rcu().
/// Context: never sleeps (the page's lock is only ever contended by rcu_barrier()'s brief
/// take-over). Cost: a few stores and a vDSO coarse clock read; a call_rcu() per page.
/// nullptr is ignored.
template <auto Member, rcu_flavour_type F = rcu_flavour, class T>
inline void kfree_rcu(T* p) noexcept {
  static_assert(std::is_same_v<typename detail::member_traits<Member>::type, rcu_head>,
                "kfree_rcu<&T::member>: member must be a kprim::rcu_head");
  static_assert(std::is_same_v<typename detail::member_traits<Member>::owner, T>,
                "kfree_rcu<&T::member>: member of another type");
  if (!p) return;
#if KPRIM_DEBUG_RCU
  detail::rcu_check_reader<F>("kfree_rcu() on a thread not registered with RCU");
#endif
  detail::kfree_rcu_queue<F>(&(p->*Member), &detail::kfree_rcu_callback<Member>);
}

/// kfree_rcu_mightsleep(p) - `delete p` after a grace period, for objects without an
/// rcu_head: waits in synchronize_rcu() first. Context: sleeps; not inside a read-side
/// critical section. nullptr is ignored (no wait).
template <rcu_flavour_type F = rcu_flavour, class T>
inline void kfree_rcu_mightsleep(T* p) noexcept {
  if (!p) return;
  synchronize_rcu<F>();
  delete p;
}

}  // namespace kprim
