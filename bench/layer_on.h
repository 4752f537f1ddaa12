// layer_on.h: forced first (-include) into the layer-on copy of bench_locks_layer.cpp and of
// the kprim slow paths it links (the kprim_layer_on library, bench/CMakeLists.txt). Why this
// is ODR-clean: bench_locks_layer.hpp.
#undef KPRIM_DEBUG_LOCKING
#define KPRIM_DEBUG_LOCKING 1
#define kprim kprim_layer_on_ns
