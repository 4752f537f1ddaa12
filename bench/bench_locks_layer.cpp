// bench_locks_layer.cpp: spin_lock/mutex_lock behind out-of-line calls, compiled once with
// the debug layer as the build has it and once with it on (bench_locks_layer.hpp says how and
// why that is ODR-clean). KPRIM_LAYER_NS names the copy: on or off.
#include "bench_locks_layer.hpp"

#include <kprim/mutex.hpp>
#include <kprim/spinlock.hpp>

namespace kprim_layer_cost::KPRIM_LAYER_NS {

bool layer_enabled() noexcept { return KPRIM_DEBUG_LOCKING != 0; }

void* spin_create() {
  auto* l = new kprim::spinlock_t;
  kprim::spin_lock_init(l);  // with the layer: the lock's class is this call site
  return l;
}
void spin_destroy(void* l) noexcept { delete static_cast<kprim::spinlock_t*>(l); }
void spin_lock(void* l) noexcept { kprim::spin_lock(static_cast<kprim::spinlock_t*>(l)); }
void spin_unlock(void* l) noexcept { kprim::spin_unlock(static_cast<kprim::spinlock_t*>(l)); }

void* mutex_create() {
  auto* m = new kprim::mutex;
  kprim::mutex_init(m);
  return m;
}
void mutex_destroy(void* m) noexcept { delete static_cast<kprim::mutex*>(m); }
void mutex_lock(void* m) noexcept { kprim::mutex_lock(static_cast<kprim::mutex*>(m)); }
void mutex_unlock(void* m) noexcept { kprim::mutex_unlock(static_cast<kprim::mutex*>(m)); }

}  // namespace kprim_layer_cost::KPRIM_LAYER_NS
