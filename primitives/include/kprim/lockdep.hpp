// kprim/lockdep.hpp - the kernel's lock validator (kernel/locking/lockdep.c) for kprim's
// locks, and the ThreadSanitizer annotations that make TSan see them as mutexes.
//
// lockdep (KPRIM_DEBUG_LOCKING=1: the debug, asan and tsan presets). Every lock belongs to a
// class, as in the kernel: the locks set up at one spin_lock_init()/mutex_init()/init_rwsem()/
// rwlock_init() call site share the site's class, DEFINE_SPINLOCK/DEFINE_MUTEX give the
// declaration its own class, lockdep_set_class() names a lock_class_key; a lock that was never
// initialised that way (a default-constructed member) is a class of its own, keyed by its
// address until its destructor retires the class (so a lock freed and re-made at the same
// address does not inherit the old one's dependencies). spin_lock_nested()/mutex_lock_nested()
// pick subclass 1..7 of the class. Checked at every acquisition through the kernel verbs
// (spin_lock, read_lock/write_lock, mutex_lock, down_read/down_write and their _nested and
// trylock forms), before the caller waits:
//   - the class is already held by this thread: "possible recursive locking detected"
//     (reported before an AA would hang; trylocks and rwlock_t readers are exempt);
//   - a new dependency held -> acquired closes a cycle in the graph recorded by all threads
//     so far: "possible circular locking dependency detected", with both chains, whether or
//     not the threads ever deadlocked;
//   - a class taken in handler context (in_irq()) and elsewhere with interrupts enabled:
//     "inconsistent lock state" / "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.";
//   - unlocking a lock this thread does not hold: "bad unlock balance detected!";
//   - lockdep_assert_held(l) where l is not held by this thread;
//   - rcu_dereference_check() outside a reader with its condition false (kprim/rcu.hpp):
//     "suspicious rcu_dereference_check() usage!".
// Each report prints once per dependency/class/site, then the held locks and a backtrace, and
// the program continues, or aborts with KPRIM_DEBUG_ABORT=1 or debug::set_abort_on_report().
//
// Cost (bench_locks, layer on): a lookup of the lock's class in a lock-free address table,
// a scan of the thread's held locks, one bit test in the dependency bitmap when a lock is
// already held, one usage-word test; the graph mutex only when a dependency or usage is new.
// With KPRIM_DEBUG_LOCKING=0 nothing here is compiled in (test_codegen).
//
// Test: primitives/tests/lockdep_test.cpp (and tsan_lock_report_test.cpp for TSan).
// Benchmark: bench/bench_locks.cpp (layer on vs off).
#pragma once

#include <kprim/compiler.hpp>
#include <kprim/context.hpp>

#if KPRIM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#include <cstdint>
#include <source_location>

