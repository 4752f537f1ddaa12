// kprim/rcu/bp.hpp: the bp ("bulletproof") flavour (liburcu-bp): threads register themselves
// on their first read-side section and are cleaned up at exit, for code that cannot control
// its threads (libraries). Link kprim::rcu_bp. Its reads cost more than rcu_memb's: prefer
// rcu_memb wherever threads can be registered.
#pragma once

#include <kprim/rcu/urcu_flavour.hpp>

#include <urcu/urcu-bp.h>

KPRIM_URCU_DECLARE_UPDATE_SIDE(urcu_bp)

namespace kprim {

/// rcu_bp - bulletproof RCU: like rcu_memb, but registration is implicit (an RAII
/// rcu_thread is allowed and harmless) and a thread's reader slot is reclaimed at its exit.
struct rcu_bp {
  static constexpr std::string_view name = "bp";
  static constexpr bool needs_quiescent_states = false;
  static constexpr bool auto_registers = true;
  static bool registered() noexcept { return true; }
  KPRIM_URCU_FLAVOUR_OPS(urcu_bp)
};
static_assert(rcu_flavour_type<rcu_bp>);

}  // namespace kprim
