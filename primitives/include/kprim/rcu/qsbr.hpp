// kprim/rcu/qsbr.hpp: the qsbr flavour (liburcu-qsbr): rcu_read_lock()/unlock() cost nothing;
// instead every registered thread announces quiescent states (rcu_quiescent_state(), or
// rcu_thread_offline() around blocking). Link kprim::rcu_qsbr. Wrong tool for threads that
// cannot promise regular quiescent states (library code, callbacks): use rcu_memb there.
#pragma once

#include <kprim/rcu/urcu_flavour.hpp>

#include <urcu/urcu-qsbr.h>

KPRIM_URCU_DECLARE_UPDATE_SIDE(urcu_qsbr)

namespace kprim {

/// rcu_qsbr - quiescent-state-based RCU: a registered thread is online (its accesses count as
/// one long read-side section) until it calls quiescent_state() or goes offline; a grace
/// period waits for every online thread to pass a quiescent state.
struct rcu_qsbr {
  static constexpr std::string_view name = "qsbr";
  static constexpr bool needs_quiescent_states = true;
  static constexpr bool auto_registers = false;
  static bool registered() noexcept { return URCU_TLS(urcu_qsbr_reader).registered; }
  KPRIM_URCU_FLAVOUR_OPS(urcu_qsbr)
};
static_assert(rcu_flavour_type<rcu_qsbr>);

}  // namespace kprim
