// Topology: PU orders, distance classes and placements on synthetic hwloc machines (2 packages
// x 64 cores x 2 PUs, 8 NUMA nodes, a five-class cache tree) and on this machine; the default
// thread sweep; the thread limit of --kprim_threads.
#include <kprim/bench/registry.hpp>
#include <kprim/bench/topology.hpp>

#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kb = kprim::bench;
using kb::distance_class;
using kb::pin_policy;

namespace {

std::vector<unsigned> iota(unsigned n) {
  std::vector<unsigned> v(n);
  for (unsigned i = 0; i < n; ++i) v[i] = i;
  return v;
}

/// Checks that hold on every topology: orders are permutations of the PUs, the first
/// core_count() spread entries sit on distinct cores, pairs have the class they claim,
/// distance is symmetric.
void expect_consistent(const kb::topology& t) {
  std::vector<unsigned> c = t.compact_order(), s = t.spread_order();
  ASSERT_EQ(c.size(), t.pu_count());
  ASSERT_EQ(s.size(), t.pu_count());
  std::sort(c.begin(), c.end());
  std::sort(s.begin(), s.end());
  EXPECT_EQ(c, s);
  EXPECT_EQ(std::adjacent_find(c.begin(), c.end()), c.end());
  for (unsigned i = 0; i < t.core_count(); ++i)
    for (unsigned j = i + 1; j < t.core_count(); ++j)
      ASSERT_NE(t.distance(t.spread_order()[i], t.spread_order()[j]), distance_class::smt) << i << " " << j;
  for (const kb::pu_pair& p : t.class_pairs()) {
    EXPECT_TRUE(t.contains(p.a));
    EXPECT_TRUE(t.contains(p.b));
    EXPECT_NE(p.a, p.b);
    EXPECT_EQ(t.distance(p.a, p.b), p.cls) << kb::class_name(p.cls);
    EXPECT_EQ(t.distance(p.b, p.a), p.cls);
  }
  const auto cls = t.classes();
  EXPECT_TRUE(std::is_sorted(cls.begin(), cls.end()));
  EXPECT_EQ(std::set<distance_class>(cls.begin(), cls.end()).size(), cls.size());
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 1), std::nullopt);
  EXPECT_EQ(t.placement_classes(pin_policy::spread, 1), std::nullopt);
  EXPECT_EQ(t.placement_classes(pin_policy::none, 1), std::nullopt);
  if (t.pu_count() >= 2) {
    // Every thread count beyond the machine uses all PUs: the widest class present.
    EXPECT_EQ(t.placement_classes(pin_policy::compact, 4 * t.pu_count()), cls.back());
    EXPECT_EQ(t.placement_classes(pin_policy::spread, 4 * t.pu_count()), cls.back());
    EXPECT_EQ(t.placement_classes(pin_policy::none, 2), cls.back());
  }
}

std::vector<distance_class> classes_of(std::initializer_list<distance_class> l) { return l; }

TEST(SyntheticTopology, TwoPackagesOf64CoresOf2Pus) {
  const kb::topology t("package:2 core:64 pu:2");
  expect_consistent(t);
  EXPECT_EQ(t.pu_count(), 256u);
  EXPECT_EQ(t.core_count(), 128u);
  EXPECT_FALSE(t.this_system());
  // No caches in the description: other cores of a package share nothing but the package.
  EXPECT_EQ(t.classes(), classes_of({distance_class::smt, distance_class::package, distance_class::numa}));
  const auto& pairs = t.class_pairs();
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].a, 0u);
  EXPECT_EQ(pairs[0].b, 1u);  // smt
  EXPECT_EQ(pairs[1].a, 0u);
  EXPECT_EQ(pairs[1].b, 2u);  // package
  EXPECT_EQ(pairs[2].a, 0u);
  EXPECT_EQ(pairs[2].b, 128u);  // numa
  EXPECT_EQ(t.compact_order(), iota(256));
  // spread: one PU per core first (the even PUs), alternating packages; then the siblings.
  const auto& s = t.spread_order();
  for (unsigned i = 0; i < 128; ++i) EXPECT_EQ(s[i] % 2, 0u) << i;
  for (unsigned i = 128; i < 256; ++i) EXPECT_EQ(s[i] % 2, 1u) << i;
  EXPECT_EQ(s[0], 0u);
  EXPECT_EQ(s[1], 128u);
  EXPECT_EQ(s[2], 2u);
  EXPECT_EQ(s[128], 1u);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 2), distance_class::smt);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 3), distance_class::package);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 128), distance_class::package);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 129), distance_class::numa);
  EXPECT_EQ(t.placement_classes(pin_policy::spread, 2), distance_class::numa);
  EXPECT_EQ(t.placement_classes(pin_policy::spread, 128), distance_class::numa);
  EXPECT_EQ(t.placement_classes(pin_policy::none, 2), distance_class::numa);
  EXPECT_EQ(t.placement_pus(pin_policy::compact, 1024).size(), 256u);
  EXPECT_EQ(t.placement_pus(pin_policy::none, 2).size(), 256u);
  EXPECT_FALSE(t.bind_current_thread(0));  // not this system: hwloc refuses to bind
}

