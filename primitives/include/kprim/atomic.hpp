// kprim/atomic.hpp: atomic_t, atomic64_t and atomic_long_t with the kernel's API and ordering
// (Documentation/atomic_t.txt, include/linux/atomic/atomic-instrumented.h).
//
// Ordering, as in the kernel:
//   - atomic_read()/atomic_set() and the non-value-returning RMW ops (atomic_add(), _inc(),
//     _and() ...) are RELAXED: they order nothing (pair them with smp_mb__{before,after}_atomic()).
//   - value-returning RMW ops (_return, fetch_, xchg, cmpxchg, try_cmpxchg, _and_test,
//     add_unless, inc_not_zero ...) are FULLY ORDERED: as if smp_mb() ran before and after.
//     A failed cmpxchg/try_cmpxchg orders nothing.
//   - _relaxed, _acquire and _release variants of the value-returning ops order as named.
// Arithmetic wraps (two's complement), as the kernel's -fno-strict-overflow build does.
// Every access is a GCC __atomic builtin on the counter (well-defined for C++ and TSan);
// atomic_read() compiles to one plain mov on x86-64, atomic_inc() to `lock addl $1`.
//
// The code each architecture gets, as the kernel's arch headers generate it:
//   x86-64: a fully ordered RMW is one locked instruction (lock xadd / cmpxchg / xchg);
//     relaxed ones are the same instructions (every locked op is a full barrier).
//   arm64 with LSE (__ARM_FEATURE_ATOMICS: -march=armv8.1-a or +lse; asm/atomic_lse.h):
//     fully ordered = one `*al` instruction (ldaddal, ldclral, ldsetal, ldeoral, swpal,
//     casal), which the architecture orders against all earlier and later accesses;
//     _acquire/_release/_relaxed = ldadda/ldaddl/ldadd ...; the non-value-returning ops
//     (atomic_add, _inc, _and, _or ...) are the store forms stadd/stclr/stset/steor.
//   arm64 without LSE (asm/atomic_ll_sc.h): an ldxr/stlxr loop then `dmb ish` for the fully
//     ordered ops (the release store plus the trailing barrier: acquire+release alone would
//     let a later access pass the store), ldxr/stxr for relaxed. With g++'s default
//     -moutline-atomics the loop is a call to libgcc's __aarch64_*_rel helper instead, which
//     picks LSE at run time (the kernel's alternatives do the same by patching).
//   elsewhere: fence; relaxed op; fence (asm-generic's fallback).
// Test: tests/atomic_test.cpp (behaviour), tests/codegen_test.cpp (the instructions above).
// Benchmark: bench/bench_atomics.cpp.
#pragma once

