// Tests for kprim/rcu.hpp in every flavour (memb, qsbr, mb, bp) in one process: readers never
// see freed memory, updates become visible, grace periods wait for pre-existing readers,
// call_rcu()/kfree_rcu()/rcu_barrier() run and free everything, misuse aborts (debug checks
// are forced on for this binary). Iteration-bounded: no timing is asserted.
#include <kprim/rcu.hpp>
#include <kprim/rcu/bp.hpp>
#include <kprim/rcu/mb.hpp>
#include <kprim/rcu/memb.hpp>
#include <kprim/rcu/qsbr.hpp>

#include <kprim/testing/stress.hpp>  // death_test_style(): qemu-user cannot re-exec

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

static_assert(KPRIM_DEBUG_RCU == 1, "this test checks the debug checks: build it with KPRIM_DEBUG_RCU=1");

template <class F>
class Rcu : public ::testing::Test {
 protected:
  // Callbacks still queued at exit would show up as leaks under LeakSanitizer.
  void TearDown() override {
    kprim::rcu_thread<F> reg;
    kprim::rcu_barrier<F>();
  }
};
using Flavours = ::testing::Types<kprim::rcu_memb, kprim::rcu_qsbr, kprim::rcu_mb, kprim::rcu_bp>;
struct FlavourName {
  template <class F>
  static std::string GetName(int) {
    return std::string(F::name);
  }
};
TYPED_TEST_SUITE(Rcu, Flavours, FlavourName);

/// An object readers check: `magic` is `alive` from construction until the destructor runs.
struct node {
  static constexpr std::uint64_t alive = 0xA11CEA11CEA11CEull;
  static constexpr std::uint64_t dead = 0xDEADDEADDEADDEADull;
  explicit node(std::uint64_t v) : value(v) { live.fetch_add(1, std::memory_order_relaxed); }
  ~node() {
    __atomic_store_n(&magic, dead, __ATOMIC_RELAXED);
    live.fetch_sub(1, std::memory_order_relaxed);
  }
  /// Nodes constructed and not yet destroyed: 0 once every deferred free has run.
  static inline std::atomic<long> live{0};
  std::uint64_t magic = alive;
  std::uint64_t value;
  std::uint64_t value_twice = 2 * value;
  kprim::rcu_head rcu{};
};

/// A reader's quiescent point between read-side sections (qsbr needs one; elsewhere a no-op).
template <class F>
void reader_pause() {
  kprim::rcu_quiescent_state<F>();
}

TYPED_TEST(Rcu, RegistrationAndNestedReadSections) {
  using F = TypeParam;
  kprim::rcu_thread<F> reg;
  EXPECT_TRUE(F::registered());
  {
    kprim::rcu_read_guard<F> outer;
    EXPECT_TRUE(kprim::rcu_read_lock_held<F>());
    {
      kprim::rcu_read_guard<F> inner;
      EXPECT_TRUE(kprim::rcu_read_lock_held<F>());
    }
    EXPECT_TRUE(kprim::rcu_read_lock_held<F>());
  }
  if constexpr (!F::needs_quiescent_states) {
    EXPECT_FALSE(kprim::rcu_read_lock_held<F>());
  }
  EXPECT_EQ(kprim::rcu_flavour_name<F>(), F::name);
}

TYPED_TEST(Rcu, PointerPublishReplaceAndRead) {
  using F = TypeParam;
  kprim::rcu_thread<F> reg;
  node* gp = nullptr;
  kprim::RCU_INIT_POINTER(gp, nullptr);
  auto* a = new node(1);
  kprim::rcu_assign_pointer(gp, a);
  {
    kprim::rcu_read_guard<F> g;
    node* p = kprim::rcu_dereference<F>(gp);
    ASSERT_EQ(p, a);
    EXPECT_EQ(p->value, 1u);
  }
  auto* b = new node(2);
  node* old = kprim::rcu_replace_pointer(gp, b, true);
  EXPECT_EQ(old, a);
  EXPECT_EQ(kprim::rcu_access_pointer(gp), b);
  kprim::synchronize_rcu<F>();
  delete old;
  kprim::kfree_rcu<&node::rcu, F>(kprim::rcu_replace_pointer(gp, nullptr, true));
  kprim::kfree_rcu<&node::rcu, F>(static_cast<node*>(nullptr));  // ignored
}

