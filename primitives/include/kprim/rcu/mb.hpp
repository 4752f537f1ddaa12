// kprim/rcu/mb.hpp: the mb flavour (liburcu-mb): a full memory barrier in every
// rcu_read_lock()/unlock(), so grace periods need no sys_membarrier(). Link kprim::rcu_mb.
// Choose it only where sys_membarrier is unavailable or too costly; rcu_memb reads faster.
#pragma once

#include <kprim/rcu/urcu_flavour.hpp>

#include <urcu/urcu-mb.h>

KPRIM_URCU_DECLARE_UPDATE_SIDE(urcu_mb)

namespace kprim {

/// rcu_mb - barrier-based RCU: readers fence (smp_mb()) on entry and exit; every reading
/// thread registers.
struct rcu_mb {
  static constexpr std::string_view name = "mb";
  static constexpr bool needs_quiescent_states = false;
  static constexpr bool auto_registers = false;
  static bool registered() noexcept { return URCU_TLS(urcu_mb_reader).registered; }
  KPRIM_URCU_FLAVOUR_OPS(urcu_mb)
};
static_assert(rcu_flavour_type<rcu_mb>);

}  // namespace kprim
