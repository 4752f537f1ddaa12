// Provenance for every results file: machine (hwloc topology), OS, build and peers, options.
// Keys and meanings are documented in results/SCHEMA.md; bump the schema version there on change.
#include <kprim/bench/registry.hpp>
#include <kprim/bench/topology.hpp>
#include <kprim/testing/emulation.hpp>

#include <gnu/libc-version.h>
#include <sys/auxv.h>
#include <sys/utsname.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace kprim::bench {

namespace build_info {
extern const char* const git_sha;
extern const char* const git_dirty;
extern const char* const compiler;
extern const char* const cxx_flags;
extern const char* const build_type;
extern const char* const sanitizer;
extern const char* const peers;
}  // namespace build_info

namespace {

constexpr const char* schema_version = "2";

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) return "unknown";
  return line;
}

/// "always [madvise] never" -> "madvise".
std::string bracketed(const std::string& s) {
  const auto a = s.find('['), b = s.find(']');
  return a != std::string::npos && b != std::string::npos && b > a ? s.substr(a + 1, b - a - 1) : s;
}

std::string turbo_state() {
  const std::string no_turbo = read_first_line("/sys/devices/system/cpu/intel_pstate/no_turbo");
  if (no_turbo == "0") return "on";
  if (no_turbo == "1") return "off";
  const std::string boost = read_first_line("/sys/devices/system/cpu/cpufreq/boost");
  if (boost == "1") return "on";
  if (boost == "0") return "off";
  return "unknown";
}

std::string size_str(std::uint64_t bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + "M";
  return std::to_string(bytes / 1024) + "K";
}

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// "AMD EPYC 7B13 64-Core Processor" -> "amd-epyc-7b13-64-core"
std::string slug(const std::string& model) {
  std::string out, word;
  auto flush = [&] {
    if (!word.empty() && word != "r" && word != "tm" && word != "processor" && word != "cpu") {
      if (!out.empty()) out += '-';
      out += word;
    }
    word.clear();
  };
  for (char ch : model.substr(0, model.find('@'))) {
    if (std::isalnum(static_cast<unsigned char>(ch)))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    else
      flush();
  }
  flush();
  if (out.size() > 40) out.resize(40);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unknown-cpu" : out;
}

struct topology_facts {
  std::string model = "unknown";
  int packages = 0, cores = 0, pus = 0;
  std::string caches;
  std::uint64_t memory_gib = 0;
};

// The hardware from the harness's one hwloc load (machine_topology(), topology.cpp): hwloc
// is loaded once per process.
topology_facts read_topology() {
  topology_facts f;
  const hardware_facts& h = machine_topology().facts();
  f.model = h.model;
  f.packages = h.packages;
  f.cores = h.cores;
  f.pus = h.pus;
  for (const auto& [name, bytes] : h.caches) {
    if (!f.caches.empty()) f.caches += ',';
    f.caches += name + ":" + size_str(bytes);
  }
  // Memory from /proc/meminfo, not hwloc: on VMs with memory hotplug hwloc's NUMA totals
  // change from run to run (seen: 5, 6 and 7 GiB on a 24 GiB guest).
  std::ifstream mi("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  while (mi >> key >> kib) {
    if (key == "MemTotal:") {
      f.memory_gib = (kib + (1u << 19)) >> 20;
      break;
    }
    mi.ignore(256, '\n');
  }
  return f;
}

/// "yes"/"no": the CPU has the ARMv8.1 LSE atomics (HWCAP_ATOMICS in AT_HWCAP; the kernel's
/// view, or under qemu-user the emulated CPU's), "n/a" on other architectures.
std::string lse_state() {
#if defined(__aarch64__)
  constexpr unsigned long hwcap_atomics = 1ul << 8;  // HWCAP_ATOMICS, asm/hwcap.h
  return (getauxval(AT_HWCAP) & hwcap_atomics) != 0 ? "yes" : "no";
#else
  return "n/a";
#endif
}