TYPED_TEST(Rcu, CallRcuRunsEveryCallbackBeforeBarrierReturns) {
  using F = TypeParam;
  kprim::rcu_thread<F> reg;
  static std::atomic<int> ran;
  ran = 0;
  constexpr int n = 1000;
  std::vector<kprim::rcu_head> heads(n);
  for (auto& h : heads) kprim::call_rcu<F>(&h, [](kprim::rcu_head*) { ran.fetch_add(1, std::memory_order_relaxed); });
  kprim::rcu_barrier<F>();
  EXPECT_EQ(ran.load(), n);
}

TYPED_TEST(Rcu, GracePeriodWaitsForPreexistingReader) {
  using F = TypeParam;
  std::atomic<int> stage{0};  // 1: reader inside; 2: reader may leave
  std::atomic<bool> gp_done{false};
  std::thread reader([&] {
    kprim::rcu_thread<F> reg;
    {
      kprim::rcu_read_guard<F> g;
      stage = 1;
      while (stage.load() != 2) std::this_thread::yield();
    }
    reader_pause<F>();
  });
  while (stage.load() != 1) std::this_thread::yield();
  std::thread updater([&] {
    kprim::synchronize_rcu<F>();
    gp_done = true;
  });
  // Behaviour, not timing: however long we look, the grace period cannot end while the
  // reader that began before it is still inside.
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(gp_done.load());
  stage = 2;
  updater.join();
  reader.join();
  EXPECT_TRUE(gp_done.load());
}

// Readers never touch freed memory: one updater replaces the published object over and over,
// freeing the old one through a grace period (alternately synchronize_rcu() + delete and
// kfree_rcu()); readers check every object they reach is alive. Under ASan any early free is a
// heap-use-after-free report; without it, the destructor's `dead` mark catches most.
TYPED_TEST(Rcu, ReadersNeverSeeFreedObjects) {
  using F = TypeParam;
  // qsbr waits for every online reader to be scheduled and pass a quiescent state: with more
  // threads than cores a grace period lasts about a scheduler time slice, so fewer updates.
  constexpr int updates = F::needs_quiescent_states ? 150 : 600;
  constexpr int readers = 3;
  node* gp = new node(0);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  std::atomic<int> running{0};  // readers that have completed a read: updates start after all
  std::vector<std::thread> ts;
  for (int r = 0; r < readers; ++r)
    ts.emplace_back([&] {
      kprim::rcu_thread<F> reg;
      std::uint64_t last = 0, n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        {
          kprim::rcu_read_guard<F> g;
          const node* p = kprim::rcu_dereference<F>(gp);
          // Updates are published in order: a reader never goes back in time.
          if (p->magic != node::alive || p->value_twice != 2 * p->value || p->value < last) bad.fetch_add(1);
          last = p->value;
        }
        reader_pause<F>();
        if (++n == 1) running.fetch_add(1);
      }
      reads.fetch_add(n);
    });
  while (running.load() != readers) std::this_thread::yield();
  {
    kprim::rcu_thread<F> reg;
    for (int i = 1; i <= updates; ++i) {
      node* old = kprim::rcu_replace_pointer(gp, new node(static_cast<std::uint64_t>(i)), true);
      if (i % 2) {
        kprim::synchronize_rcu<F>();
        delete old;
      } else {
        kprim::kfree_rcu<&node::rcu, F>(old);
      }
      reader_pause<F>();
    }
    stop = true;
    for (auto& t : ts) t.join();
    kprim::kfree_rcu<&node::rcu, F>(kprim::rcu_replace_pointer(gp, nullptr, true));
    kprim::rcu_barrier<F>();
  }
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(node::live.load(), 0) << "objects left unfreed after rcu_barrier()";
}

