// kprim/context.hpp - the kernel's context rules: might_sleep(), in_atomic(), in_interrupt().
//
// INTERFACE SCAFFOLD (issue 14 fills it in): every path that may sleep calls might_sleep() at
// its entry, before it takes any lock of its own. With KPRIM_DEBUG_LOCKING=1 (debug, asan and
// tsan presets; CMake option elsewhere) a sleep from atomic context is reported with the
// kernel's headline; with KPRIM_DEBUG_LOCKING=0 (release) every macro here compiles to nothing.
//
// Test: primitives/tests/context_test.cpp. Benchmark: bench/bench_locks.cpp (layer on vs off).
#pragma once

#ifndef KPRIM_DEBUG_LOCKING
#define KPRIM_DEBUG_LOCKING 0
#endif

#if KPRIM_DEBUG_LOCKING
namespace kprim::debug {
void might_sleep_at(const char* file, int line) noexcept;
}  // namespace kprim::debug
#define might_sleep() ::kprim::debug::might_sleep_at(__FILE__, __LINE__)
#else
#define might_sleep() ((void)0)
#endif
