// slab_irq_test: GFP_ATOMIC allocation and free inside kprim interrupt handlers (kprim/irq.hpp)
// that interrupt their thread anywhere, including in the middle of kmem_cache_alloc/free's own
// fast and slow paths. A signal storm from another thread hits threads that allocate, write
// patterns, check them and free; the handlers allocate and free too. Nothing may be lost
// (counts balance, the cache's statistics return to zero), handed out twice or corrupted
// (every object's pattern intact when freed). More threads than cores.
#include <kprim/irq.hpp>
#include <kprim/kmalloc.hpp>
#include <kprim/slab.hpp>

#include <gtest/gtest.h>

#include <sched.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

constexpr unsigned kIrq = SIGUSR1;
constexpr std::size_t kObj = 64;      // cache object size
constexpr std::size_t kKmalloc = 96;  // kmalloc-128 class
constexpr int kLive = 64;             // objects each thread keeps live (a ring)
constexpr int kHandlerLive = 8;       // objects each thread's handler keeps live

/// Pattern: every word of the object holds (tag, index). A second owner or a stray write
/// changes some word.
void fill(void* p, std::size_t n, std::uint64_t tag) {
  auto* w = static_cast<std::uint64_t*>(p);
  for (std::size_t i = 0; i < n / 8; ++i) w[i] = tag ^ (i * 0x9e3779b97f4a7c15ull);
}
bool intact(const void* p, std::size_t n, std::uint64_t tag) {
  const auto* w = static_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i < n / 8; ++i)
    if (w[i] != (tag ^ (i * 0x9e3779b97f4a7c15ull))) return false;
  return true;
}

struct storm_stats {
  std::atomic<long> allocs{0}, frees{0};                         // process context
  std::atomic<long> irq_allocs{0}, irq_frees{0}, irq_failed{0};  // handlers
  std::atomic<long> corrupt{0};
  std::atomic<long> handler_runs{0};
};
storm_stats g_stats;
kmem_cache_t* g_cache = nullptr;

/// One handler's live objects, in its thread (handlers do not nest on a thread, so plain TLS).
struct handler_ring {
  void* obj[kHandlerLive];
  std::uint64_t tag[kHandlerLive];
  bool is_kmalloc[kHandlerLive];
  unsigned next;
  unsigned seq;
  unsigned id;
  bool armed;
};
constinit thread_local handler_ring t_ring{};

void ring_release(handler_ring& r, unsigned i) {
  if (r.obj[i] == nullptr) return;
  const std::size_t n = r.is_kmalloc[i] ? kKmalloc : kObj;
  if (!intact(r.obj[i], n, r.tag[i])) g_stats.corrupt.fetch_add(1, std::memory_order_relaxed);
  if (r.is_kmalloc[i]) kfree(r.obj[i]);
  else kmem_cache_free(g_cache, r.obj[i]);
  r.obj[i] = nullptr;
  g_stats.irq_frees.fetch_add(1, std::memory_order_relaxed);
}

irqreturn_t storm_handler(int, void*) {
  g_stats.handler_runs.fetch_add(1, std::memory_order_relaxed);
  handler_ring& r = t_ring;
  if (!r.armed) return IRQ_NONE;
  const unsigned i = r.next++ % kHandlerLive;
  ring_release(r, i);
  const bool km = (r.seq & 1) != 0;
  void* p = km ? kmalloc(kKmalloc, GFP_ATOMIC) : kmem_cache_alloc(g_cache, GFP_ATOMIC);
  if (p == nullptr) {
    g_stats.irq_failed.fetch_add(1, std::memory_order_relaxed);
    return IRQ_HANDLED;
  }
  g_stats.irq_allocs.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t tag = (std::uint64_t{0xfeed} << 48) | (std::uint64_t{r.id} << 32) | r.seq++;
  fill(p, km ? kKmalloc : kObj, tag);
  r.obj[i] = p;
  r.tag[i] = tag;
  r.is_kmalloc[i] = km;
  return IRQ_HANDLED;
}

