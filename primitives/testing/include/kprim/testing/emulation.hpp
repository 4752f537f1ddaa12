// kprim/testing/emulation.hpp: is this process an emulated one (an aarch64 binary under
// qemu-user on an x86-64 kernel, or the reverse)? Used by the benchmarks' provenance
// (kprim_emulated in the results context: emulated timings are not figures) and by the tests
// (death-test style, stress scale). Tests: test_harness (Provenance.*), test_percpu
// (PercpuArm64.*); benchmark: none (read once per process).
//
// How (issue 20). The answer must not depend on what the emulator chooses to fake:
//   - uname().machine, AT_PLATFORM and AT_HWCAP are the emulator's inventions under qemu-user
//     (they say "aarch64" and list the emulated CPU's features), so they cannot tell;
//   - the kernel's own architecture can: /proc/sys/kernel/arch (the kernel.arch sysctl) is
//     read from the host kernel, which qemu-user 7.2 passes through unchanged ("x86_64" for an
//     aarch64 binary). When it is unreadable, /proc/cpuinfo's field names tell the two apart
//     (x86: "vendor_id"/"flags"; arm64: "CPU implementer"/"Features").
// A binary whose compiled architecture differs from the kernel's runs emulated. Both unknown
// (neither file readable, or another architecture) reads "not emulated": provenance then
// records kernel_arch "unknown", so the doubt is visible.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>

namespace kprim::test {

/// binary_arch() - the architecture this translation unit was compiled for, in the kernel's
/// spelling ("x86_64", "aarch64"). Context: any. Cost: none.
[[nodiscard]] constexpr const char* binary_arch() noexcept {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "other";
#endif
}

/// kernel_arch() - the running kernel's architecture: /proc/sys/kernel/arch, else guessed from
/// /proc/cpuinfo's field names, else "unknown". Context: any thread; reads procfs.
[[nodiscard]] inline std::string kernel_arch() {
  char line[256];
  if (std::FILE* f = std::fopen("/proc/sys/kernel/arch", "re")) {
    std::string arch;
    if (std::fgets(line, sizeof line, f)) arch = line;
    std::fclose(f);
    while (!arch.empty() && (arch.back() == '\n' || arch.back() == ' ')) arch.pop_back();
    if (!arch.empty()) return arch;
  }
  std::string guess = "unknown";
  if (std::FILE* f = std::fopen("/proc/cpuinfo", "re")) {
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "vendor_id", 9) == 0 || std::strncmp(line, "flags\t", 6) == 0) {
        guess = "x86_64";
        break;
      }
      if (std::strncmp(line, "CPU implementer", 15) == 0 || std::strncmp(line, "Features\t", 9) == 0) {
        guess = "aarch64";
        break;
      }
    }
    std::fclose(f);
  }
  return guess;
}

/// running_emulated() - true when the kernel's architecture is known and is not the one this
/// binary was compiled for (qemu-user, or any other user-mode emulator). Computed once.
[[nodiscard]] inline bool running_emulated() {
  static const bool emulated = [] {
    const std::string k = kernel_arch();
    return k != "unknown" && k != binary_arch();
  }();
  return emulated;
}

}  // namespace kprim::test
