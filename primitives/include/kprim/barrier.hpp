// kprim/barrier.hpp: the kernel's memory barriers (Documentation/memory-barriers.txt).
//
// x86-64 (TSO) generates exactly what arch/x86/include/asm/barrier.h generates:
//   smp_mb()             lock addl $0,-4(%rsp)   (a locked op on the stack: cheaper than mfence)
//   smp_rmb(), smp_wmb() compiler barrier only  (TSO never reorders load-load or store-store)
//   smp_load_acquire()   plain mov               smp_store_release()  plain mov
//   smp_mb__{before,after}_atomic()  compiler barrier (locked RMW ops are already full barriers)
//   mb(), rmb(), wmb()   mfence, lfence, sfence  (for device / non-temporal memory)
// arm64 generates what arch/arm64/include/asm/barrier.h generates:
//   smp_mb()  dmb ish     smp_rmb()  dmb ishld     smp_wmb()  dmb ishst
//   smp_load_acquire()  ldar (ldarb/ldarh for 1/2 bytes)   smp_store_release()  stlr
//   smp_mb__{before,after}_atomic()  dmb ish  (arm64's relaxed RMW orders nothing)
//   mb(), rmb(), wmb()  dsb sy, dsb ld, dsb st
// smp_cond_load_relaxed()/smp_cond_load_acquire(): wait until a condition on *p holds. arm64
// parks in WFE between polls with the exclusive monitor armed on *p by an ldxr (the kernel's
// __cmpwait_relaxed()): any store to the line wakes it, so the poll costs no interconnect
// traffic while nothing changes. x86-64 polls with `pause` (asm-generic's loop).
// Other architectures: std::atomic_thread_fence of the matching strength, a plain poll.
// Test: tests/codegen_test.cpp (compiles these for x86-64 and, with the cross compiler, for
// arm64 with and without LSE, and checks the instructions); tests/barrier_test.cpp.
// Benchmark: bench/bench_atomics.cpp (barrier costs; litmus/sb: reorderings on real hardware).
#pragma once

#include <kprim/compiler.hpp>

#include <atomic>
#include <bit>
#include <cstdint>
#include <type_traits>

