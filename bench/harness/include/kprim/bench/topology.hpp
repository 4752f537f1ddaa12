// kprim/bench/topology.hpp: the machine as hwloc describes it, for placing benchmark threads
// and naming how far apart two of them are. The process-wide instance (machine_topology())
// is loaded once; hwloc itself honours HWLOC_SYNTHETIC and HWLOC_XMLFILE, so a benchmark
// binary can be made to plan for a machine that is not there (its pinning then fails, which
// pin_current_thread() reports; listing and planning need no pinning).
#pragma once

#include <kprim/bench/harness.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kprim::bench {

/// How far apart two PUs are, from their deepest common ancestor in hwloc's tree, nearest
/// first (the enum order is the distance order):
///   smt      same core (SMT siblings);
///   core     other core, sharing a cache or group below the L3 (an L2 cluster);
///   l3       other core, same L3 and nothing below it;
///   package  same package and NUMA node, no shared L3 (also: a machine without packages or
///            L3 caches, cores that share nothing but memory);
///   numa     other package or other NUMA node.
enum class distance_class { smt,
                            core,
                            l3,
                            package,
                            numa };
inline constexpr distance_class all_distance_classes[] = {
    distance_class::smt, distance_class::core, distance_class::l3, distance_class::package,
    distance_class::numa};

/// class_name() - "smt", "core", "l3", "package" or "numa" (the names in benchmark names).
[[nodiscard]] const char* class_name(distance_class c) noexcept;

/// Two PUs by OS index (the numbers sched_setaffinity and /proc/cpuinfo use), and their class.
struct pu_pair {
  unsigned a = 0, b = 0;
  distance_class cls = distance_class::smt;
};

/// hardware_facts - what a results file records about the machine (provenance.cpp), read
/// from the same loaded topology as the PU orders: hwloc's totals of packages, cores and PUs
/// (the whole machine, not only the allowed cpuset), package 0's CPUModel ("unknown" if
/// none), and the size in bytes of the first L1d, L2 and L3 cache hwloc lists (those present).
struct hardware_facts {
  std::string model = "unknown";
  int packages = 0, cores = 0, pus = 0;
  std::vector<std::pair<std::string, std::uint64_t>> caches;  // {"L1d", bytes}, {"L2", ...}, ...
};

/// topology - one loaded hwloc topology, with every order and class precomputed, so its
/// const members are safe to call from any number of threads.
class topology {
 public:
  /// The machine's topology, as hwloc loads it by default (honouring HWLOC_SYNTHETIC and
  /// HWLOC_XMLFILE). If hwloc fails to load, the topology is empty: pu_count() is 0.
  topology();
  /// A synthetic topology from hwloc's synthetic description ("package:2 core:64 pu:2").
  /// Throws std::invalid_argument when hwloc rejects the description.
  explicit topology(std::string_view synthetic);
  ~topology();
  topology(const topology&) = delete;
  topology& operator=(const topology&) = delete;

  /// pu_count() - PUs in hwloc's allowed cpuset: the harness's nproc.
  [[nodiscard]] unsigned pu_count() const noexcept;
  /// core_count() - cores holding allowed PUs (pu_count() when hwloc reports no cores).
  [[nodiscard]] unsigned core_count() const noexcept;
  /// this_system() - true when binding threads to this topology's PUs can work (false for a
  /// synthetic or XML topology).
  [[nodiscard]] bool this_system() const noexcept;
  /// facts() - the hardware as results files describe it (empty counts if hwloc failed).
  [[nodiscard]] const hardware_facts& facts() const noexcept;

  /// compact_order() - PU OS indexes in hwloc's logical order: SMT siblings first, then the
  /// next core of the same cache, L3, package. n threads under compact use its first n.
  [[nodiscard]] const std::vector<unsigned>& compact_order() const noexcept;
  /// spread_order() - the first PU of every core before the second PU of any core, the cores
  /// interleaved level by level down the tree (package 0, package 1, then the next NUMA node
  /// or L3 of each, ...), so n threads sit as far apart as the machine allows.
  [[nodiscard]] const std::vector<unsigned>& spread_order() const noexcept;
  /// order() - compact_order() or spread_order(); for pin_policy::none, compact_order().
  [[nodiscard]] const std::vector<unsigned>& order(pin_policy policy) const noexcept;

  /// distance() - the class of two PUs by OS index. The same PU twice is smt (the nearest).
  /// Requires both to be PUs of this topology (contains()); otherwise numa.
  [[nodiscard]] distance_class distance(unsigned pu_a, unsigned pu_b) const noexcept;
  /// contains() - whether `pu` is the OS index of an allowed PU of this topology.
  [[nodiscard]] bool contains(unsigned pu) const noexcept;

  /// class_pairs() - one representative PU pair per class present, nearest class first; each
  /// the first pair in logical order (so the pairs start at the first PU when it can).
  [[nodiscard]] const std::vector<pu_pair>& class_pairs() const noexcept;
  /// classes() - the classes present (those of class_pairs()), nearest first.
  [[nodiscard]] std::vector<distance_class> classes() const;

  /// placement_pus() - the PUs n threads run on under `policy`: the first min(n, pu_count())
  /// of its order; threads beyond pu_count() share PUs and add none. pin_policy::none: every
  /// allowed PU when n >= 2 (the scheduler may put two threads anywhere), else the first.
  [[nodiscard]] std::vector<unsigned> placement_pus(pin_policy policy, unsigned n) const;
  /// placement_classes() - the widest distance class between any two PUs that n threads use
  /// under `policy` (placement_pus()); empty when they use one PU (n == 1, or one PU).
  [[nodiscard]] std::optional<distance_class> placement_classes(pin_policy policy, unsigned n) const;

  /// bind_current_thread() - bind the caller to PU `os_index`; false if that is not a PU of
  /// this topology, the topology is not this system (synthetic, XML), or the kernel refused.
  bool bind_current_thread(unsigned os_index) const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

/// machine_topology() - the process's topology, loaded on first call (thread-safe), then shared.
[[nodiscard]] const topology& machine_topology();

/// nproc() - machine_topology().pu_count(), or std::thread::hardware_concurrency() (at least
/// 1) when hwloc could not load a topology.
[[nodiscard]] unsigned nproc();

/// representative_pairs() - machine_topology().class_pairs(): one PU pair per distance class
/// present, for benchmarks that measure each class (the floor family).
[[nodiscard]] std::vector<pu_pair> representative_pairs();

/// pin_current_thread_to_pu() - bind the caller to PU `os_index` of the machine; false if
/// refused (not a PU here, or a synthetic topology).
bool pin_current_thread_to_pu(unsigned os_index) noexcept;

/// The documented limit on threads in one trial (--kprim_threads above it: one line, exit 2).
inline constexpr unsigned max_trial_threads = 4096;

/// default_thread_sweep() - the default --kprim_threads list for a machine of `nproc` PUs:
/// nproc <= 8: 1 .. nproc, then 2x and 4x nproc; nproc > 8: 1, 2, 4, ... (powers of two below
/// nproc), nproc, 2x nproc, 4x nproc. Counts above max_trial_threads are left out.
/// nproc == 0 is taken as 1.
[[nodiscard]] std::vector<unsigned> default_thread_sweep(unsigned nproc);

}  // namespace kprim::bench