TEST(SyntheticTopology, EightNumaNodesWithAnL3Each) {
  const kb::topology t("package:2 numa:4 l3:1 core:8 pu:2");
  expect_consistent(t);
  EXPECT_EQ(t.pu_count(), 128u);
  EXPECT_EQ(t.core_count(), 64u);
  EXPECT_EQ(t.classes(), classes_of({distance_class::smt, distance_class::l3, distance_class::numa}));
  EXPECT_EQ(t.distance(0, 2), distance_class::l3);
  EXPECT_EQ(t.distance(0, 15), distance_class::l3);
  EXPECT_EQ(t.distance(0, 16), distance_class::numa);  // next NUMA node, same package
  EXPECT_EQ(t.distance(0, 64), distance_class::numa);  // other package
  // spread: the first eight threads sit in eight different NUMA nodes, the ninth shares the
  // first one's node (and L3).
  const auto& s = t.spread_order();
  std::set<unsigned> nodes;
  for (unsigned i = 0; i < 8; ++i) nodes.insert(s[i] / 16);
  EXPECT_EQ(nodes.size(), 8u);
  for (unsigned i = 0; i < 8; ++i)
    for (unsigned j = i + 1; j < 8; ++j) EXPECT_EQ(t.distance(s[i], s[j]), distance_class::numa);
  EXPECT_EQ(t.distance(s[0], s[8]), distance_class::l3);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 16), distance_class::l3);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 17), distance_class::numa);
  EXPECT_EQ(t.placement_classes(pin_policy::spread, 2), distance_class::numa);
}

TEST(SyntheticTopology, EightNumaNodesWithoutPackages) {
  const kb::topology t("numa:8 core:8 pu:2");
  expect_consistent(t);
  EXPECT_EQ(t.pu_count(), 128u);
  EXPECT_EQ(t.classes(), classes_of({distance_class::smt, distance_class::package, distance_class::numa}));
  EXPECT_EQ(t.distance(0, 2), distance_class::package);  // same node, nothing else shared
  EXPECT_EQ(t.distance(0, 16), distance_class::numa);
}

TEST(SyntheticTopology, EveryClassInOneCacheTree) {
  // 2 packages x 2 L3 x 4 L2 x 2 cores x 2 PUs.
  const kb::topology t("package:2 l3:2 l2:4 core:2 pu:2");
  expect_consistent(t);
  EXPECT_EQ(t.pu_count(), 64u);
  EXPECT_EQ(t.classes(), classes_of({distance_class::smt, distance_class::core, distance_class::l3,
                                     distance_class::package, distance_class::numa}));
  const auto& pairs = t.class_pairs();
  ASSERT_EQ(pairs.size(), 5u);
  const unsigned second[] = {1, 2, 4, 16, 32};
  for (unsigned i = 0; i < 5; ++i) {
    EXPECT_EQ(pairs[i].cls, kb::all_distance_classes[i]);
    EXPECT_EQ(pairs[i].a, 0u);
    EXPECT_EQ(pairs[i].b, second[i]) << kb::class_name(pairs[i].cls);
  }
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 2), distance_class::smt);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 4), distance_class::core);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 5), distance_class::l3);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 17), distance_class::package);
  EXPECT_EQ(t.placement_classes(pin_policy::compact, 33), distance_class::numa);
}

TEST(SyntheticTopology, ClassNames) {
  EXPECT_STREQ(kb::class_name(distance_class::smt), "smt");
  EXPECT_STREQ(kb::class_name(distance_class::core), "core");
  EXPECT_STREQ(kb::class_name(distance_class::l3), "l3");
  EXPECT_STREQ(kb::class_name(distance_class::package), "package");
  EXPECT_STREQ(kb::class_name(distance_class::numa), "numa");
}