/// The storm: `workers` threads allocate/check/free while a sender signals them nonstop.
void run_storm(slab_flags_t flags, int workers, long target_runs) {
  g_cache = kmem_cache_create("irq_storm", kObj, 0, flags, nullptr);
  ASSERT_NE(g_cache, nullptr);
  kfree(kmalloc(kKmalloc, GFP_KERNEL));  // creates kmalloc-128 in process context, before handlers use it
  ASSERT_EQ(request_irq(kIrq, storm_handler, 0, "slab_irq_test", nullptr), 0);

  std::atomic<bool> stop{false}, stop_work{false};
  std::atomic<int> ready{0}, done{0};
  std::vector<pthread_t> ids(static_cast<std::size_t>(workers));
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w) {
    ts.emplace_back([&, w] {
      ids[static_cast<std::size_t>(w)] = pthread_self();
      t_ring = {};
      t_ring.id = static_cast<unsigned>(w);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      t_ring.armed = true;
      ready.fetch_add(1);
      void* live[kLive] = {};
      std::uint64_t tags[kLive] = {};
      bool km[kLive] = {};
      for (int n = 0; !stop_work.load(std::memory_order_relaxed); ++n) {
        const int i = n % kLive;
        if (live[i] != nullptr) {
          if (!intact(live[i], km[i] ? kKmalloc : kObj, tags[i])) g_stats.corrupt.fetch_add(1);
          if (km[i]) kfree(live[i]);
          else kmem_cache_free(g_cache, live[i]);
          g_stats.frees.fetch_add(1, std::memory_order_relaxed);
        }
        km[i] = (n % 3) == 0;
        live[i] = km[i] ? kmalloc(kKmalloc, GFP_KERNEL) : kmem_cache_alloc(g_cache, GFP_KERNEL);
        if (live[i] == nullptr) {
          g_stats.corrupt.fetch_add(1);  // GFP_KERNEL never fails here
          continue;
        }
        g_stats.allocs.fetch_add(1, std::memory_order_relaxed);
        tags[i] = (std::uint64_t{static_cast<unsigned>(w)} << 32) | static_cast<unsigned>(n);
        fill(live[i], km[i] ? kKmalloc : kObj, tags[i]);
      }
      for (int i = 0; i < kLive; ++i) {
        if (live[i] == nullptr) continue;
        if (!intact(live[i], km[i] ? kKmalloc : kObj, tags[i])) g_stats.corrupt.fetch_add(1);
        if (km[i]) kfree(live[i]);
        else kmem_cache_free(g_cache, live[i]);
        g_stats.frees.fetch_add(1, std::memory_order_relaxed);
      }
      // The handler's leftovers, with interrupts off so it cannot run meanwhile.
      unsigned long flags;
      local_irq_save(flags);
      t_ring.armed = false;
      for (unsigned i = 0; i < kHandlerLive; ++i) ring_release(t_ring, i);
      local_irq_restore(flags);
      done.fetch_add(1);
      while (!stop.load()) std::this_thread::yield();  // stay signalable until the sender stops
    });
  }
  while (ready.load() != workers) std::this_thread::yield();
  std::thread sender([&] {
    for (unsigned long k = 0; done.load(std::memory_order_relaxed) != workers; ++k)
      (void)raise_irq_on(ids[k % ids.size()], kIrq);
  });
  // Run until the handlers ran target_runs times (bounded by time, not by a count that a
  // loaded machine might never reach), then let the workers free everything.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_stats.handler_runs.load() < target_runs && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop_work = true;
  sender.join();
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_NE(free_irq(kIrq, nullptr), nullptr);

  EXPECT_EQ(g_stats.corrupt.load(), 0) << "an object was corrupted or handed out twice";
  EXPECT_EQ(g_stats.allocs.load(), g_stats.frees.load());
  EXPECT_EQ(g_stats.irq_allocs.load(), g_stats.irq_frees.load()) << "a handler's object was lost";
  EXPECT_GT(g_stats.handler_runs.load(), 0);
  EXPECT_GT(g_stats.irq_allocs.load(), 0) << "no GFP_ATOMIC allocation in a handler succeeded";
  const slabinfo info = kmem_cache_get_info(g_cache);  // drains the handlers' deferred frees
  EXPECT_EQ(info.active_objs, 0u) << "objects still out after every thread freed and exited";
  EXPECT_EQ(kmem_cache_destroy(g_cache), 0u) << "the cache still has objects";
  std::printf("storm: %ld allocs, %ld handler runs, %ld handler allocs, %ld GFP_ATOMIC failures\n",
              g_stats.allocs.load(), g_stats.handler_runs.load(), g_stats.irq_allocs.load(),
              g_stats.irq_failed.load());
}

