// Behaviour of kprim/percpu_ref.hpp: release exactly once and only after the last put, across
// the per-CPU -> atomic switch of a kill that races with gets, puts and tryget_live from
// migrating, oversubscribed threads; mode switches back and forth; the atomic-only mode.
#include <kprim/percpu_ref.hpp>

#include "percpu_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace {

using kprim::percpu_ref;
using kprim::test::oversubscribed_threads;
using kprim::test::run_migrating;
using kprim::test::sanitizer_slowdown;

const unsigned iters = 100000 / sanitizer_slowdown;

// The object the ref guards: `holders` counts references the test knows are held, so the
// release function can check that none is.
struct guarded {
  percpu_ref ref;
  std::atomic<int> holders{0};
  std::atomic<int> releases{0};
  std::atomic<int> early{0};
  explicit guarded(unsigned flags = 0) : ref(&on_release, flags) {}
  static void on_release(percpu_ref* r) {
    guarded* g = reinterpret_cast<guarded*>(reinterpret_cast<char*>(r) - offsetof(guarded, ref));
    if (g->holders.load() != 0) g->early.fetch_add(1);
    g->releases.fetch_add(1);
  }
};

bool expect_percpu(unsigned flags) {
  return !(flags & kprim::PERCPU_REF_INIT_ATOMIC) && kprim::percpu_ref_percpu_available();
}

class PercpuRef : public ::testing::TestWithParam<unsigned> {};

TEST_P(PercpuRef, SingleThreadLifecycle) {
  guarded g(GetParam());
  EXPECT_EQ(kprim::percpu_ref_is_percpu(g.ref), expect_percpu(GetParam()));
  kprim::percpu_ref_get(g.ref);
  kprim::percpu_ref_get_many(g.ref, 3);
  EXPECT_TRUE(kprim::percpu_ref_tryget_live(g.ref));
  kprim::percpu_ref_put_many(g.ref, 2);
  kprim::percpu_ref_kill(g.ref);  // 1 initial + 5 - 2 - 1 = 3 references left
  EXPECT_TRUE(kprim::percpu_ref_is_dying(g.ref));
  EXPECT_FALSE(kprim::percpu_ref_is_percpu(g.ref));
  EXPECT_FALSE(kprim::percpu_ref_tryget_live(g.ref));
  EXPECT_TRUE(kprim::percpu_ref_tryget(g.ref));  // 4
  kprim::percpu_ref_put_many(g.ref, 3);
  EXPECT_EQ(g.releases.load(), 0);
  EXPECT_FALSE(kprim::percpu_ref_is_zero(g.ref));
  kprim::percpu_ref_put(g.ref);
  EXPECT_EQ(g.releases.load(), 1);
  EXPECT_TRUE(kprim::percpu_ref_is_zero(g.ref));
  EXPECT_FALSE(kprim::percpu_ref_tryget(g.ref));
}

// Oversubscribed threads take and drop references (tryget_live, get, put) while migrating; a
// stash of references is taken before any of them starts and dropped by thread 0 at its end.
// Halfway through, the main thread kills the ref. Release must happen once, after every
// reference is dropped.
TEST_P(PercpuRef, KillRacesWithGetAndPut) {
  guarded g(GetParam());
  const unsigned threads = oversubscribed_threads();
  std::atomic<std::uint64_t> progress{0};
  std::atomic<bool> killed{false};
  // The stash is taken before the killer can run: a thread may start only after the others
  // have made half the progress, and a get on a ref already released would resurrect it.
  constexpr int stash = 1000;
  g.holders.fetch_add(stash);
  kprim::percpu_ref_get_many(g.ref, stash);  // the test's own reference covers this
  std::thread killer([&] {
    while (progress.load() < std::uint64_t{threads} * iters / 2) std::this_thread::yield();
    kprim::percpu_ref_kill(g.ref);
    killed.store(true);
  });
  std::atomic<std::uint64_t> failed_after_kill{0};
  run_migrating(threads, iters, 128, [&](unsigned tid, unsigned i) {
    if (kprim::percpu_ref_tryget_live(g.ref)) {
      g.holders.fetch_add(1);
      if (i % 3 == 0) {  // nest a plain get under the held reference
        kprim::percpu_ref_get(g.ref);
        kprim::percpu_ref_put(g.ref);
      }
      g.holders.fetch_sub(1);
      kprim::percpu_ref_put(g.ref);
    } else if (killed.load()) {
      failed_after_kill.fetch_add(1);
    }
    if (tid == 0 && i == iters - 1) {
      g.holders.fetch_sub(stash);
      kprim::percpu_ref_put_many(g.ref, stash);
    }
    progress.fetch_add(1, std::memory_order_relaxed);
  });
  killer.join();
  EXPECT_EQ(g.releases.load(), 1);
  EXPECT_EQ(g.early.load(), 0);
  EXPECT_TRUE(kprim::percpu_ref_is_zero(g.ref));
}