const char* pin_name(pin_policy p) {
  switch (p) {
    case pin_policy::compact:
      return "compact";
    case pin_policy::spread:
      return "spread";
    default:
      return "none";
  }
}

}  // namespace

void add_context() {
  const topology_facts t = read_topology();
  char fp[17];
  // Hardware identity only: memory is reported but left out (it can vary on a VM).
  std::snprintf(fp, sizeof fp, "%016llx",
                static_cast<unsigned long long>(fnv1a(t.model + "|" + std::to_string(t.packages) + "|" +
                                                      std::to_string(t.cores) + "|" + std::to_string(t.pus) +
                                                      "|" + t.caches)));
  const std::string fingerprint = fp;
  const std::string machine_id = slug(t.model) + "-" + std::to_string(t.cores) + "c-" + fingerprint.substr(0, 8);

  struct utsname u {};
  uname(&u);
  const options& o = current_options();
  std::string threads;
  for (unsigned n : o.threads) threads += (threads.empty() ? "" : ",") + std::to_string(n);
  char clock_ns[32];
  std::snprintf(clock_ns, sizeof clock_ns, "%.1f", clock_pair_ns());

  const std::pair<const char*, std::string> kv[] = {
      {"kprim_schema_version", schema_version},
      {"kprim_machine_id", machine_id},
      {"kprim_fingerprint", fingerprint},
      {"kprim_cpu_model", t.model},
      {"kprim_packages", std::to_string(t.packages)},
      {"kprim_cores", std::to_string(t.cores)},
      {"kprim_pus", std::to_string(t.pus)},
      {"kprim_smt", std::to_string(t.cores > 0 ? t.pus / t.cores : 0)},
      {"kprim_caches", t.caches},
      {"kprim_memory_gib", std::to_string(t.memory_gib)},
      {"kprim_kernel", u.release},
      // Architecture (issue 20): the binary's, the kernel's, and whether the two differ (a
      // user-mode emulator such as qemu-user: timings are then the emulator's, not figures;
      // kprim/testing/emulation.hpp says how it is detected). uname() is the emulator's own.
      {"kprim_arch", kprim::test::binary_arch()},
      {"kprim_kernel_arch", kprim::test::kernel_arch()},
      {"kprim_emulated", kprim::test::running_emulated() ? "yes" : "no"},
      {"kprim_lse", lse_state()},
      {"kprim_glibc", gnu_get_libc_version()},
      {"kprim_compiler", build_info::compiler},
      {"kprim_cxx_flags", build_info::cxx_flags},
      {"kprim_build_type", build_info::build_type},
      {"kprim_sanitizer", build_info::sanitizer},
      {"kprim_peers", build_info::peers},
      {"kprim_governor", read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")},
      {"kprim_turbo", turbo_state()},
      {"kprim_thp", bracketed(read_first_line("/sys/kernel/mm/transparent_hugepage/enabled"))},
      {"kprim_git_sha", build_info::git_sha},
      {"kprim_git_dirty", build_info::git_dirty},
      {"kprim_pin", pin_name(o.pin)},
      {"kprim_trial_ms", std::to_string(o.trial_ms)},
      {"kprim_threads", threads},
      {"kprim_cs", std::to_string(o.cs)},
      {"kprim_gap", std::to_string(o.gap)},
      {"kprim_locks", std::to_string(o.locks)},
      {"kprim_latency", o.latency ? "on" : "off"},
      {"kprim_inject", o.inject},
      // How NS became work on this machine (inject_calibration()), "" without an injection.
      {"kprim_inject_unit", o.inject.empty() ? std::string() : [] {
         const inject_rate& r = inject_calibration();
         char text[160];
         std::snprintf(text, sizeof text, "inject_work: dependent adds stored before the release, %.4g units/ns, fixed %.3g ns per call",
                       r.units_per_ns, r.fixed_ns);
         return std::string(text);
       }()},
      {"kprim_interleaving", o.random_interleaving ? "random" : "off"},
      {"kprim_clock_ns", clock_ns},
  };
  for (const auto& [k, v] : kv) benchmark::AddCustomContext(k, v);
}

}  // namespace kprim::bench
