// kprim/rcu/pointer.hpp: publishing and reading RCU-protected pointers (the kernel's
// rcu_assign_pointer()/rcu_dereference() family), independent of any RCU flavour.
// Most code includes kprim/rcu.hpp, whose rcu_dereference() also checks the read side in debug
// builds; use this header alone where no flavour is linked (kprim/rculist.hpp does).
//
// Ordering: rcu_assign_pointer() is a release store, rcu_dereference_raw() a consume load (g++
// strengthens it to acquire: a plain `mov` on x86-64, `ldar` on arm64). So everything the
// updater wrote to an object before publishing it is visible to a reader that loaded the
// pointer, and ThreadSanitizer sees the pairing.
#pragma once

#include <kprim/compiler.hpp>

#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace kprim {

namespace detail {
[[noreturn, gnu::cold, gnu::noinline]] inline void rcu_protection_violated(const char* what) noexcept {
  std::fprintf(stderr, "kprim: RCU: %s\n", what);
  std::abort();
}
}  // namespace detail

/// rcu_dereference_raw() - load an RCU-protected pointer for dereferencing, unchecked.
/// Ordering: consume (acquire with g++): the pointee's initialisation, published by
/// rcu_assign_pointer(), is visible through the result. Context: inside a read-side critical
/// section, or with the update-side lock held; the result stays valid only until the critical
/// section ends. Cost: one load.
template <class T>
[[nodiscard]] inline T* rcu_dereference_raw(T* const& p) noexcept {
  return __atomic_load_n(&p, __ATOMIC_CONSUME);
}

/// rcu_access_pointer() - the pointer's value, not for dereferencing (comparisons against
/// nullptr or another pointer). Ordering: none. Context: any. Cost: one load.
template <class T>
[[nodiscard]] inline T* rcu_access_pointer(T* const& p) noexcept {
  return __atomic_load_n(&p, __ATOMIC_RELAXED);
}

/// rcu_dereference_protected() - read an RCU pointer on the update side. `held` states that
/// the update-side lock is held, so the pointer cannot change under the caller; debug builds
/// (NDEBUG undefined) abort when it is false. Ordering: none needed. Cost: one load.
template <class T>
[[nodiscard]] inline T* rcu_dereference_protected(T* const& p, [[maybe_unused]] bool held) noexcept {
#ifndef NDEBUG
  if (unlikely(!held)) detail::rcu_protection_violated("rcu_dereference_protected() without the update-side lock");
#endif
  return __atomic_load_n(&p, __ATOMIC_RELAXED);
}

/// rcu_assign_pointer() - publish v in p for RCU readers. Ordering: release: every store to
/// *v before it is visible to a reader that rcu_dereference()s v. Context: update side (the
/// caller serialises updaters of p). Cost: one store (plus a compiler barrier on x86-64).
template <class T>
inline void rcu_assign_pointer(T*& p, std::type_identity_t<T*> v) noexcept {
  __atomic_store_n(&p, v, __ATOMIC_RELEASE);
}

/// RCU_INIT_POINTER() - store v in p without ordering: only for nullptr, or for a pointer
/// no reader can reach yet, or for an object already published earlier. Cost: one store.
template <class T>
inline void RCU_INIT_POINTER(T*& p, std::type_identity_t<T*> v) noexcept {
  __atomic_store_n(&p, v, __ATOMIC_RELAXED);
}

/// rcu_replace_pointer() - publish v in p and return the old value, which the caller then
/// frees after a grace period (synchronize_rcu(), call_rcu(), kfree_rcu()). `held` as for
/// rcu_dereference_protected(). Ordering: release for v. Context: update side. Cost: two
/// plain accesses (no read-modify-write: updaters are serialised by the caller).
template <class T>
[[nodiscard]] inline T* rcu_replace_pointer(T*& p, std::type_identity_t<T*> v, bool held) noexcept {
  T* old = rcu_dereference_protected(p, held);
  rcu_assign_pointer(p, v);
  return old;
}

}  // namespace kprim