namespace kprim {

// clang-format 14 with ColumnLimit 0 splits the "::: " of asm one-liners apart: keep them.
// clang-format off
#if defined(__x86_64__)

/// smp_mb() - full barrier between CPUs: orders all earlier loads/stores before all later
/// ones (including store->load, which TSO alone does not). Context: any. Cost: one locked add
/// on the stack (~20-40 cycles).
inline void smp_mb() noexcept { asm volatile("lock; addl $0,-4(%%rsp)" ::: "memory", "cc"); }
/// smp_rmb() - orders earlier loads before later loads. x86-64: compiler barrier only.
inline void smp_rmb() noexcept { barrier(); }
/// smp_wmb() - orders earlier stores before later stores. x86-64: compiler barrier only.
inline void smp_wmb() noexcept { barrier(); }
/// mb()/rmb()/wmb() - mandatory barriers, also for I/O and non-temporal stores.
inline void mb() noexcept { asm volatile("mfence" ::: "memory"); }
inline void rmb() noexcept { asm volatile("lfence" ::: "memory"); }
inline void wmb() noexcept { asm volatile("sfence" ::: "memory"); }
/// smp_mb__before_atomic()/smp_mb__after_atomic() - upgrade a non-value-returning atomic RMW
/// (atomic_inc(), set_bit() ...) to a full barrier. x86-64: locked ops already are.
inline void smp_mb__before_atomic() noexcept { barrier(); }
inline void smp_mb__after_atomic() noexcept { barrier(); }

#elif defined(__aarch64__)

/// smp_mb() - full barrier between CPUs (inner shareable domain: all CPUs, not devices).
inline void smp_mb() noexcept { asm volatile("dmb ish" ::: "memory"); }
/// smp_rmb() - earlier loads before later loads AND stores: `dmb ishld` (cheaper than ish).
inline void smp_rmb() noexcept { asm volatile("dmb ishld" ::: "memory"); }
/// smp_wmb() - earlier stores before later stores only: `dmb ishst`.
inline void smp_wmb() noexcept { asm volatile("dmb ishst" ::: "memory"); }
/// mb()/rmb()/wmb() - mandatory barriers: a DSB also waits for completion (devices, DMA).
inline void mb() noexcept { asm volatile("dsb sy" ::: "memory"); }
inline void rmb() noexcept { asm volatile("dsb ld" ::: "memory"); }
inline void wmb() noexcept { asm volatile("dsb st" ::: "memory"); }
// clang-format on
/// smp_mb__before_atomic()/smp_mb__after_atomic() - arm64's relaxed RMWs (stadd, ldxr/stxr)
/// order nothing, so these are the full smp_mb() (asm-generic's definition).
inline void smp_mb__before_atomic() noexcept { smp_mb(); }
inline void smp_mb__after_atomic() noexcept { smp_mb(); }

#else

inline void smp_mb() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void smp_rmb() noexcept { std::atomic_thread_fence(std::memory_order_acquire); }
inline void smp_wmb() noexcept { std::atomic_thread_fence(std::memory_order_release); }
inline void mb() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void rmb() noexcept { std::atomic_thread_fence(std::memory_order_acquire); }
inline void wmb() noexcept { std::atomic_thread_fence(std::memory_order_release); }
inline void smp_mb__before_atomic() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void smp_mb__after_atomic() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

#endif

/// smp_acquire__after_ctrl_dep() - turn a control dependency on an earlier load into an
/// acquire (the kernel's smp_rmb() here). Used by refcount_dec_and_test().
inline void smp_acquire__after_ctrl_dep() noexcept { smp_rmb(); }

/// smp_load_acquire(p) - load *p; no later load or store moves before it.
/// Context: any. Cost: one plain load on x86-64, ldar on arm64.
template <class T>
[[nodiscard]] inline std::remove_cv_t<T> smp_load_acquire(const T* p) noexcept {
  using U = std::remove_cv_t<T>;
  static_assert(detail::rwonce_ok<U>, "smp_load_acquire: 1/2/4/8-byte trivially copyable type");
  U v;
  __atomic_load(const_cast<U*>(p), &v, __ATOMIC_ACQUIRE);
  return v;
}

/// smp_store_release(p, v) - store v to *p; no earlier load or store moves after it.
/// Context: any. Cost: one plain store on x86-64 (stlr on arm64).
template <class T>
inline void smp_store_release(T* p, std::type_identity_t<T> v) noexcept {
  static_assert(detail::rwonce_ok<T>, "smp_store_release: 1/2/4/8-byte trivially copyable type");
  __atomic_store(p, &v, __ATOMIC_RELEASE);
}

/// smp_store_mb(x, v) - WRITE_ONCE(x, v) then smp_mb() (x86-64 uses xchg: same effect).
template <class T>
inline void smp_store_mb(T& x, std::type_identity_t<T> v) noexcept {
  write_once(x, v);
  smp_mb();
}

namespace detail {

/// cmpwait(p, seen) - wait a little for *p (1/2/4/8 bytes at address p) to stop holding
/// `seen`; may return early, so callers re-read and re-check. A compiler barrier.
/// arm64: `sevl; wfe` consumes any stale event (so the second wfe cannot return at once for
/// an old one), `ldxr` arms the exclusive monitor on p's line; if the value already moved on
/// there is nothing to wait for, else `wfe` sleeps until a store to the line clears the
/// monitor (an event), an interrupt, or the generic timer's event stream (Linux enables it on
/// arm64, so a missed event costs at most ~100 us, never a hang).
/// Elsewhere: cpu_relax() (one `pause` on x86-64).
template <class T>
inline void cmpwait(const volatile void* p, T seen) noexcept {
  static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);
#if defined(__aarch64__)
  unsigned long tmp;
  const unsigned long want = static_cast<unsigned long>(seen);
  if constexpr (sizeof(T) == 1) {
    asm volatile(
        "sevl\n\twfe\n\tldxrb %w[tmp], [%[p]]\n\teor %w[tmp], %w[tmp], %w[want]\n\t"
        "cbnz %w[tmp], 1f\n\twfe\n1:"
        : [tmp] "=&r"(tmp)
        : [p] "r"(p), [want] "r"(want)
        : "memory");
  } else if constexpr (sizeof(T) == 2) {
    asm volatile(
        "sevl\n\twfe\n\tldxrh %w[tmp], [%[p]]\n\teor %w[tmp], %w[tmp], %w[want]\n\t"
        "cbnz %w[tmp], 1f\n\twfe\n1:"
        : [tmp] "=&r"(tmp)
        : [p] "r"(p), [want] "r"(want)
        : "memory");
  } else if constexpr (sizeof(T) == 4) {
    asm volatile(
        "sevl\n\twfe\n\tldxr %w[tmp], [%[p]]\n\teor %w[tmp], %w[tmp], %w[want]\n\t"
        "cbnz %w[tmp], 1f\n\twfe\n1:"
        : [tmp] "=&r"(tmp)
        : [p] "r"(p), [want] "r"(want)
        : "memory");
  } else {
    asm volatile(
        "sevl\n\twfe\n\tldxr %[tmp], [%[p]]\n\teor %[tmp], %[tmp], %[want]\n\t"
        "cbnz %[tmp], 1f\n\twfe\n1:"
        : [tmp] "=&r"(tmp)
        : [p] "r"(p), [want] "r"(want)
        : "memory");
  }
#else
  (void)p;
  (void)seen;
  cpu_relax();
#endif
}

/// The integer cmpwait() compares: T's bytes (pointers, enums, small structs all fit).
template <class T>
inline auto wait_bits(T v) noexcept {
  if constexpr (sizeof(T) == 1) return std::bit_cast<std::uint8_t>(v);
  else if constexpr (sizeof(T) == 2) return std::bit_cast<std::uint16_t>(v);
  else if constexpr (sizeof(T) == 4) return std::bit_cast<std::uint32_t>(v);
  else return std::bit_cast<std::uint64_t>(v);
}

/// The loop of every smp_cond_load_*(): load() until cond holds, waiting on p's bytes
/// (cmpwait: WFE on arm64, pause on x86-64) between polls.
template <class W, class Load, class Cond>
inline auto cond_load(const W* p, Load load, Cond& cond) noexcept {
  for (;;) {
    const auto v = load();
    if (cond(v)) return v;
    cmpwait(p, wait_bits(v));
  }
}

}  // namespace detail

