// Behaviour of kprim/percpu.hpp: slot layout, this_cpu_* semantics, exact totals while threads
// migrate themselves and oversubscribe the CPUs, the rseq abort path (forced with signals and
// counted), and the atomic fallback (forced; ctest also runs this binary with
// GLIBC_TUNABLES=glibc.pthread.rseq=0 and KPRIM_EXPECT_NO_RSEQ=1).
// Under ThreadSanitizer the rseq asm is compiled out (TSan cannot see its accesses): every
// test then runs the atomic path, which TSan checks, and the abort test is skipped.
#include <kprim/percpu.hpp>

#include "percpu_stress.hpp"

#include <gtest/gtest.h>

#include <sys/rseq.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <thread>

namespace {

using kprim::per_cpu;
using kprim::test::oversubscribed_threads;
using kprim::test::run_migrating;
using kprim::test::sanitizer_slowdown;

const unsigned iters = 300000 / sanitizer_slowdown;
constexpr unsigned hop_every = 256;

bool rseq_expected() {
#if KPRIM_PERCPU_RSEQ
  return __rseq_size != 0;
#else
  return false;
#endif
}

// Runs a test body on the detected path and again with the atomic path forced.
class PercpuPaths : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { kprim::percpu_force_atomic(GetParam()); }
  void TearDown() override { kprim::percpu_force_atomic(false); }
};

TEST(Percpu, LayoutAndCpus) {
  EXPECT_GE(kprim::nr_cpu_ids(), 1u);
  EXPECT_GE(kprim::nr_cpu_ids(), static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN)));
  per_cpu<std::uint64_t> v(7);
  EXPECT_EQ(v.cpus(), kprim::nr_cpu_ids());
  unsigned seen = 0;
  kprim::for_each_possible_cpu([&](unsigned cpu) {
    EXPECT_EQ(cpu, seen++);
    EXPECT_EQ(*kprim::per_cpu_ptr(v, cpu), 7u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(kprim::per_cpu_ptr(v, cpu)) %
                  kprim::cacheline_pair_size,
              0u);
  });
  EXPECT_EQ(seen, kprim::nr_cpu_ids());
  static_assert(per_cpu<std::uint64_t>::stride == kprim::cacheline_pair_size);
  static_assert(per_cpu<char[200]>::stride == 2 * kprim::cacheline_pair_size);
  EXPECT_LT(kprim::get_cpu(), kprim::nr_cpu_ids());
  kprim::put_cpu();
}

TEST(Percpu, PathMatchesRegistration) {
  const std::string name = kprim::percpu_path_name();
  if (rseq_expected()) {
    EXPECT_EQ(kprim::percpu_live_path(), kprim::percpu_path::rseq);
    EXPECT_EQ(name, "rseq");
  } else {
    EXPECT_EQ(kprim::percpu_live_path(), kprim::percpu_path::atomic);
    EXPECT_EQ(name.rfind("atomic", 0), 0u) << name;
  }
  // Set by ctest's run under GLIBC_TUNABLES=glibc.pthread.rseq=0: the tunable must have
  // switched glibc's registration off and so selected the fallback.
  if (std::getenv("KPRIM_EXPECT_NO_RSEQ") != nullptr) {
    EXPECT_EQ(__rseq_size, 0u);
    if (KPRIM_PERCPU_RSEQ) {
      EXPECT_NE(name.find("not registered"), std::string::npos) << name;
    }
  }
}

// arm64 (issue 20): kprim has no arm64 rseq critical sections; the documented fallback there is
// the atomic path (sched_getcpu(), then a relaxed atomic RMW on that CPU's slot), and every
// PercpuPaths test below runs it (both parameters are the atomic path on arm64). Under
// qemu-user 7.2 the rseq syscall itself is ENOSYS, so glibc registers nothing (__rseq_size 0)
// and an rseq path could not have been exercised there anyway.
TEST(Percpu, Arm64RunsTheDocumentedAtomicFallback) {
#if defined(__aarch64__)
  EXPECT_EQ(kprim::percpu_live_path(), kprim::percpu_path::atomic);
  EXPECT_STREQ(kprim::percpu_path_name(), "atomic: no rseq critical sections for this architecture");
  std::printf("arm64: per-CPU path '%s'; glibc rseq registration %s (__rseq_size %u)\n",
              kprim::percpu_path_name(), __rseq_size != 0 ? "present" : "absent", __rseq_size);
#else
  GTEST_SKIP() << "arm64 only; this is " << (KPRIM_PERCPU_RSEQ ? "the rseq architecture" : "another");
#endif
}

TEST(Percpu, ForcedFallbackIsReported) {
  kprim::percpu_force_atomic(true);
  EXPECT_EQ(kprim::percpu_live_path(), kprim::percpu_path::atomic);
  EXPECT_NE(std::string(kprim::percpu_path_name()).find("forced"), std::string::npos);
  kprim::percpu_force_atomic(false);
  EXPECT_EQ(kprim::percpu_live_path() == kprim::percpu_path::rseq, rseq_expected());
}

