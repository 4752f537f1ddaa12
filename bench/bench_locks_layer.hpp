// bench_locks_layer.hpp: the debug layer's cost in one binary (issue 14) - the entry points of
// bench_locks_layer.cpp, which is compiled twice into bench_locks: once as the build is
// (layer_off: KPRIM_DEBUG_LOCKING=0 in release) and once with the layer on (layer_on).
//
// Why this is not an ODR violation: the layer-on copy is compiled with layer_on.h forced in
// first (-include), which turns KPRIM_DEBUG_LOCKING on and renames the namespace `kprim` to
// `kprim_layer_on_ns` by a macro, in that copy and in its own build of every kprim slow path
// (the kprim_layer_on library: the sources of kprim_primitives_impl again). Every inline
// function, template and thread_local of the layer-on build thus has a name of its own; the
// two builds share only std:: entities, which do not depend on the layer. kprim's sources
// define nothing outside namespace kprim (no extern "C", no global-scope symbols), so nothing
// else can collide; a collision would be a duplicate-symbol link error, not silence.
// Alternatives rejected: an inline namespace keyed on the layer in context.hpp (every kprim
// header would have to open it); a second shared object with RTLD_DEEPBIND (its thread_locals
// would use the general-dynamic TLS model, __tls_get_addr on each access, and so overstate the
// layer's cost in an application that links kprim statically).
// Both sides are reached through the same out-of-line calls, so the difference is the layer.
#pragma once

namespace kprim_layer_cost {

#define KPRIM_LAYER_COST_DECLS                                                    \
  bool layer_enabled() noexcept; /* KPRIM_DEBUG_LOCKING as this copy was built */ \
  void* spin_create();                                                            \
  void spin_destroy(void* l) noexcept;                                            \
  void spin_lock(void* l) noexcept;                                               \
  void spin_unlock(void* l) noexcept;                                             \
  void* mutex_create();                                                           \
  void mutex_destroy(void* m) noexcept;                                           \
  void mutex_lock(void* m) noexcept;                                              \
  void mutex_unlock(void* m) noexcept;

namespace on {
KPRIM_LAYER_COST_DECLS
}
namespace off {
KPRIM_LAYER_COST_DECLS
}
#undef KPRIM_LAYER_COST_DECLS

}  // namespace kprim_layer_cost