// Switching between modes under the same traffic never loses a reference: after all threads
// finish, the ref is still live with only the initial reference, and a kill releases it.
TEST_P(PercpuRef, SwitchModesUnderTraffic) {
  guarded g(GetParam());
  std::atomic<bool> stop{false};
  std::thread switcher([&] {
    for (unsigned n = 0; !stop.load(); ++n) {
      if (n % 2 == 0) kprim::percpu_ref_switch_to_atomic_sync(g.ref);
      else kprim::percpu_ref_switch_to_percpu(g.ref);
      std::this_thread::yield();
    }
  });
  run_migrating(oversubscribed_threads(), iters, 128, [&](unsigned, unsigned i) {
    kprim::percpu_ref_get_many(g.ref, 1 + i % 3);
    kprim::percpu_ref_put_many(g.ref, 1 + i % 3);
  });
  stop.store(true);
  switcher.join();
  EXPECT_EQ(g.releases.load(), 0);
  kprim::percpu_ref_switch_to_percpu(g.ref);
  kprim::percpu_ref_kill(g.ref);
  EXPECT_EQ(g.releases.load(), 1);
  EXPECT_EQ(g.early.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, PercpuRef, ::testing::Values(0u, kprim::PERCPU_REF_INIT_ATOMIC),
                         [](const auto& info) { return info.param ? "init_atomic" : "percpu"; });

// Signals land inside the gated per-CPU add of get/put: restarts must keep the count exact,
// so that after the storm a kill releases the ref at once (only the initial reference left).
TEST(PercpuRefRseq, SignalRestartsKeepCountExact) {
  if (!kprim::percpu_ref_percpu_available()) GTEST_SKIP() << "per-CPU mode unavailable";
  guarded g;
  ASSERT_TRUE(kprim::percpu_ref_is_percpu(g.ref));
  const std::uint64_t before = kprim::percpu_rseq_aborts();
  const unsigned sent = kprim::test::signal_storm(
      [&](const std::atomic<bool>& stop) {
        for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
          kprim::percpu_ref_get_many(g.ref, 1 + i % 4);
          kprim::percpu_ref_put_many(g.ref, 1 + i % 4);
        }
      },
      [&](unsigned sent) { return sent >= 100 && kprim::percpu_rseq_aborts() - before >= 3; }, 50000);
  EXPECT_GE(kprim::percpu_rseq_aborts() - before, 3u) << "after " << sent << " signals";
  EXPECT_EQ(g.releases.load(), 0);
  kprim::percpu_ref_kill(g.ref);
  EXPECT_EQ(g.releases.load(), 1);
}

TEST(PercpuRefMode, PercpuWhenRseqLive) {
  if (kprim::percpu_live_path() != kprim::percpu_path::rseq)
    GTEST_SKIP() << "rseq path not live: " << kprim::percpu_path_name();
  EXPECT_TRUE(kprim::percpu_ref_percpu_available());
}

}  // namespace