#include <kprim/barrier.hpp>
#include <kprim/compiler.hpp>

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace kprim {

/// atomic_t - a 32-bit counter for the atomic_*() API. Layout: one int (the kernel's struct).
struct atomic_t {
  int counter;
};
/// atomic64_t - a 64-bit counter for the atomic64_*() API, 8-byte aligned even on 32-bit.
struct atomic64_t {
  alignas(8) long long counter;
};
/// atomic_long_t - a long-sized counter for the atomic_long_*() API.
struct atomic_long_t {
  long counter;
};
static_assert(sizeof(atomic_t) == 4 && sizeof(atomic64_t) == 8 && sizeof(atomic_long_t) == sizeof(long));
static_assert(std::is_standard_layout_v<atomic_t> && std::is_trivially_copyable_v<atomic_t>);

namespace detail {

enum class ord { relaxed,
                 acquire,
                 release,
                 full };

/// How a fully ordered RMW is built on this target.
enum class full_rmw {
  seq_cst,      // one seq_cst RMW: x86-64 (locked op), arm64 LSE (the *al instruction)
  release_mb,   // release RMW then smp_mb(): arm64 LL/SC (ldxr/stlxr; dmb ish)
  fence_fence,  // fence; relaxed RMW; fence: asm-generic
};
#if defined(__x86_64__) || defined(__i386__) || (defined(__aarch64__) && defined(__ARM_FEATURE_ATOMICS))
inline constexpr full_rmw full_kind = full_rmw::seq_cst;
#elif defined(__aarch64__)
inline constexpr full_rmw full_kind = full_rmw::release_mb;
#else
inline constexpr full_rmw full_kind = full_rmw::fence_fence;
#endif

template <ord O>
inline constexpr int mo = O == ord::relaxed                   ? __ATOMIC_RELAXED
                          : O == ord::acquire                 ? __ATOMIC_ACQUIRE
                          : O == ord::release                 ? __ATOMIC_RELEASE
                          : full_kind == full_rmw::seq_cst    ? __ATOMIC_SEQ_CST
                          : full_kind == full_rmw::release_mb ? __ATOMIC_RELEASE
                                                              : __ATOMIC_RELAXED;

template <ord O>
inline void pre() noexcept {
  if constexpr (O == ord::full && full_kind == full_rmw::fence_fence) smp_mb();
}
template <ord O>
inline void post() noexcept {
  if constexpr (O == ord::full && full_kind != full_rmw::seq_cst) smp_mb();
}

#if defined(__aarch64__) && defined(__ARM_FEATURE_ATOMICS) && !KPRIM_TSAN
// The non-value-returning ops as the kernel's LSE store forms: st<op> is ld<op> with the
// zero register as destination, which the CPU may perform "far" (at the cache or
// interconnect) because no value comes back. g++ emits ld<op> into a dead register instead.
#define KPRIM_LSE_STOP(name, insn)                   \
  template <class C>                                 \
  inline void name(C* p, C i) noexcept {             \
    static_assert(sizeof(C) == 4 || sizeof(C) == 8); \
    if constexpr (sizeof(C) == 4)                    \
      asm volatile(insn " %w[i], %[v]"               \
                   : [v] "+Q"(*p)                    \
                   : [i] "r"(i));                    \
    else                                             \
      asm volatile(insn " %[i], %[v]"                \
                   : [v] "+Q"(*p)                    \
                   : [i] "r"(i));                    \
  }
KPRIM_LSE_STOP(op_add, "stadd")
KPRIM_LSE_STOP(op_clr, "stclr")
KPRIM_LSE_STOP(op_set, "stset")
KPRIM_LSE_STOP(op_eor, "steor")
#undef KPRIM_LSE_STOP
template <class C>
inline void op_sub(C* p, C i) noexcept { op_add(p, static_cast<C>(-static_cast<std::make_unsigned_t<C>>(i))); }
template <class C>
inline void op_and(C* p, C i) noexcept { op_clr(p, static_cast<C>(~i)); }
#else
template <class C>
inline void op_add(C* p, C i) noexcept { (void)__atomic_fetch_add(p, i, __ATOMIC_RELAXED); }
template <class C>
inline void op_sub(C* p, C i) noexcept { (void)__atomic_fetch_sub(p, i, __ATOMIC_RELAXED); }
template <class C>
inline void op_and(C* p, C i) noexcept { (void)__atomic_fetch_and(p, i, __ATOMIC_RELAXED); }
template <class C>
inline void op_clr(C* p, C i) noexcept { (void)__atomic_fetch_and(p, static_cast<C>(~i), __ATOMIC_RELAXED); }
template <class C>
inline void op_set(C* p, C i) noexcept { (void)__atomic_fetch_or(p, i, __ATOMIC_RELAXED); }
template <class C>
inline void op_eor(C* p, C i) noexcept { (void)__atomic_fetch_xor(p, i, __ATOMIC_RELAXED); }
#endif

/// Wrapping arithmetic (no signed-overflow UB; the kernel builds with -fno-strict-overflow).
template <class C>
constexpr C wrap_add(C a, C b) noexcept {
  using U = std::make_unsigned_t<C>;
  return static_cast<C>(static_cast<U>(a) + static_cast<U>(b));
}
template <class C>
constexpr C wrap_sub(C a, C b) noexcept {
  using U = std::make_unsigned_t<C>;
  return static_cast<C>(static_cast<U>(a) - static_cast<U>(b));
}

#define KPRIM_ATOMIC_BINOP(name, builtin) \
  template <ord O, class C>               \
  inline C name(C* p, C i) noexcept {     \
    pre<O>();                             \
    C r = builtin(p, i, mo<O>);           \
    post<O>();                            \
    return r;                             \
  }
KPRIM_ATOMIC_BINOP(add_return, __atomic_add_fetch)
KPRIM_ATOMIC_BINOP(sub_return, __atomic_sub_fetch)
KPRIM_ATOMIC_BINOP(fetch_add, __atomic_fetch_add)
KPRIM_ATOMIC_BINOP(fetch_sub, __atomic_fetch_sub)
KPRIM_ATOMIC_BINOP(fetch_and, __atomic_fetch_and)
KPRIM_ATOMIC_BINOP(fetch_or, __atomic_fetch_or)
KPRIM_ATOMIC_BINOP(fetch_xor, __atomic_fetch_xor)
KPRIM_ATOMIC_BINOP(xchg, __atomic_exchange_n)
#undef KPRIM_ATOMIC_BINOP

template <ord O, class C>
inline C fetch_andnot(C* p, C i) noexcept {
  return fetch_and<O>(p, static_cast<C>(~i));
}

/// try_cmpxchg: on failure *old is updated to the value seen and nothing is ordered.
template <ord O, class C>
inline bool try_cmpxchg(C* p, C* old, C n) noexcept {
  pre<O>();
  bool ok = __atomic_compare_exchange_n(p, old, n, false, mo<O>, __ATOMIC_RELAXED);
  if (ok) post<O>();
  return ok;
}
template <ord O, class C>
inline C cmpxchg(C* p, C old, C n) noexcept {
  try_cmpxchg<O>(p, &old, n);
  return old;
}

}  // namespace detail

}  // namespace kprim