// kfree_rcu() batches frees a page at a time (kprim/rcu.hpp). Many pages' worth of frees while
// readers run: no reader reaches a freed object, full pages go to grace periods without
// waiting for rcu_barrier() (liburcu's own barrier, which knows nothing of partial pages,
// leaves at most one partial page, plus the published object, alive), and rcu_barrier()
// frees the rest.
TYPED_TEST(Rcu, KfreeRcuBatchesFreeFullPagesUnderReaders) {
  using F = TypeParam;
  constexpr int updates = 5 * static_cast<int>(std::size(kprim::detail::kfree_rcu_page{}.objs)) + 37;
  constexpr long page = static_cast<long>(std::size(kprim::detail::kfree_rcu_page{}.objs));
  node* gp = new node(0);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0};
  std::atomic<int> running{0};
  std::vector<std::thread> ts;
  for (int r = 0; r < 3; ++r)
    ts.emplace_back([&] {
      kprim::rcu_thread<F> reg;
      bool first = true;
      while (!stop.load(std::memory_order_relaxed)) {
        {
          kprim::rcu_read_guard<F> g;
          const node* p = kprim::rcu_dereference<F>(gp);
          if (p->magic != node::alive || p->value_twice != 2 * p->value) bad.fetch_add(1);
        }
        reader_pause<F>();
        if (first) running.fetch_add(1);
        first = false;
      }
    });
  while (running.load() != 3) std::this_thread::yield();
  kprim::rcu_thread<F> reg;
  for (int i = 1; i <= updates; ++i) {
    kprim::kfree_rcu<&node::rcu, F>(kprim::rcu_replace_pointer(gp, new node(static_cast<std::uint64_t>(i)), true));
    reader_pause<F>();
  }
  stop = true;
  for (auto& t : ts) t.join();
  F::barrier();  // liburcu's: the submitted pages' callbacks have run
  EXPECT_LE(node::live.load(), page + 1) << "full kfree_rcu() pages were not handed to grace periods";
  kprim::kfree_rcu<&node::rcu, F>(kprim::rcu_replace_pointer(gp, nullptr, true));
  kprim::rcu_barrier<F>();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(node::live.load(), 0) << "objects left unfreed after rcu_barrier()";
}

// rcu_barrier() frees the partial pages of other threads that are still running (the kernel's
// kvfree_rcu_barrier() drains every CPU's batch): each thread queues a few objects, then waits
// (announcing quiescent states) until the main thread's barrier has returned.
TYPED_TEST(Rcu, BarrierFreesOtherThreadsPartialPages) {
  using F = TypeParam;
  constexpr int threads = 3, each = 10;
  std::atomic<int> queued{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      kprim::rcu_thread<F> reg;
      for (int i = 0; i < each; ++i) kprim::kfree_rcu<&node::rcu, F>(new node(1));
      queued.fetch_add(1);
      while (!done.load()) {
        reader_pause<F>();
        std::this_thread::yield();
      }
    });
  while (queued.load() != threads) std::this_thread::yield();
  EXPECT_GT(node::live.load(), 0) << "the objects were freed at once: the check below proves nothing";
  kprim::rcu_barrier<F>();
  EXPECT_EQ(node::live.load(), 0) << "rcu_barrier() left other threads' batched frees pending";
  done = true;
  for (auto& t : ts) t.join();
}