// The hardware facts results files record come from the same load (provenance.cpp reads them
// here instead of loading hwloc a second time): whole-machine counts; a synthetic topology
// has no CPU model and no caches unless the description names them.
TEST(SyntheticTopology, FactsCountTheWholeMachine) {
  const kb::topology t("package:2 core:4 pu:2");
  EXPECT_EQ(t.facts().packages, 2);
  EXPECT_EQ(t.facts().cores, 8);
  EXPECT_EQ(t.facts().pus, 16);
  EXPECT_EQ(t.facts().model, "unknown");
  EXPECT_TRUE(t.facts().caches.empty());
  const kb::topology c("package:1 l3:1 l2:2 l1d:1 core:1 pu:1");
  ASSERT_EQ(c.facts().caches.size(), 3u);
  EXPECT_EQ(c.facts().caches[0].first, "L1d");
  EXPECT_EQ(c.facts().caches[2].first, "L3");
  EXPECT_GT(c.facts().caches[2].second, 0u);
}

TEST(SyntheticTopology, RejectedDescriptionThrows) {
  EXPECT_THROW(kb::topology("package:two"), std::invalid_argument);
}

// The process topology: this machine, or HWLOC_SYNTHETIC when the environment sets it (the
// test_topology_env run sets 2 x 64 x 2 and KPRIM_EXPECT_NPROC=256).
TEST(MachineTopology, ConsistentAndDrivesTheDefaultSweep) {
  const kb::topology& t = kb::machine_topology();
  expect_consistent(t);
  ASSERT_GE(t.pu_count(), 1u);
  EXPECT_EQ(kb::nproc(), t.pu_count());
  if (const char* want = std::getenv("KPRIM_EXPECT_NPROC")) {
    EXPECT_EQ(kb::nproc(), std::stoul(want));
  }
  if (t.pu_count() >= 2) {
    EXPECT_FALSE(t.classes().empty());
  }
  EXPECT_EQ(kb::representative_pairs().size(), t.class_pairs().size());

  kb::options o;
  std::string error;
  char arg0[] = "bench";
  char* argv[] = {arg0, nullptr};
  int argc = 1;
  ASSERT_TRUE(kb::parse_options(argc, argv, o, error)) << error;
  EXPECT_EQ(o.threads, kb::default_thread_sweep(kb::nproc()));
}

TEST(MachineTopology, PinningBindsToThePuOrSaysItCannot) {
  const kb::topology& t = kb::machine_topology();
  std::thread([&] {
    const unsigned pu = t.spread_order().back();
    const bool bound = kb::pin_current_thread_to_pu(pu);
    if (t.this_system()) {
      ASSERT_TRUE(bound);
      EXPECT_EQ(static_cast<unsigned>(::sched_getcpu()), pu);
      EXPECT_TRUE(kb::pin_current_thread(pin_policy::compact, 0));
      EXPECT_EQ(static_cast<unsigned>(::sched_getcpu()), t.compact_order()[0]);
    } else {
      EXPECT_FALSE(bound);
      EXPECT_FALSE(kb::pin_current_thread(pin_policy::spread, 0));
    }
    EXPECT_TRUE(kb::pin_current_thread(pin_policy::none, 0));
    EXPECT_FALSE(kb::pin_current_thread_to_pu(1u << 30));
  }).join();
}

TEST(DefaultSweep, PerNproc) {
  using v = std::vector<unsigned>;
  EXPECT_EQ(kb::default_thread_sweep(0), (v{1, 2, 4}));
  EXPECT_EQ(kb::default_thread_sweep(1), (v{1, 2, 4}));
  EXPECT_EQ(kb::default_thread_sweep(2), (v{1, 2, 4, 8}));
  EXPECT_EQ(kb::default_thread_sweep(8), (v{1, 2, 3, 4, 5, 6, 7, 8, 16, 32}));
  EXPECT_EQ(kb::default_thread_sweep(12), (v{1, 2, 4, 8, 12, 24, 48}));
  EXPECT_EQ(kb::default_thread_sweep(16), (v{1, 2, 4, 8, 16, 32, 64}));
  EXPECT_EQ(kb::default_thread_sweep(256), (v{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}));
  // Counts above the per-trial limit are left out.
  EXPECT_EQ(kb::default_thread_sweep(2048).back(), 4096u);
  EXPECT_EQ(kb::default_thread_sweep(4096).back(), 4096u);
  EXPECT_EQ(kb::default_thread_sweep(4096).size(), 13u);  // 1 .. 2048, 4096
}

TEST(ThreadLimit, AboveTheLimitIsOneLineError) {
  auto parse = [](std::string flag, std::string& error) {
    kb::options o;
    char arg0[] = "bench";
    char* argv[] = {arg0, flag.data(), nullptr};
    int argc = 2;
    return kb::parse_options(argc, argv, o, error) ? o.threads : std::vector<unsigned>{};
  };
  std::string error;
  EXPECT_EQ(parse("--kprim_threads=1,4096", error), (std::vector<unsigned>{1, 4096}));
  EXPECT_TRUE(parse("--kprim_threads=4097", error).empty());
  EXPECT_NE(error.find("4096"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

}  // namespace