/// smp_cond_load_relaxed(p, cond) - spin until cond(READ_ONCE(*p)) is true; returns that
/// value. The kernel's macro with `VAL` becomes a predicate on the value. Ordering: none
/// beyond the control dependency (use smp_cond_load_acquire() to order later accesses).
/// Context: spins, never sleeps; there is no bound: the kernel's contract (the waker must
/// come). arm64: WFE between polls; x86-64: `pause`.
template <class T, class Cond>
inline std::remove_cv_t<T> smp_cond_load_relaxed(const T* p, Cond cond) noexcept {
  return detail::cond_load(
      p, [p]() -> std::remove_cv_t<T> { return read_once(*p); }, cond);
}

/// smp_cond_load_acquire(p, cond) - as smp_cond_load_relaxed(), and the load that satisfied
/// cond is an acquire (ldar on arm64): later accesses stay after it. Used by the queued
/// spinlock and ticket lock waits.
template <class T, class Cond>
inline std::remove_cv_t<T> smp_cond_load_acquire(const T* p, Cond cond) noexcept {
  return detail::cond_load(
      p, [p]() -> std::remove_cv_t<T> { return smp_load_acquire(p); }, cond);
}

/// The same two for a std::atomic<T> (kprim's queue nodes hold std::atomic fields): the
/// value is read through the atomic; WFE watches the atomic's bytes (same size as T).
template <class T, class Cond>
inline T smp_cond_load_relaxed(const std::atomic<T>* a, Cond cond) noexcept {
  static_assert(sizeof(std::atomic<T>) == sizeof(T) && std::atomic<T>::is_always_lock_free);
  return detail::cond_load(
      a, [a] { return a->load(std::memory_order_relaxed); }, cond);
}
template <class T, class Cond>
inline T smp_cond_load_acquire(const std::atomic<T>* a, Cond cond) noexcept {
  static_assert(sizeof(std::atomic<T>) == sizeof(T) && std::atomic<T>::is_always_lock_free);
  return detail::cond_load(
      a, [a] { return a->load(std::memory_order_acquire); }, cond);
}

}  // namespace kprim
