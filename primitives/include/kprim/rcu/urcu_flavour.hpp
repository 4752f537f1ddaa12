// kprim/rcu/urcu_flavour.hpp: the adapter that turns one liburcu flavour into a kprim RCU
// flavour type (rcu_memb, rcu_qsbr, rcu_mb, rcu_bp). Include a flavour header
// (kprim/rcu/memb.hpp, ...) or kprim/rcu.hpp, never this one alone.
//
// Several flavours may live in one process and one translation unit: liburcu 0.13 prefixes
// each flavour's symbols (urcu_memb_*, urcu_qsbr_*, ...). Its urcu/call-rcu.h and urcu/flavor.h
// are include-guarded, though, and declare only the first flavour's call_rcu/barrier/flavor
// names in a translation unit, so KPRIM_URCU_DECLARE_UPDATE_SIDE() declares every flavour's
// own (exported, ABI-stable) names again.
#pragma once

// The inline read-side fast paths (liburcu's static/ headers) instead of calls into the
// library. Must precede the first liburcu include of the translation unit; the kprim::rcu_*
// CMake targets define it for the whole target.
#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <kprim/compiler.hpp>

#include <urcu/pointer.h>

#include <pthread.h>

#include <concepts>
#include <string_view>

// urcu/pointer.h defines rcu_dereference, rcu_assign_pointer, ... as macros; kprim defines
// those kernel names as functions (kprim/rcu/pointer.hpp). urcu/pointer.h is include-guarded,
// so the flavour headers included after this point do not bring the macros back.
#undef rcu_dereference
#undef rcu_assign_pointer
#undef rcu_set_pointer
#undef rcu_xchg_pointer
#undef rcu_cmpxchg_pointer

struct rcu_head;
struct rcu_flavor_struct;
struct call_rcu_data;

/// KPRIM_URCU_DECLARE_UPDATE_SIDE(prefix) - declare prefix_call_rcu, prefix_barrier,
/// prefix_flavor and the default callback thread's accessors (see the file comment);
/// repeating a declaration is harmless.
#define KPRIM_URCU_DECLARE_UPDATE_SIDE(P)                                   \
  extern "C" {                                                              \
  void P##_call_rcu(struct rcu_head* head, void (*func)(struct rcu_head*)); \
  void P##_barrier(void);                                                   \
  extern const struct rcu_flavor_struct P##_flavor;                         \
  struct call_rcu_data* P##_get_default_call_rcu_data(void);                \
  pthread_t P##_get_call_rcu_thread(struct call_rcu_data* crdp);            \
  }

/// KPRIM_URCU_FLAVOUR_OPS(prefix) - the static member functions every flavour type has, each
/// a direct (inlined where liburcu inlines it) call of the liburcu function of that flavour.
/// Contracts are those of the kernel-named wrappers in kprim/rcu.hpp.
#define KPRIM_URCU_FLAVOUR_OPS(P)                                                                      \
  static void read_lock() noexcept { P##_read_lock(); }                                                \
  static void read_unlock() noexcept { P##_read_unlock(); }                                            \
  static bool read_ongoing() noexcept { return P##_read_ongoing() != 0; }                              \
  static void quiescent_state() noexcept { P##_quiescent_state(); }                                    \
  static void thread_offline() noexcept { P##_thread_offline(); }                                      \
  static void thread_online() noexcept { P##_thread_online(); }                                        \
  static void register_thread() noexcept { P##_register_thread(); }                                    \
  static void unregister_thread() noexcept { P##_unregister_thread(); }                                \
  static void synchronize() noexcept { P##_synchronize_rcu(); }                                        \
  static void call(::rcu_head* head, void (*func)(::rcu_head*)) noexcept { P##_call_rcu(head, func); } \
  static void barrier() noexcept { P##_barrier(); }                                                    \
  static const ::rcu_flavor_struct* flavor() noexcept { return &P##_flavor; }                          \
  /* the thread that runs call_rcu() callbacks (started on first use): benchmarks time it */           \
  static pthread_t callback_thread() noexcept { return P##_get_call_rcu_thread(P##_get_default_call_rcu_data()); }

namespace kprim {

/// rcu_flavour_type - what kprim/rcu.hpp needs of a flavour type.
///   name                       "memb", "qsbr", "mb", "bp" (recorded in benchmark results)
///   needs_quiescent_states     qsbr: registered threads must call rcu_quiescent_state()
///                              (or go offline) regularly, or grace periods never end
///   auto_registers             bp: a thread registers itself on its first read-side section
///   registered()               the calling thread is registered (always true for bp)
///   read_lock() ... flavor()   see KPRIM_URCU_FLAVOUR_OPS
template <class F>
concept rcu_flavour_type = requires(::rcu_head* h, void (*f)(::rcu_head*)) {
  { F::name } -> std::convertible_to<std::string_view>;
  { F::needs_quiescent_states } -> std::convertible_to<bool>;
  { F::auto_registers } -> std::convertible_to<bool>;
  { F::registered() } -> std::same_as<bool>;
  F::read_lock();
  F::read_unlock();
  { F::read_ongoing() } -> std::same_as<bool>;
  F::quiescent_state();
  F::thread_offline();
  F::thread_online();
  F::register_thread();
  F::unregister_thread();
  F::synchronize();
  F::call(h, f);
  F::barrier();
  F::flavor();
};

}  // namespace kprim
