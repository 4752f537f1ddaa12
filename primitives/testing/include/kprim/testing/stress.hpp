// kprim/testing/stress.hpp: the one knob that sizes every stress loop in the test suites,
// and the death-test style that works where the test runs. For the lock-test critical
// section itself see primitives/tests/lock_stress.hpp. Tests: every suite that stresses
// (test_spinlock, test_mutex, test_rwlocks, test_percpu, test_rcu*, test_slab_stress, ...);
// benchmark: none.
//
// KPRIM_STRESS_SCALE=N (environment, integer >= 1, default 1) divides stress iteration counts
// by N. The assertions stay the same (no lost update, no overlap, exact sums); only the number
// of rounds shrinks. Why it exists: under qemu-user every instruction is translated (TCG) and
// the suites, sized for native speed, ran past their ctest timeouts (issue 20). A cross build
// sets it for every test it registers (cmake/KprimHelpers.cmake, from
// CMAKE_CROSSCOMPILING_EMULATOR and KPRIM_EMULATED_STRESS_SCALE); a native run leaves it at 1.
// Sanitizer builds divide by a further 8 (their own slowdown), as before.
#pragma once

#include <kprim/testing/emulation.hpp>

#include <cstdlib>

namespace kprim::test {

/// stress_scale() - KPRIM_STRESS_SCALE from the environment, read once: 1 when unset, empty,
/// not a positive integer or absurd (> 1000). Context: any.
[[nodiscard]] inline unsigned stress_scale() {
  static const unsigned scale = [] {
    const char* s = std::getenv("KPRIM_STRESS_SCALE");
    if (s == nullptr || *s == '\0') return 1u;
    char* end = nullptr;
    const unsigned long v = std::strtoul(s, &end, 10);
    return *end == '\0' && v >= 1 && v <= 1000 ? static_cast<unsigned>(v) : 1u;
  }();
  return scale;
}

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr unsigned sanitizer_factor = 8;
#else
inline constexpr unsigned sanitizer_factor = 1;
#endif

/// stress_rounds() - `native` rounds scaled down by the sanitizer factor and
/// KPRIM_STRESS_SCALE, never below `floor` (so a loop still crosses its yield points and
/// contention windows at least that often).
[[nodiscard]] inline unsigned stress_rounds(unsigned native, unsigned floor = 1) {
  const unsigned n = native / (sanitizer_factor * stress_scale());
  return n > floor ? n : floor;
}

/// death_test_style() - "threadsafe" (gtest re-executes the test binary, safe with threads
/// running), except under a user-mode emulator: there the re-exec is an execve() of an
/// aarch64 ELF on an x86-64 kernel without a binfmt_misc entry for it, which fails with
/// "Exec format error" (qemu-user does not wrap execve), so the death test sees its child die
/// of the wrong cause. "fast" forks without exec, which qemu-user supports; the child then
/// runs the statement and must die with the expected message, so the check is proved all the
/// same. Use: GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style()).
[[nodiscard]] inline const char* death_test_style() {
  return running_emulated() ? "fast" : "threadsafe";
}

}  // namespace kprim::test
