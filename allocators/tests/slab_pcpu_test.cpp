// slab_pcpu_test: SLAB_PERCPU_MAGAZINES, the per-CPU magazines on restartable sequences.
// More threads than CPUs allocate, free locally and free each other's objects while flipping
// their CPU affinity (sched_setaffinity), so that sequences abort, threads migrate between a
// CPU's fast-path pop and its slow-path magazine exchange, and several threads share one
// CPU's magazine. Every object carries an atomic owner word: an allocation that finds it
// non-zero is an object handed out twice. At the end the counts balance: every allocation
// was freed, and kmem_cache_destroy() finds no object outstanding. Without rseq (TSan builds,
// other architectures, glibc.pthread.rseq=0) the flag is ignored and the same checks run on
// the per-thread magazines.
#include <kprim/slab.hpp>

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

/// Sanitizers run 5-20x slower: fewer rounds, same shape.
constexpr unsigned rounds = (KPRIM_TSAN || KPRIM_KASAN) ? 100 : 500;

struct obj {
  std::atomic<std::uint32_t> owner;  // 0 while free (constructed state), else holder id
  std::uint32_t pad[15];
};
static_assert(sizeof(obj) == 64);

void obj_ctor(void* p) { new (p) obj{}; }

bool percpu_expected() {
#if KPRIM_SLAB_PERCPU
  return __rseq_size != 0;
#else
  return false;
#endif
}

TEST(SlabPercpu, FlagTakesEffectWhereRseqIs) {
  kmem_cache_t* s = kmem_cache_create("pcpu_flag", 64, 0, SLAB_PERCPU_MAGAZINES, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(detail::hot(s).percpu != 0, percpu_expected());
  kmem_cache_t* d = kmem_cache_create("pcpu_debug", 64, 0, SLAB_PERCPU_MAGAZINES | SLAB_RED_ZONE, nullptr);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(detail::hot(d).percpu, 0u) << "debug caches have no magazines";
  EXPECT_EQ(kmem_cache_destroy(d), 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(SlabPercpu, OneThreadDistinctObjectsAndBalance) {
  kmem_cache_t* s = kmem_cache_create("pcpu_one", 64, 0, SLAB_PERCPU_MAGAZINES, obj_ctor);
  ASSERT_NE(s, nullptr);
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<void*> v;
    std::set<void*> seen;
    for (int i = 0; i < 5000; ++i) {
      void* p = kmem_cache_alloc(s, GFP_KERNEL);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(seen.insert(p).second) << "object handed out twice";
      EXPECT_EQ(static_cast<obj*>(p)->owner.load(), 0u) << "ctor state lost";
      v.push_back(p);
    }
    void* a = kmem_cache_alloc(s, GFP_ATOMIC);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(seen.insert(a).second);
    v.push_back(a);
    void* bulk[40];
    ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, 40, bulk), 40);
    for (void* p : bulk) EXPECT_TRUE(seen.insert(p).second);
    kmem_cache_free_bulk(s, 40, bulk);
    for (void* p : v) kmem_cache_free(s, p);
    if (pass == 1) kmem_cache_shrink(s);
  }
  const slabinfo info = kmem_cache_get_info(s);
  EXPECT_LE(info.active_objs, info.num_objs);
  EXPECT_EQ(kmem_cache_destroy(s), 0u) << "every object came back";
}

/// pin() - run the calling thread on one CPU of `allowed`, or on all of them (cpu < 0).
void pin(const cpu_set_t& allowed, int cpu) {
  cpu_set_t m;
  if (cpu < 0) {
    m = allowed;
  } else {
    CPU_ZERO(&m);
    CPU_SET(cpu, &m);
  }
  sched_setaffinity(0, sizeof m, &m);  // failure (e.g. a CPU gone offline) only skips a flip
}

TEST(SlabPercpu, MigratingThreadsNeverShareAnObject) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  ASSERT_FALSE(cpus.empty());
  const unsigned nthreads = std::max<unsigned>(6, 3 * static_cast<unsigned>(cpus.size()));

  kmem_cache_t* s = kmem_cache_create("pcpu_stress", 64, 0, SLAB_PERCPU_MAGAZINES, obj_ctor);
  ASSERT_NE(s, nullptr);
  std::atomic<std::uint64_t> allocs{0}, frees{0}, twice{0}, bad_free{0};
  std::mutex pool_lock;
  std::vector<obj*> pool;  // objects handed to other threads to free (cross-CPU frees)

  auto worker = [&](unsigned id) {
    std::mt19937 rng(id * 7919u + 1);
    std::vector<obj*> mine;
    std::uint64_t a = 0, f = 0;
    auto release = [&](obj* o) {
      if (o->owner.exchange(0, std::memory_order_acq_rel) == 0) bad_free.fetch_add(1);
      kmem_cache_free(s, o);
      ++f;
    };
    for (unsigned r = 0; r < rounds; ++r) {
      if (r % 16 == 0) pin(allowed, (rng() % 3 == 0) ? -1 : cpus[rng() % cpus.size()]);
      const unsigned n = 1 + rng() % 300;  // beyond a magazine: exchanges with the depot
      for (unsigned i = 0; i < n; ++i) {
        auto* o = static_cast<obj*>(kmem_cache_alloc(s, (i % 64 == 0) ? GFP_ATOMIC : GFP_KERNEL));
        if (o == nullptr) continue;  // GFP_ATOMIC may fail on a busy lock
        ++a;
        if (o->owner.exchange(id + 1, std::memory_order_acq_rel) != 0) twice.fetch_add(1);
        mine.push_back(o);
        if (i % 32 == 0) sched_yield();
      }
      std::shuffle(mine.begin(), mine.end(), rng);
      const std::size_t give = mine.size() / 4;
      {
        std::lock_guard<std::mutex> g(pool_lock);
        pool.insert(pool.end(), mine.end() - static_cast<std::ptrdiff_t>(give), mine.end());
      }
      mine.resize(mine.size() - give);
      std::vector<obj*> theirs;
      {
        std::lock_guard<std::mutex> g(pool_lock);
        const std::size_t k = std::min<std::size_t>(pool.size(), give + 8);
        theirs.assign(pool.end() - static_cast<std::ptrdiff_t>(k), pool.end());
        pool.resize(pool.size() - k);
      }
      for (obj* o : theirs) release(o);
      for (obj* o : mine) release(o);
      mine.clear();
    }
    allocs.fetch_add(a);
    frees.fetch_add(f);
  };
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < nthreads; ++i) ts.emplace_back(worker, i);
  for (auto& t : ts) t.join();
  for (obj* o : pool) {
    if (o->owner.exchange(0) == 0) bad_free.fetch_add(1);
    kmem_cache_free(s, o);
    frees.fetch_add(1);
  }
  EXPECT_EQ(twice.load(), 0u) << "an object was handed out while allocated";
  EXPECT_EQ(bad_free.load(), 0u);
  EXPECT_GT(allocs.load(), 0u);
  EXPECT_EQ(allocs.load(), frees.load());
  const slabinfo info = kmem_cache_get_info(s);
  EXPECT_LE(info.active_objs, info.num_objs);
  EXPECT_EQ(kmem_cache_destroy(s), 0u) << "objects lost in some CPU's magazine";
}

}  // namespace
