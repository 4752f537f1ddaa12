// kprim/refcount.hpp: refcount_t, the kernel's overflow-safe reference count
// (include/linux/refcount.h, lib/refcount.c).
//
// Semantics, as in the kernel:
//   - the counter saturates at REFCOUNT_SATURATED (INT_MIN / 2) instead of wrapping: an
//     overflow, an increment from zero (use-after-free) or an underflow pins it there, the
//     object leaks instead of being freed twice, and a warning is printed once per kind;
//   - refcount_inc()/_add() are relaxed; refcount_dec_and_test()/_sub_and_test() are release,
//     plus acquire when they return true (the caller may then free the object);
//   - refcount_inc_not_zero()/_add_not_zero() are relaxed (with a control dependency).
#pragma once

#include <kprim/atomic.hpp>
#include <kprim/barrier.hpp>
#include <kprim/compiler.hpp>

#include <climits>
#include <cstdio>

namespace kprim {

/// refcount_t - a reference count. Layout: one atomic_t.
struct refcount_t {
  atomic_t refs;
};

inline constexpr int REFCOUNT_MAX = INT_MAX;
inline constexpr int REFCOUNT_SATURATED = INT_MIN / 2;

/// Why refcount_warn_saturate() was called (the kernel's enum refcount_saturation_type).
enum refcount_saturation_type {
  REFCOUNT_ADD_NOT_ZERO_OVF,
  REFCOUNT_ADD_OVF,
  REFCOUNT_ADD_UAF,
  REFCOUNT_SUB_UAF,
  REFCOUNT_DEC_LEAK,
  REFCOUNT_SATURATION_KINDS
};

namespace detail {
/// Per-kind event counters (every event) and warned-once flags (one message per kind).
struct refcount_warn_state {
  unsigned long events[REFCOUNT_SATURATION_KINDS] = {};
  bool warned[REFCOUNT_SATURATION_KINDS] = {};
};
inline refcount_warn_state& refcount_warnings() noexcept {
  static refcount_warn_state s;
  return s;
}
}  // namespace detail

/// refcount_saturation_events() - how many saturation events of this kind happened in this
/// process (for tests and diagnostics; the kernel only has the WARN).
inline unsigned long refcount_saturation_events(refcount_saturation_type t) noexcept {
  return __atomic_load_n(&detail::refcount_warnings().events[t], __ATOMIC_RELAXED);
}

/// refcount_warn_saturate() - pin r at REFCOUNT_SATURATED and warn (once per kind).
/// Context: any; cold path. Writes one line to stderr the first time of each kind.
[[gnu::cold, gnu::noinline]] inline void refcount_warn_saturate(refcount_t* r,
                                                                refcount_saturation_type t) noexcept {
  atomic_set(&r->refs, REFCOUNT_SATURATED);
  auto& s = detail::refcount_warnings();
  __atomic_fetch_add(&s.events[t], 1ul, __ATOMIC_RELAXED);
  if (__atomic_exchange_n(&s.warned[t], true, __ATOMIC_RELAXED)) return;
  static const char* const what[] = {
      "saturated; leaking memory.",        // ADD_NOT_ZERO_OVF
      "saturated; leaking memory.",        // ADD_OVF
      "addition on 0; use-after-free.",    // ADD_UAF
      "underflow; use-after-free.",        // SUB_UAF
      "decrement hit 0; leaking memory.",  // DEC_LEAK
  };
  std::fprintf(stderr, "kprim: refcount_t: %s\n", what[t]);
}

#define REFCOUNT_INIT(n) \
  { ATOMIC_INIT(n) }

/// refcount_set() - set the count (no ordering). refcount_read() - the count (no ordering).
inline void refcount_set(refcount_t* r, int n) noexcept { atomic_set(&r->refs, n); }
[[nodiscard]] inline unsigned int refcount_read(const refcount_t* r) noexcept {
  return static_cast<unsigned int>(atomic_read(&r->refs));
}

/// refcount_add_not_zero() - add i unless the count is 0; old value in *oldp. Relaxed.
/// Returns false if the count was 0 (the object is being freed: do not use it).
[[nodiscard]] inline bool refcount_add_not_zero(int i, refcount_t* r, int* oldp = nullptr) noexcept {
  int old = atomic_read(&r->refs);
  do {
    if (!old) break;
  } while (!atomic_try_cmpxchg_relaxed(&r->refs, &old, detail::wrap_add(old, i)));
  if (oldp) *oldp = old;
  if (unlikely(old < 0 || detail::wrap_add(old, i) < 0)) refcount_warn_saturate(r, REFCOUNT_ADD_NOT_ZERO_OVF);
  return old != 0;
}
[[nodiscard]] inline bool refcount_inc_not_zero(refcount_t* r, int* oldp = nullptr) noexcept {
  return refcount_add_not_zero(1, r, oldp);
}

/// refcount_add() - add i references. Relaxed. Warns (and saturates) on 0 or on overflow.
inline void refcount_add(int i, refcount_t* r, int* oldp = nullptr) noexcept {
  int old = atomic_fetch_add_relaxed(i, &r->refs);
  if (oldp) *oldp = old;
  if (unlikely(!old))
    refcount_warn_saturate(r, REFCOUNT_ADD_UAF);
  else if (unlikely(old < 0 || detail::wrap_add(old, i) < 0))
    refcount_warn_saturate(r, REFCOUNT_ADD_OVF);
}
inline void refcount_inc(refcount_t* r, int* oldp = nullptr) noexcept { refcount_add(1, r, oldp); }

/// refcount_sub_and_test() - drop i references; true when that was the last (the caller
/// frees). Release ordering, plus acquire on true. Warns (saturates) on underflow.
[[nodiscard]] inline bool refcount_sub_and_test(int i, refcount_t* r, int* oldp = nullptr) noexcept {
  int old = atomic_fetch_sub_release(i, &r->refs);
  if (oldp) *oldp = old;
  if (old == i) {
    // Acquire: the freeing thread sees every earlier thread's accesses to the object.
    // (The kernel's smp_acquire__after_ctrl_dep(); a real fence here is what C++ needs.
    // ThreadSanitizer does not model fences: there, an acquire re-load of the counter, which
    // reads the end of the release sequence, gives the same happens-before.)
#if KPRIM_TSAN
    (void)atomic_read_acquire(&r->refs);
#else
    std::atomic_thread_fence(std::memory_order_acquire);
#endif
    return true;
  }
  if (unlikely(old < 0 || detail::wrap_sub(old, i) < 0)) refcount_warn_saturate(r, REFCOUNT_SUB_UAF);
  return false;
}
[[nodiscard]] inline bool refcount_dec_and_test(refcount_t* r, int* oldp = nullptr) noexcept {
  return refcount_sub_and_test(1, r, oldp);
}

/// refcount_dec() - drop a reference that is known not to be the last. Release.
/// Warns (DEC_LEAK) and saturates if it was the last.
inline void refcount_dec(refcount_t* r, int* oldp = nullptr) noexcept {
  int old = atomic_fetch_sub_release(1, &r->refs);
  if (oldp) *oldp = old;
  if (unlikely(old <= 1)) refcount_warn_saturate(r, REFCOUNT_DEC_LEAK);
}

/// refcount_dec_if_one() - 1 -> 0 or nothing; true if it did. Release.
[[nodiscard]] inline bool refcount_dec_if_one(refcount_t* r) noexcept {
  int val = 1;
  return atomic_try_cmpxchg_release(&r->refs, &val, 0);
}

/// refcount_dec_not_one() - decrement unless the count is 1; false if it was 1.
/// A saturated counter stays saturated (and reports true). Release.
[[nodiscard]] inline bool refcount_dec_not_one(refcount_t* r) noexcept {
  int val = atomic_read(&r->refs);
  int n;
  do {
    if (unlikely(val == REFCOUNT_SATURATED)) return true;
    if (val == 1) return false;
    n = detail::wrap_sub(val, 1);
    if (n < 0) {
      refcount_warn_saturate(r, REFCOUNT_SUB_UAF);
      return true;
    }
  } while (!atomic_try_cmpxchg_release(&r->refs, &val, n));
  return true;
}

/// refcount_dec_and_lock() - decrement; if it hits 0, return true with `lock` held.
/// Lock is anything with lock()/unlock() (kprim spinlock, std::mutex). Release / acquire.
template <class Lock>
[[nodiscard]] inline bool refcount_dec_and_lock(refcount_t* r, Lock& lock) noexcept(noexcept(lock.lock())) {
  if (refcount_dec_not_one(r)) return false;
  lock.lock();
  if (!refcount_dec_and_test(r)) {
    lock.unlock();
    return false;
  }
  return true;
}

}  // namespace kprim