// A thread that exits hands its partial page to a grace period: after the join, liburcu's own
// barrier (which knows nothing of kprim's pages) is enough to see everything freed. Both
// orders of thread-exit teardown: the registration ended before the page's (a local
// rcu_thread: the page waits for a grace period itself) or after it (a thread_local
// rcu_thread constructed first: the page goes to call_rcu()).
TYPED_TEST(Rcu, ThreadExitHandsOverItsPartialPage) {
  using F = TypeParam;
  std::thread([] {
    kprim::rcu_thread<F> reg;
    for (int i = 0; i < 10; ++i) kprim::kfree_rcu<&node::rcu, F>(new node(1));
  }).join();
  std::thread([] {
    static thread_local kprim::rcu_thread<F> reg;
    for (int i = 0; i < 10; ++i) kprim::kfree_rcu<&node::rcu, F>(new node(1));
  }).join();
  F::barrier();
  EXPECT_EQ(node::live.load(), 0) << "an exiting thread's batched frees were dropped or left pending";
}

// Updates become visible: after synchronize_rcu() returns, every reader section that starts
// sees the new value; and a reader spinning on the pointer eventually sees each publication.
TYPED_TEST(Rcu, UpdatesBecomeVisible) {
  using F = TypeParam;
  node* gp = new node(0);
  constexpr std::uint64_t last = 200;
  std::atomic<std::uint64_t> seen{0};
  std::thread reader([&] {
    kprim::rcu_thread<F> reg;
    std::uint64_t v = 0;
    while (v != last) {
      {
        kprim::rcu_read_guard<F> g;
        v = kprim::rcu_dereference<F>(gp)->value;
      }
      reader_pause<F>();
      seen.store(v, std::memory_order_relaxed);
    }
  });
  kprim::rcu_thread<F> reg;
  for (std::uint64_t i = 1; i <= last; ++i) {
    node* old = kprim::rcu_replace_pointer(gp, new node(i), true);
    kprim::synchronize_rcu<F>();
    {
      kprim::rcu_read_guard<F> g;
      EXPECT_EQ(kprim::rcu_dereference<F>(gp)->value, i);
    }
    delete old;
  }
  reader.join();
  EXPECT_EQ(seen.load(), last);
  delete kprim::rcu_replace_pointer(gp, nullptr, true);
}

// qsbr: a registered thread that is offline (blocked) does not hold up grace periods.
TEST(RcuQsbr, OfflineThreadDoesNotBlockGracePeriods) {
  using F = kprim::rcu_qsbr;
  std::atomic<bool> offline{false}, release{false};
  std::thread blocked([&] {
    kprim::rcu_thread<F> reg;
    kprim::rcu_offline_scope<F> off;
    offline = true;
    while (!release.load()) std::this_thread::sleep_for(1ms);
  });
  while (!offline.load()) std::this_thread::yield();
  kprim::synchronize_rcu<F>();  // would hang if the offline thread were waited for
  release = true;
  blocked.join();
}

// Several flavours at once in one thread: each keeps its own registration and grace periods.
TEST(RcuFlavours, CoexistInOneThread) {
  kprim::rcu_thread<kprim::rcu_memb> a;
  kprim::rcu_thread<kprim::rcu_qsbr> b;
  kprim::rcu_thread<kprim::rcu_mb> c;
  {
    kprim::rcu_read_guard<kprim::rcu_memb> g;
    EXPECT_TRUE(kprim::rcu_read_lock_held<kprim::rcu_memb>());
    EXPECT_FALSE(kprim::rcu_read_lock_held<kprim::rcu_mb>());
    kprim::synchronize_rcu<kprim::rcu_mb>();  // another flavour's grace period: no deadlock
  }
  kprim::rcu_quiescent_state<kprim::rcu_qsbr>();
  kprim::synchronize_rcu<kprim::rcu_memb>();
  kprim::synchronize_rcu<kprim::rcu_qsbr>();
  kprim::synchronize_rcu<kprim::rcu_bp>();
  EXPECT_EQ(kprim::rcu_flavour_name(), "memb");  // kprim::rcu_all selects no flavour: memb
}

// ---- misuse is caught (debug checks) ----------------------------------------------------

template <class F>
class RcuDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style()); }
};
TYPED_TEST_SUITE(RcuDeath, Flavours, FlavourName);