void reset_stats() {
  g_stats.allocs = g_stats.frees = g_stats.irq_allocs = g_stats.irq_frees = g_stats.irq_failed = 0;
  g_stats.corrupt = g_stats.handler_runs = 0;
}

TEST(SlabIrq, SignalStormAgainstAllocatingThreads) {
  reset_stats();
  run_storm(0, 4, 20000);
}

TEST(SlabIrq, SignalStormDebugCache) {
  reset_stats();
  run_storm(SLAB_RED_ZONE | SLAB_POISON, 3, 10000);
}

// A handler's free is deferred, not lost: the object is out (active) until process context
// drains it, and then reusable.
void* g_handed = nullptr;
std::atomic<bool> g_handler_done{false};
irqreturn_t free_in_handler(int, void*) {
  kmem_cache_free(g_cache, g_handed);
  g_handed = kmem_cache_alloc(g_cache, GFP_ATOMIC);  // from the slabs: the node lock is free
  g_handler_done.store(true);
  return IRQ_HANDLED;
}

/// wait_for() - poll (yielding) up to 10 s: ThreadSanitizer delivers a signal to self at its
/// next interceptor, not before tgkill returns.
template <class F>
bool wait_for(F done) {
  for (int i = 0; i < 1000000 && !done(); ++i) sched_yield();
  return done();
}

TEST(SlabIrq, HandlerFreeIsDeferredAndDrained) {
  g_cache = kmem_cache_create("irq_defer", kObj, 0, 0, nullptr);
  ASSERT_NE(g_cache, nullptr);
  ASSERT_EQ(request_irq(kIrq, free_in_handler, 0, "defer", nullptr), 0);
  void* first = kmem_cache_alloc(g_cache, GFP_KERNEL);
  g_handed = first;
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_for([] { return g_handler_done.load(); }));
  void* second = g_handed;
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first) << "the handler reused an object whose free it only deferred";
  kmem_cache_free(g_cache, second);
  EXPECT_NE(free_irq(kIrq, nullptr), nullptr);
  kmem_cache_shrink(g_cache);  // drains the deferred free and returns this thread's magazines
  EXPECT_EQ(kmem_cache_get_info(g_cache).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(g_cache), 0u);
}

#if KPRIM_DEBUG_LOCKING
std::atomic<int> g_kernel_alloc_ran{0};
irqreturn_t kernel_alloc_in_handler(int, void*) {
  kfree(kmalloc(32, GFP_KERNEL));
  g_kernel_alloc_ran.fetch_add(1);
  return IRQ_HANDLED;
}

#if !KPRIM_TSAN
TEST(SlabIrqDeathTest, GfpKernelInAHandlerReports) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        debug::set_abort_on_report(true);
        kfree(kmalloc(32, GFP_KERNEL));
        (void)request_irq(kIrq, kernel_alloc_in_handler, 0, "sleeps", nullptr);
        (void)raise_irq(kIrq);
        (void)wait_for([] { return false; });  // the handler's report aborts first
      },
      "BUG: sleeping function called from invalid context at .*slab.hpp:[0-9]+\n"
      "in_atomic\\(\\): 1, irqs_disabled\\(\\): 1");
}
#else
// Under ThreadSanitizer abort() in a signal handler does not end the process: read the report.
TEST(SlabIrq, GfpKernelInAHandlerReports) {
  debug::set_abort_on_report(false);
  kfree(kmalloc(32, GFP_KERNEL));
  ASSERT_EQ(request_irq(kIrq, kernel_alloc_in_handler, 0, "sleeps", nullptr), 0);
  testing::internal::CaptureStderr();
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_for([] { return g_kernel_alloc_ran.load() == 1; }));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(free_irq(kIrq, nullptr), nullptr);
  EXPECT_NE(err.find("BUG: sleeping function called from invalid context at"), std::string::npos) << err;
  EXPECT_NE(err.find("in_atomic(): 1, irqs_disabled(): 1"), std::string::npos) << err;
}
#endif
#endif

}  // namespace