// One macro stamps the whole API for a prefix (atomic, atomic64, atomic_long), the way the
// kernel's scripts/atomic/gen-atomics.sh does.
#define KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, name, impl)                                         \
  inline C pfx##_##name(C i, A* v) noexcept { return impl<detail::ord::full>(&v->counter, i); } \
  inline C pfx##_##name##_relaxed(C i, A* v) noexcept {                                         \
    return impl<detail::ord::relaxed>(&v->counter, i);                                          \
  }                                                                                             \
  inline C pfx##_##name##_acquire(C i, A* v) noexcept {                                         \
    return impl<detail::ord::acquire>(&v->counter, i);                                          \
  }                                                                                             \
  inline C pfx##_##name##_release(C i, A* v) noexcept {                                         \
    return impl<detail::ord::release>(&v->counter, i);                                          \
  }

#define KPRIM_ATOMIC_VARIANTS_V(pfx, A, C, name, impl, k)                                                  \
  inline C pfx##_##name(A* v) noexcept { return impl<detail::ord::full>(&v->counter, static_cast<C>(k)); } \
  inline C pfx##_##name##_relaxed(A* v) noexcept {                                                         \
    return impl<detail::ord::relaxed>(&v->counter, static_cast<C>(k));                                     \
  }                                                                                                        \
  inline C pfx##_##name##_acquire(A* v) noexcept {                                                         \
    return impl<detail::ord::acquire>(&v->counter, static_cast<C>(k));                                     \
  }                                                                                                        \
  inline C pfx##_##name##_release(A* v) noexcept {                                                         \
    return impl<detail::ord::release>(&v->counter, static_cast<C>(k));                                     \
  }