TYPED_TEST(RcuDeath, ReadingWithoutRegistration) {
  using F = TypeParam;
  if constexpr (F::auto_registers) {
    GTEST_SKIP() << "bp registers threads itself: reading unregistered is allowed";
  } else {
    EXPECT_DEATH(
        {
          kprim::rcu_read_lock<F>();
          kprim::rcu_read_unlock<F>();
        },
        "not registered with RCU");
  }
}

TYPED_TEST(RcuDeath, CallRcuWithoutRegistration) {
  using F = TypeParam;
  if constexpr (F::auto_registers) {
    GTEST_SKIP() << "bp registers threads itself";
  } else {
    static kprim::rcu_head h;
    EXPECT_DEATH(kprim::call_rcu<F>(&h, [](kprim::rcu_head*) {}), "call_rcu\\(\\) on a thread not registered");
  }
}

TYPED_TEST(RcuDeath, UnlockWithoutLock) {
  using F = TypeParam;
  EXPECT_DEATH(
      {
        kprim::rcu_thread<F> reg;
        kprim::rcu_read_unlock<F>();
      },
      "without rcu_read_lock");
}

TYPED_TEST(RcuDeath, SynchronizeInsideReadSection) {
  using F = TypeParam;
  EXPECT_DEATH(
      {
        kprim::rcu_thread<F> reg;
        kprim::rcu_read_guard<F> g;
        kprim::synchronize_rcu<F>();
      },
      "synchronize_rcu\\(\\) inside a read-side critical section");
}

TYPED_TEST(RcuDeath, BarrierInsideReadSection) {
  using F = TypeParam;
  EXPECT_DEATH(
      {
        kprim::rcu_thread<F> reg;
        kprim::rcu_read_guard<F> g;
        kprim::rcu_barrier<F>();
      },
      "rcu_barrier\\(\\) inside a read-side critical section");
}

TYPED_TEST(RcuDeath, DereferenceOutsideReadSection) {
  using F = TypeParam;
  if constexpr (F::needs_quiescent_states) {
    GTEST_SKIP() << "qsbr: an online thread is always in a read-side section";
  } else {
    static int x;
    static int* gp = &x;
    EXPECT_DEATH(
        {
          kprim::rcu_thread<F> reg;
          [[maybe_unused]] int* p = kprim::rcu_dereference<F>(gp);
        },
        "rcu_dereference\\(\\) outside a read-side critical section");
  }
}

TYPED_TEST(RcuDeath, RegisteringTwice) {
  using F = TypeParam;
  if constexpr (F::auto_registers) {
    GTEST_SKIP() << "bp: registration is idempotent";
  } else {
    EXPECT_DEATH(
        {
          kprim::rcu_thread<F> a;
          kprim::rcu_thread<F> b;
        },
        "registered with RCU twice");
  }
}

TYPED_TEST(RcuDeath, UnregisterInsideReadSection) {
  using F = TypeParam;
  EXPECT_DEATH(
      {
        kprim::rcu_register_thread<F>();
        kprim::rcu_read_lock<F>();
        kprim::rcu_unregister_thread<F>();
      },
      "rcu_unregister_thread\\(\\) inside a read-side critical section");
}

TEST(RcuQsbrDeath, QuiescentStateInsideReadSection) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  using F = kprim::rcu_qsbr;
  EXPECT_DEATH(
      {
        kprim::rcu_thread<F> reg;
        kprim::rcu_read_guard<F> g;
        kprim::rcu_quiescent_state<F>();
      },
      "rcu_quiescent_state\\(\\) inside a read-side critical section");
}

TEST(RcuQsbrDeath, ReadingWhileOffline) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  using F = kprim::rcu_qsbr;
  EXPECT_DEATH(
      {
        kprim::rcu_thread<F> reg;
        kprim::rcu_offline_scope<F> off;
        kprim::rcu_read_lock<F>();
      },
      "offline");
}

}  // namespace
