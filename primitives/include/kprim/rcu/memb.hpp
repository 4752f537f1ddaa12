// kprim/rcu/memb.hpp: the memb flavour (liburcu-memb): readers pay a few plain instructions,
// the grace period pays a sys_membarrier() (heavy, process-wide). kprim's default flavour.
// Link kprim::rcu_memb. For readers that can announce quiescent states, rcu_qsbr is cheaper.
#pragma once

#include <kprim/rcu/urcu_flavour.hpp>

#include <urcu/urcu-memb.h>

KPRIM_URCU_DECLARE_UPDATE_SIDE(urcu_memb)

namespace kprim {

/// rcu_memb - memory-barrier RCU: rcu_read_lock()/unlock() nest, need no fence on the read
/// side (the updater issues sys_membarrier; liburcu falls back to smp_mb() where the kernel
/// lacks it); every reading thread registers.
struct rcu_memb {
  static constexpr std::string_view name = "memb";
  static constexpr bool needs_quiescent_states = false;
  static constexpr bool auto_registers = false;
  static bool registered() noexcept { return URCU_TLS(urcu_memb_reader).registered; }
  KPRIM_URCU_FLAVOUR_OPS(urcu_memb)
};
static_assert(rcu_flavour_type<rcu_memb>);

}  // namespace kprim