#define KPRIM_ATOMIC_VARIANTS_XCHG(pfx, A, C, sfx, O)                                      \
  inline C pfx##_xchg##sfx(A* v, C n) noexcept { return detail::xchg<O>(&v->counter, n); } \
  inline C pfx##_cmpxchg##sfx(A* v, C old, C n) noexcept {                                 \
    return detail::cmpxchg<O>(&v->counter, old, n);                                        \
  }                                                                                        \
  inline bool pfx##_try_cmpxchg##sfx(A* v, C* old, C n) noexcept {                         \
    return detail::try_cmpxchg<O>(&v->counter, old, n);                                    \
  }

#define KPRIM_DEFINE_ATOMIC_FAMILY(pfx, A, C)                                                                         \
  /** pfx##_read() - the value. Relaxed; one plain load. */                                                           \
  [[nodiscard]] inline C pfx##_read(const A* v) noexcept {                                                            \
    return __atomic_load_n(&v->counter, __ATOMIC_RELAXED);                                                            \
  }                                                                                                                   \
  [[nodiscard]] inline C pfx##_read_acquire(const A* v) noexcept {                                                    \
    return __atomic_load_n(&v->counter, __ATOMIC_ACQUIRE);                                                            \
  }                                                                                                                   \
  inline void pfx##_set(A* v, C i) noexcept { __atomic_store_n(&v->counter, i, __ATOMIC_RELAXED); }                   \
  inline void pfx##_set_release(A* v, C i) noexcept {                                                                 \
    __atomic_store_n(&v->counter, i, __ATOMIC_RELEASE);                                                               \
  }                                                                                                                   \
  /* Non-value-returning RMW: relaxed (x86-64: one locked instruction; arm64 LSE: st<op>). */                         \
  inline void pfx##_add(C i, A* v) noexcept { detail::op_add(&v->counter, i); }                                       \
  inline void pfx##_sub(C i, A* v) noexcept { detail::op_sub(&v->counter, i); }                                       \
  inline void pfx##_inc(A* v) noexcept { detail::op_add(&v->counter, static_cast<C>(1)); }                            \
  inline void pfx##_dec(A* v) noexcept { detail::op_sub(&v->counter, static_cast<C>(1)); }                            \
  inline void pfx##_and(C i, A* v) noexcept { detail::op_and(&v->counter, i); }                                       \
  inline void pfx##_andnot(C i, A* v) noexcept { detail::op_clr(&v->counter, i); }                                    \
  inline void pfx##_or(C i, A* v) noexcept { detail::op_set(&v->counter, i); }                                        \
  inline void pfx##_xor(C i, A* v) noexcept { detail::op_eor(&v->counter, i); }                                       \
  /* Value-returning RMW: fully ordered, plus _relaxed/_acquire/_release. */                                          \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, add_return, detail::add_return)                                                 \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, sub_return, detail::sub_return)                                                 \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, fetch_add, detail::fetch_add)                                                   \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, fetch_sub, detail::fetch_sub)                                                   \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, fetch_and, detail::fetch_and)                                                   \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, fetch_andnot, detail::fetch_andnot)                                             \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, fetch_or, detail::fetch_or)                                                     \
  KPRIM_ATOMIC_VARIANTS_IV(pfx, A, C, fetch_xor, detail::fetch_xor)                                                   \
  KPRIM_ATOMIC_VARIANTS_V(pfx, A, C, inc_return, detail::add_return, 1)                                               \
  KPRIM_ATOMIC_VARIANTS_V(pfx, A, C, dec_return, detail::sub_return, 1)                                               \
  KPRIM_ATOMIC_VARIANTS_V(pfx, A, C, fetch_inc, detail::fetch_add, 1)                                                 \
  KPRIM_ATOMIC_VARIANTS_V(pfx, A, C, fetch_dec, detail::fetch_sub, 1)                                                 \
  KPRIM_ATOMIC_VARIANTS_XCHG(pfx, A, C, , detail::ord::full)                                                          \
  KPRIM_ATOMIC_VARIANTS_XCHG(pfx, A, C, _relaxed, detail::ord::relaxed)                                               \
  KPRIM_ATOMIC_VARIANTS_XCHG(pfx, A, C, _acquire, detail::ord::acquire)                                               \
  KPRIM_ATOMIC_VARIANTS_XCHG(pfx, A, C, _release, detail::ord::release)                                               \
  /* Conditional ops: fully ordered when they modify, unordered when they do not. */                                  \
  inline bool pfx##_sub_and_test(C i, A* v) noexcept { return pfx##_sub_return(i, v) == 0; }                          \
  inline bool pfx##_dec_and_test(A* v) noexcept { return pfx##_dec_return(v) == 0; }                                  \
  inline bool pfx##_inc_and_test(A* v) noexcept { return pfx##_inc_return(v) == 0; }                                  \
  inline bool pfx##_add_negative(C i, A* v) noexcept { return pfx##_add_return(i, v) < 0; }                           \
  inline bool pfx##_add_negative_relaxed(C i, A* v) noexcept {                                                        \
    return pfx##_add_return_relaxed(i, v) < 0;                                                                        \
  }                                                                                                                   \
  /** pfx##_fetch_add_unless() - add a unless the value is u; returns the old value. */                               \
  inline C pfx##_fetch_add_unless(A* v, C a, C u) noexcept {                                                          \
    C c = pfx##_read(v);                                                                                              \
    do {                                                                                                              \
      if (unlikely(c == u)) break;                                                                                    \
    } while (!pfx##_try_cmpxchg(v, &c, detail::wrap_add(c, a)));                                                      \
    return c;                                                                                                         \
  }                                                                                                                   \
  inline bool pfx##_add_unless(A* v, C a, C u) noexcept { return pfx##_fetch_add_unless(v, a, u) != u; }              \
  inline bool pfx##_inc_not_zero(A* v) noexcept { return pfx##_add_unless(v, static_cast<C>(1), static_cast<C>(0)); } \
  inline bool pfx##_inc_unless_negative(A* v) noexcept {                                                              \
    C c = pfx##_read(v);                                                                                              \
    do {                                                                                                              \
      if (unlikely(c < 0)) return false;                                                                              \
    } while (!pfx##_try_cmpxchg(v, &c, detail::wrap_add(c, static_cast<C>(1))));                                      \
    return true;                                                                                                      \
  }                                                                                                                   \
  inline bool pfx##_dec_unless_positive(A* v) noexcept {                                                              \
    C c = pfx##_read(v);                                                                                              \
    do {                                                                                                              \
      if (unlikely(c > 0)) return false;                                                                              \
    } while (!pfx##_try_cmpxchg(v, &c, detail::wrap_sub(c, static_cast<C>(1))));                                      \
    return true;                                                                                                      \
  }                                                                                                                   \
  /** pfx##_dec_if_positive() - decrement unless the result would be negative; returns the  \
      old value minus one either way (negative: nothing was stored). */                         \
  inline C pfx##_dec_if_positive(A* v) noexcept {                                                                     \
    C c = pfx##_read(v);                                                                                              \
    C d;                                                                                                              \
    do {                                                                                                              \
      d = detail::wrap_sub(c, static_cast<C>(1));                                                                     \
      if (unlikely(d < 0)) break;                                                                                     \
    } while (!pfx##_try_cmpxchg(v, &c, d));                                                                           \
    return d;                                                                                                         \
  }

namespace kprim {
KPRIM_DEFINE_ATOMIC_FAMILY(atomic, atomic_t, int)
KPRIM_DEFINE_ATOMIC_FAMILY(atomic64, atomic64_t, long long)
KPRIM_DEFINE_ATOMIC_FAMILY(atomic_long, atomic_long_t, long)
}  // namespace kprim

#undef KPRIM_DEFINE_ATOMIC_FAMILY
#undef KPRIM_ATOMIC_VARIANTS_IV
#undef KPRIM_ATOMIC_VARIANTS_V
#undef KPRIM_ATOMIC_VARIANTS_XCHG

#define ATOMIC_INIT(i) \
  { (i) }
#define ATOMIC64_INIT(i) \
  { (i) }
#define ATOMIC_LONG_INIT(i) \
  { (i) }