// With the thread pinned, "this CPU" is fixed and each operation's result is determined.
TEST_P(PercpuPaths, SemanticsWhilePinned) {
  kprim::test::migrator m(kprim::test::allowed_cpus(), 0);
  m.hop();
  per_cpu<std::int64_t> v;
  kprim::this_cpu_write(v, std::int64_t{5});
  EXPECT_EQ(kprim::this_cpu_read(v), 5);
  kprim::this_cpu_add(v, std::int64_t{10});
  kprim::this_cpu_inc(v);
  kprim::this_cpu_dec(v);
  kprim::this_cpu_dec(v);
  kprim::this_cpu_sub(v, std::int64_t{4});
  EXPECT_EQ(kprim::this_cpu_read(v), 10);
  EXPECT_EQ(kprim::this_cpu_xchg(v, std::int64_t{-3}), 10);
  EXPECT_EQ(kprim::this_cpu_cmpxchg(v, std::int64_t{99}, std::int64_t{1}), -3);  // fails
  EXPECT_EQ(kprim::this_cpu_read(v), -3);
  EXPECT_EQ(kprim::this_cpu_cmpxchg(v, std::int64_t{-3}, std::int64_t{1}), -3);  // succeeds
  EXPECT_EQ(*kprim::this_cpu_ptr(v), 1);
  EXPECT_EQ(kprim::this_cpu_add_return(v, std::int64_t{4}), 5);
  EXPECT_EQ(kprim::this_cpu_add_return(v, std::int64_t{-4}), 1);
  EXPECT_EQ(kprim::per_cpu_sum(v), 1);

  per_cpu<std::uint32_t> w;
  kprim::this_cpu_dec(w);
  EXPECT_EQ(kprim::this_cpu_read(w), 0xffffffffu);
  kprim::this_cpu_inc(w);
  EXPECT_EQ(kprim::per_cpu_sum(w), 0u);
  m.unpin();
}

// Every kind of update, from more threads than CPUs that keep re-pinning themselves: any lost
// or doubled update (a commit on the wrong CPU's slot, a missed restart) breaks the total.
TEST_P(PercpuPaths, ExactTotalsUnderMigration) {
  per_cpu<std::uint64_t> adds;
  per_cpu<std::int64_t> mixed;
  per_cpu<std::uint64_t> cas;
  per_cpu<std::uint64_t> drained;
  std::atomic<std::uint64_t> taken{0};
  const unsigned threads = oversubscribed_threads();
  run_migrating(threads, iters, hop_every, [&](unsigned, unsigned i) {
    kprim::this_cpu_inc(adds);
    kprim::this_cpu_add(mixed, std::int64_t{3});
    kprim::this_cpu_dec(mixed);
    (void)kprim::this_cpu_add_return(mixed, std::int64_t{-2});
    // cmpxchg: each success adds exactly one to some slot, whatever CPU it lands on.
    std::uint64_t seen = kprim::this_cpu_read(cas);
    for (std::uint64_t found; (found = kprim::this_cpu_cmpxchg(cas, seen, seen + 1)) != seen;)
      seen = found;
    // xchg: increments are moved out to `taken`; none may be lost or taken twice.
    kprim::this_cpu_inc(drained);
    if (i % 7 == 0) taken.fetch_add(kprim::this_cpu_xchg(drained, std::uint64_t{0}));
  });
  const std::uint64_t total = std::uint64_t{threads} * iters;
  EXPECT_EQ(kprim::per_cpu_sum(adds), total);
  EXPECT_EQ(kprim::per_cpu_sum(mixed), 0);
  EXPECT_EQ(kprim::per_cpu_sum(cas), total);
  EXPECT_EQ(kprim::per_cpu_sum(drained) + taken.load(), total);
}

TEST_P(PercpuPaths, AbortsOnlyOnRseqPath) {
  const std::uint64_t before = kprim::percpu_rseq_aborts();
  per_cpu<std::uint64_t> v;
  run_migrating(4, iters, hop_every, [&](unsigned, unsigned) { kprim::this_cpu_inc(v); });
  EXPECT_EQ(kprim::per_cpu_sum(v), 4u * iters);
  if (kprim::percpu_live_path() == kprim::percpu_path::atomic) {
    EXPECT_EQ(kprim::percpu_rseq_aborts(), before);
  }
}

INSTANTIATE_TEST_SUITE_P(DetectedAndForced, PercpuPaths, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "forced_atomic" : "detected"; });

// Signals a thread that does nothing but this_cpu_inc: a signal delivered while it is between
// arming a critical section and committing restarts it. Bounded by signal count, not time:
// with the thread inside a critical section a good share of the time, a few dozen signals
// usually suffice; 50000 make a miss practically impossible.
TEST(PercpuRseq, AbortPathIsTakenAndCounted) {
  if (kprim::percpu_live_path() != kprim::percpu_path::rseq)
    GTEST_SKIP() << "rseq path not live: " << kprim::percpu_path_name();
  per_cpu<std::uint64_t> v;
  std::uint64_t worker_aborts = 0, done = 0;
  const std::uint64_t before = kprim::percpu_rseq_aborts();
  const unsigned sent = kprim::test::signal_storm(
      [&](const std::atomic<bool>& stop) {
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          kprim::this_cpu_inc(v);
          ++n;
        }
        worker_aborts = kprim::percpu_rseq_aborts_this_thread();
        done = n;
      },
      [&](unsigned) { return kprim::percpu_rseq_aborts() != before; }, 50000);
  EXPECT_GT(kprim::percpu_rseq_aborts(), before) << "no abort after " << sent << " signals";
  EXPECT_GT(worker_aborts, 0u);
  EXPECT_EQ(kprim::per_cpu_sum(v), done) << "a restarted increment was lost or doubled";
  std::printf("rseq aborts: %llu after %u signals\n",
              static_cast<unsigned long long>(kprim::percpu_rseq_aborts() - before), sent);
}

}  // namespace