namespace kprim {

/// lock_class_key - a static object naming a lock class (the kernel's struct lock_class_key):
///   static kprim::lock_class_key my_key{"my_lock"};  lockdep_set_class(&lock, &my_key);
struct lock_class_key {
  const char* name = nullptr;
};

#if KPRIM_DEBUG_LOCKING
namespace debug {

/// Acquire flags.
inline constexpr unsigned acq_read = 1u << 0;       // shared (down_read, read_lock)
inline constexpr unsigned acq_recursive = 1u << 1;  // recursive read (rwlock_t readers): no AA, no incoming order
inline constexpr unsigned acq_try = 1u << 2;        // trylock: cannot deadlock, adds no order
inline constexpr unsigned acq_preempt = 1u << 3;    // a spinning lock: counts in preempt_count

inline constexpr unsigned max_lock_classes = 8192;  // the kernel's MAX_LOCKDEP_KEYS
inline constexpr unsigned class_words = max_lock_classes / 64;
inline constexpr unsigned addr_slots = 1u << 16;
inline constexpr unsigned max_subclasses = 8;  // the kernel's MAX_LOCKDEP_SUBCLASSES

/// Usage bits of a class (the kernel's LOCK_USED_IN_HARDIRQ, LOCK_ENABLED_HARDIRQ, _READ).
inline constexpr unsigned usage_in_irq_w = 1u << 0;
inline constexpr unsigned usage_in_irq_r = 1u << 1;
inline constexpr unsigned usage_irq_on_w = 1u << 2;
inline constexpr unsigned usage_irq_on_r = 1u << 3;
inline constexpr unsigned usage_reported = 1u << 4;  // inconsistent-state report printed
inline constexpr unsigned recursion_reported = 1u << 5;

// The shared state (primitives/src/lockdep.cpp). Read lock-free on the fast path; written
// under the graph mutex.
extern std::atomic<std::uint64_t> addr_table[addr_slots];                     // (addr & 2^48-1) | class << 48
extern std::atomic<unsigned> addr_table_seq;                                  // odd while an entry moves
extern std::atomic<std::uint64_t> dependency[max_lock_classes][class_words];  // [a] bit b: a -> b seen
extern std::atomic<unsigned> class_usage[max_lock_classes];

[[gnu::cold]] unsigned register_lock(const void* lock, const char* kind, const std::source_location& at) noexcept;
[[gnu::cold]] unsigned subclass_of(unsigned cls, unsigned subclass) noexcept;
[[gnu::cold]] void report_recursive(const void* lock, unsigned cls, unsigned held_index, const char* kind,
                                    const std::source_location& at) noexcept;
[[gnu::cold]] void add_dependency(unsigned prev_index, unsigned cls, const void* lock, const char* kind,
                                  const std::source_location& at) noexcept;
[[gnu::cold]] void mark_usage(unsigned cls, unsigned bit, const void* lock, const char* kind,
                              const std::source_location& at) noexcept;
[[gnu::cold]] void report_bad_unlock(const void* lock, const std::source_location& at) noexcept;
[[gnu::cold]] void report_not_held(const void* lock, const char* expr, const char* file, unsigned line) noexcept;
[[gnu::cold]] void report_rcu_suspicious(const char* what, const std::source_location& at) noexcept;
[[gnu::cold]] void lock_destroyed_slow(const void* lock) noexcept;
void set_class(const void* lock, const lock_class_key* key, const char* kind, const std::source_location& at) noexcept;
void define_class(const void* lock, const char* name, const char* kind, const char* file, unsigned line) noexcept;
void init_at_site(const void* lock, const char* kind, const std::source_location& at) noexcept;

inline unsigned addr_hash(const void* lock) noexcept {
  return static_cast<unsigned>((reinterpret_cast<std::uintptr_t>(lock) >> 2) * 0x9E3779B97F4A7C15ull >> 48);
}
inline constexpr std::uint64_t addr_bits = (1ull << 48) - 1;

/// lookup_class() - the lock's class, or 0 when the table does not list it. A miss while an
/// entry moved (seq changed) is not trusted: the caller's slow path looks again under the mutex.
inline unsigned probe_class(const void* lock) noexcept {
  const std::uint64_t want = reinterpret_cast<std::uintptr_t>(lock) & addr_bits;
  for (unsigned i = addr_hash(lock), n = 0; n < addr_slots; ++n, i = (i + 1) & (addr_slots - 1)) {
    const std::uint64_t e = addr_table[i].load(std::memory_order_acquire);
    if (e == 0) break;
    if ((e & addr_bits) == want) return static_cast<unsigned>(e >> 48);
  }
  return 0;
}
inline unsigned lookup_class(const void* lock, bool& sure) noexcept {
  if (const unsigned cls = probe_class(lock); likely(cls != 0)) return cls;  // a hit is always right
  const unsigned seq = addr_table_seq.load(std::memory_order_acquire);
  const unsigned cls = probe_class(lock);
  sure = cls != 0 || ((seq & 1) == 0 && addr_table_seq.load(std::memory_order_acquire) == seq);
  return cls;
}

inline unsigned class_of(const void* lock, unsigned subclass, const char* kind, const std::source_location& at) noexcept {
  bool sure = false;
  unsigned cls = lookup_class(lock, sure);
  if (unlikely(cls == 0)) cls = register_lock(lock, kind, at);
  if (unlikely(subclass != 0) && cls != 0) cls = subclass_of(cls, subclass);
  return cls;
}

/// lock_acquire() - the pre-acquire hook: run the checks before the caller may wait (so an AA
/// reports instead of hanging). Returns the class for lock_acquired().
inline unsigned lock_acquire(const void* lock, const char* kind, unsigned flags, unsigned subclass,
                             const std::source_location& at) noexcept {
  thread_context& c = tls_context;
  if (unlikely(c.lockdep_recursion != 0)) return 0;  // a handler interrupted lockdep itself
  const unsigned cls = class_of(lock, subclass, kind, at);
  if (unlikely(cls == 0)) return 0;  // out of classes: untracked
  const unsigned depth = c.held_depth < max_held_locks ? c.held_depth : max_held_locks;
  if (!(flags & acq_try)) {
    for (unsigned i = 0; i < depth; ++i)
      if (unlikely(c.held[i].cls == cls) && !((flags & acq_recursive) && (c.held[i].flags & acq_read)))
        report_recursive(lock, cls, i, kind, at);
    if (depth != 0 && !(flags & acq_recursive)) {
      const unsigned prev = c.held[depth - 1].cls;
      if (prev != 0 && unlikely(!(dependency[prev][cls / 64].load(std::memory_order_relaxed) & (1ull << (cls % 64)))))
        add_dependency(depth - 1, cls, lock, kind, at);
    }
  }
  const bool read = flags & acq_read;
  const unsigned bit = in_irq() ? (read ? usage_in_irq_r : usage_in_irq_w)
                                : (c.irqs_off ? 0u : (read ? usage_irq_on_r : usage_irq_on_w));
  if (bit != 0 && unlikely(!(class_usage[cls].load(std::memory_order_relaxed) & bit))) mark_usage(cls, bit, lock, kind, at);
  return cls;
}

/// lock_acquired() - the post-acquire hook: push the lock on this thread's held stack (and
/// count a spinning lock in preempt_count). The entry is written before and after the depth
/// grows, so a handler that interrupts in between and pushes its own leaves this one intact.
inline void lock_acquired(const void* lock, unsigned cls, const char* kind, unsigned flags,
                          const std::source_location& at) noexcept {
  thread_context& c = tls_context;
  if (flags & acq_preempt) c.preempt_count += PREEMPT_OFFSET;
  const unsigned d = c.held_depth;
  const held_lock e{lock, kind, at.file_name(), at.line(), cls, flags};
  if (d < max_held_locks) c.held[d] = e;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  c.held_depth = d + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (d < max_held_locks) c.held[d] = e;
}

/// lock_released() - pop `lock` from the held stack (unlock out of order allowed). A lock this
/// thread does not hold: "bad unlock balance detected!" (another thread's lock included; the
/// kernel's locks may not be handed between threads either).
inline void lock_released(const void* lock, const std::source_location& at = std::source_location::current()) noexcept {
  thread_context& c = tls_context;
  const unsigned top = c.held_depth < max_held_locks ? c.held_depth : max_held_locks;
  for (unsigned i = top; i-- > 0;) {
    if (c.held[i].lock != lock) continue;
    const unsigned flags = c.held[i].flags;
    for (unsigned j = i; j + 1 < top; ++j) c.held[j] = c.held[j + 1];
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --c.held_depth;
    if (flags & acq_preempt) c.preempt_count -= PREEMPT_OFFSET;
    return;
  }
  if (c.held_depth > max_held_locks) {  // overflowed: the entry was never stored
    --c.held_depth;
    return;
  }
  if (c.lockdep_recursion == 0) report_bad_unlock(lock, at);
}

/// lock_destroyed() - a lock's destructor: forget its address (and retire its own class).
inline void lock_destroyed(const void* lock) noexcept {
  bool sure = false;
  if (lookup_class(lock, sure) != 0 || !sure) lock_destroyed_slow(lock);
}

/// lock_is_held() - this thread holds `lock` (lockdep_is_held()).
[[nodiscard]] inline bool lock_is_held(const void* lock) noexcept {
  const thread_context& c = tls_context;
  const unsigned top = c.held_depth < max_held_locks ? c.held_depth : max_held_locks;
  for (unsigned i = 0; i < top; ++i)
    if (c.held[i].lock == lock) return true;
  return false;
}

}  // namespace debug

/// lockdep_set_class() - put `lock` in the class named by `key` (before first use).
template <class L>
inline void lockdep_set_class(L* lock, const lock_class_key* key,
                              const std::source_location& at = std::source_location::current()) noexcept {
  debug::set_class(lock, key, "lock", at);
}
/// lockdep_is_held() - the calling thread holds the lock (for assertions).
#define lockdep_is_held(l) (::kprim::debug::lock_is_held(l))
/// lockdep_assert_held() - report (the kernel WARNs) unless the calling thread holds `l`.
#define lockdep_assert_held(l)                                                                        \
  do {                                                                                                \
    if (!::kprim::debug::lock_is_held(l)) ::kprim::debug::report_not_held(l, #l, __FILE__, __LINE__); \
  } while (0)

#else  // !KPRIM_DEBUG_LOCKING

template <class L>
inline void lockdep_set_class(L*, const lock_class_key*) noexcept {}
#define lockdep_is_held(l) ((void)(l), true)
#define lockdep_assert_held(l) ((void)(l))

#endif

// ---- ThreadSanitizer annotations -------------------------------------------------------
// Every kprim lock's std-style members (lock/try_lock/unlock and the shared forms) call these,
// so TSan names the lock in its race reports ("Mutex M12 ... created at") and runs its own
// lock-order (deadlock) detector on them. Between pre_ and post_ TSan ignores the lock's own
// memory accesses and treats the pair as one acquire/release on the lock's address.
namespace tsan {
#if KPRIM_TSAN
inline void pre_lock(void* l, unsigned f = 0) noexcept { __tsan_mutex_pre_lock(l, f); }
inline void post_lock(void* l, unsigned f = 0) noexcept { __tsan_mutex_post_lock(l, f, 0); }
inline void pre_unlock(void* l, unsigned f = 0) noexcept { __tsan_mutex_pre_unlock(l, f); }
inline void post_unlock(void* l, unsigned f = 0) noexcept { __tsan_mutex_post_unlock(l, f); }
inline void destroy(void* l) noexcept { __tsan_mutex_destroy(l, 0); }
/// divert_begin()/divert_end() - a lock's slow path (inside pre_/post_, where TSan ignores
/// synchronisation) does synchronisation of its own that TSan must see (a registry's std::mutex).
inline void divert_begin() noexcept { __tsan_mutex_pre_divert(nullptr, 0); }
inline void divert_end() noexcept { __tsan_mutex_post_divert(nullptr, 0); }
inline constexpr unsigned read = __tsan_mutex_read_lock;
inline constexpr unsigned trylock = __tsan_mutex_try_lock;
inline constexpr unsigned trylock_failed = __tsan_mutex_try_lock_failed;
#else
inline void pre_lock(void*, unsigned = 0) noexcept {}
inline void post_lock(void*, unsigned = 0) noexcept {}
inline void pre_unlock(void*, unsigned = 0) noexcept {}
inline void post_unlock(void*, unsigned = 0) noexcept {}
inline void destroy(void*) noexcept {}
inline void divert_begin() noexcept {}
inline void divert_end() noexcept {}
inline constexpr unsigned read = 0, trylock = 0, trylock_failed = 0;
#endif
/// try_result() - the post_lock flags of a trylock that returned `ok`.
inline constexpr unsigned try_result(bool ok, unsigned f = 0) noexcept { return f | trylock | (ok ? 0 : trylock_failed); }
}  // namespace tsan

/// The destructor every kprim lock has when a checker is built in: lockdep forgets the
/// address, TSan the mutex. Release builds keep the locks trivially destructible.
#if KPRIM_DEBUG_LOCKING || KPRIM_TSAN
#define KPRIM_LOCK_CHECKERS 1
#else
#define KPRIM_LOCK_CHECKERS 0
#endif
inline void lock_checkers_destroy([[maybe_unused]] void* l) noexcept {
#if KPRIM_DEBUG_LOCKING
  debug::lock_destroyed(l);
#endif
  tsan::destroy(l);
}

namespace detail {
/// annotated_spinlock<Lock> - the std-style lock()/try_lock()/unlock() of the spinlocks
/// (qspinlock, ticket, tas, ttas): ThreadSanitizer's annotations around Lock's raw_*()
/// algorithm (nothing without TSan) and, with a checker built in, the destructor that makes
/// lockdep and TSan forget the address. Empty, so each lock's size and layout stay its own;
/// as the first and only base it sits at the lock's address, the key both checkers use.
template <class Lock>
class annotated_spinlock {
 public:
  void lock() noexcept {
    tsan::pre_lock(self());
    self()->raw_lock();
    tsan::post_lock(self());
  }
  [[nodiscard]] bool try_lock() noexcept {
    tsan::pre_lock(self(), tsan::trylock);
    const bool ok = self()->raw_try_lock();
    tsan::post_lock(self(), tsan::try_result(ok));
    return ok;
  }
  void unlock() noexcept {
    tsan::pre_unlock(self());
    self()->raw_unlock();
    tsan::post_unlock(self());
  }

 protected:
  annotated_spinlock() = default;
#if KPRIM_LOCK_CHECKERS
  ~annotated_spinlock() { lock_checkers_destroy(this); }  // the Lock part is gone: its address only
#endif

 private:
  Lock* self() noexcept { return static_cast<Lock*>(this); }
};
}  // namespace detail

}  // namespace kprim
