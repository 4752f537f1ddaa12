// kprim/barrier.hpp: the kernel's memory barriers (Documentation/memory-barriers.txt).
//
// x86-64 (TSO) generates exactly what arch/x86/include/asm/barrier.h generates:
//   smp_mb()             lock addl $0,-4(%rsp)   (a locked op on the stack: cheaper than mfence)
//   smp_rmb(), smp_wmb() compiler barrier only  (TSO never reorders load-load or store-store)
//   smp_load_acquire()   plain mov               smp_store_release()  plain mov
//   smp_mb__{before,after}_atomic()  compiler barrier (locked RMW ops are already full barriers)
//   mb(), rmb(), wmb()   mfence, lfence, sfence  (for device / non-temporal memory)
// Elsewhere (arm64 ...) everything is std::atomic_thread_fence of the matching strength.
// tests/codegen_test.cpp compiles these at test time and checks the instructions.
#pragma once

#include <kprim/compiler.hpp>

#include <atomic>
#include <type_traits>

namespace kprim {

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
/// Context: any. Cost: one plain load on x86-64 (ldar on arm64).
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

}  // namespace kprim
