// slab_test: kmem_cache behaviour on one thread: geometry and alignment, constructor-once,
// zeroing, bulk APIs, shrink and destroy give memory back, GFP_ATOMIC fails instead of waiting.
#include <kprim/slab.hpp>

#include "../src/slab_internal.hpp"

#include <kprim/testing/stress.hpp>  // death_test_style(): qemu-user cannot re-exec

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace kprim;

std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

TEST(Slab, CreateRejectsBadArguments) {
  EXPECT_EQ(kmem_cache_create("zero", 0, 0, 0, nullptr), nullptr);
  EXPECT_EQ(kmem_cache_create("align", 64, 24, 0, nullptr), nullptr);
  EXPECT_EQ(kmem_cache_create("huge", std::size_t{1} << 21, 0, 0, nullptr), nullptr);
  EXPECT_EQ(kmem_cache_create(nullptr, 8, 0, 0, nullptr), nullptr);
}

TEST(Slab, SizesAndAlignments) {
  for (std::size_t size : {1u, 7u, 8u, 24u, 64u, 100u, 256u, 1000u, 4096u, 20000u}) {
    for (std::size_t align : {0u, 8u, 16u, 64u, 256u, 4096u}) {
      kmem_cache_t* s = kmem_cache_create("geom", size, align, 0, nullptr);
      ASSERT_NE(s, nullptr) << size << " " << align;
      EXPECT_EQ(kmem_cache_size(s), size);
      std::vector<char*> objs;
      for (int i = 0; i < 300; ++i) {
        auto* p = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(aligned(p, std::max<std::size_t>(align, 8))) << size << " " << align;
        std::memset(p, i & 0xff, size);  // the whole object is writable
        objs.push_back(p);
      }
      // Distinct, non-overlapping objects: every one still holds its own pattern.
      std::set<char*> uniq(objs.begin(), objs.end());
      EXPECT_EQ(uniq.size(), objs.size());
      for (std::size_t i = 0; i < objs.size(); ++i)
        for (std::size_t b = 0; b < size; b += std::max<std::size_t>(1, size / 8))
          ASSERT_EQ(static_cast<unsigned char>(objs[i][b]), i & 0xff);
      const slabinfo info = kmem_cache_get_info(s);
      EXPECT_EQ(info.objsize, size);
      EXPECT_GE(info.size, size);
      EXPECT_GE(info.objperslab, 4u);
      EXPECT_GE(info.num_objs, objs.size());
      for (char* p : objs) kmem_cache_free(s, p);
      EXPECT_EQ(kmem_cache_destroy(s), 0u);
    }
  }
}

TEST(Slab, HwcacheAlignUsesLinesOrFractions) {
  kmem_cache_t* big = kmem_cache_create("hw100", 100, 0, SLAB_HWCACHE_ALIGN, nullptr);
  kmem_cache_t* small = kmem_cache_create("hw20", 20, 0, SLAB_HWCACHE_ALIGN, nullptr);
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) {
    void* a = kmem_cache_alloc(big, GFP_KERNEL);
    void* b = kmem_cache_alloc(small, GFP_KERNEL);
    EXPECT_TRUE(aligned(a, 64));
    EXPECT_TRUE(aligned(b, 32));  // 20 bytes fit half a line: 32-byte alignment (kernel rule)
    kmem_cache_free(big, a);
    v.push_back(b);
  }
  EXPECT_EQ(kmem_cache_get_info(big).size % 64, 0u);
  EXPECT_EQ(kmem_cache_destroy(big), 0u);
  for (void* b : v) kmem_cache_free(small, b);
  EXPECT_EQ(kmem_cache_destroy(small), 0u);
}

std::atomic<int> g_ctor_calls{0};
struct obj {
  std::uint64_t magic;
  std::uint64_t uses;
  char payload[48];
};
void obj_ctor(void* p) {
  auto* o = static_cast<obj*>(p);
  o->magic = 0xC0FFEE;
  o->uses = 0;
  g_ctor_calls.fetch_add(1, std::memory_order_relaxed);
}

TEST(Slab, ConstructorRunsOncePerObjectWhenSlabIsPopulated) {
  g_ctor_calls = 0;
  kmem_cache_t* s = kmem_cache_create("ctor", sizeof(obj), 0, 0, obj_ctor);
  ASSERT_NE(s, nullptr);
  std::vector<obj*> v;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i) {
      auto* o = static_cast<obj*>(kmem_cache_alloc(s, GFP_KERNEL));
      ASSERT_EQ(o->magic, 0xC0FFEEu);  // constructed state, also when recycled
      ++o->uses;
      v.push_back(o);
    }
    for (obj* o : v) kmem_cache_free(s, o);  // freed in constructed state
    v.clear();
  }
  const slabinfo info = kmem_cache_get_info(s);
  // Every object of every slab was constructed exactly once, at population.
  EXPECT_EQ(static_cast<std::size_t>(g_ctor_calls.load()), info.num_objs);
  EXPECT_LT(info.num_objs, 20u * 500u);  // far fewer constructions than allocations
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, ZallocZeroesEvenRecycledObjects) {
  kmem_cache_t* s = kmem_cache_create("zero", 200, 0, 0, nullptr);
  std::vector<void*> v;
  for (int i = 0; i < 1000; ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    std::memset(p, 0xab, 200);
    v.push_back(p);
  }
  for (void* p : v) kmem_cache_free(s, p);
  for (int i = 0; i < 1000; ++i) {
    auto* p = static_cast<unsigned char*>(kmem_cache_zalloc(s, GFP_KERNEL));
    for (int b = 0; b < 200; ++b) ASSERT_EQ(p[b], 0);
    v[i] = p;
  }
  for (void* p : v) kmem_cache_free(s, p);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, BulkAllocAndFree) {
  kmem_cache_t* s = kmem_cache_create("bulk", 48, 16, 0, nullptr);
  std::vector<void*> p(5000);
  ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, p.size(), p.data()), 5000);
  std::set<void*> uniq(p.begin(), p.end());
  EXPECT_EQ(uniq.size(), p.size());
  for (void* q : p) {
    EXPECT_TRUE(aligned(q, 16));
    std::memset(q, 1, 48);
  }
  EXPECT_EQ(kmem_cache_get_info(s).active_objs, 5000u);
  kmem_cache_free_bulk(s, p.size(), p.data());
  // Mixed: single allocations then bulk, zeroed.
  void* one = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL | __GFP_ZERO, 300, p.data()), 300);
  for (int i = 0; i < 300; ++i)
    for (int b = 0; b < 48; ++b) ASSERT_EQ(static_cast<unsigned char*>(p[i])[b], 0);
  kmem_cache_free_bulk(s, 300, p.data());
  kmem_cache_free(s, one);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, ShrinkReturnsMemoryToTheOs) {
  kmem_cache_t* s = kmem_cache_create("shrink", 64, 0, 0, nullptr);
  kmem_cache_set_tunables(s, {.max_empty_slabs = 1000, .depot_max_full = 1000});  // keep all until shrink
  const std::size_t mapped0 = kmem_mapped_bytes();
  const std::size_t rss0 = rss_bytes();
  constexpr std::size_t n = 200000;  // 12.8 MB of objects
  std::vector<void*> v(n);
  for (auto& p : v) {
    p = kmem_cache_alloc(s, GFP_KERNEL);
    std::memset(p, 0x5a, 64);
  }
  const std::size_t mapped1 = kmem_cache_get_info(s).mapped_bytes;
  EXPECT_GE(mapped1, n * 64);
  EXPECT_LE(mapped1, n * 64 + n * 64 / 8);  // under 12.5% overhead at 64 B
  EXPECT_GE(rss_bytes(), rss0 + n * 64 / 2);
  for (void* p : v) kmem_cache_free(s, p);
  std::vector<void*>().swap(v);  // the pointer array itself is 1.6 MB of RSS
  // Freed objects stay cached (depot and empty slabs) until shrink.
  EXPECT_EQ(kmem_cache_get_info(s).mapped_bytes, mapped1);
  const std::size_t released = kmem_cache_shrink(s);
  EXPECT_GE(released, n * 64);
  EXPECT_EQ(kmem_cache_get_info(s).num_slabs, 0u);
  EXPECT_EQ(kmem_cache_get_info(s).mapped_bytes, 0u);
  // What stays mapped is the magazine caches' few slabs (this thread's two magazines and
  // their empty-slab allowance).
  EXPECT_LE(kmem_mapped_bytes(), mapped0 + 4 * detail::slab_min_size);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine keeps the freed pointer array resident
  EXPECT_LT(rss_bytes(), rss0 + (std::size_t{1} << 20)) << mapped0 << " " << kmem_mapped_bytes();
#endif
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, EmptySlabLimitUnmapsWithoutShrink) {
  kmem_cache_t* s = kmem_cache_create("limit", 512, 0, 0, nullptr);
  kmem_cache_set_tunables(s, {.max_empty_slabs = 1, .depot_max_full = 0});
  const std::size_t mapped0 = kmem_mapped_bytes();
  std::vector<void*> v(20000);
  for (auto& p : v) p = kmem_cache_alloc(s, GFP_KERNEL);
  for (void* p : v) kmem_cache_free(s, p);
  const slabinfo info = kmem_cache_get_info(s);
  EXPECT_LE(info.empty_slabs, 1u);
  // At most the limit's slab plus those holding this thread's two magazines stay mapped.
  EXPECT_LE(info.mapped_bytes, 3 * info.pagesperslab * 4096);
  EXPECT_LE(kmem_mapped_bytes() - mapped0, 3 * info.pagesperslab * 4096 + 4 * detail::slab_min_size);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, DestroyReportsObjectsStillAllocated) {
  kmem_cache_t* s = kmem_cache_create("leaky", 32, 0, 0, nullptr);
  void* a = kmem_cache_alloc(s, GFP_KERNEL);
  void* b = kmem_cache_alloc(s, GFP_KERNEL);
  kmem_cache_free(s, b);
  testing::internal::CaptureStderr();
  EXPECT_EQ(kmem_cache_destroy(s), 1u);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("kmem_cache_destroy leaky: Slab cache still has objects"), std::string::npos) << err;
  std::memset(a, 0, 32);  // the leaked slab stays mapped
}

TEST(Slab, DestroyReturnsEveryPageAndThreadMagazines) {
  // Warm the magazine caches, whose slabs outlive any one cache (they are shared).
  kmem_cache_t* warm = kmem_cache_create("warm", 128, 0, 0, nullptr);
  kmem_cache_free(warm, kmem_cache_alloc(warm, GFP_KERNEL));
  const std::size_t mapped0 = kmem_mapped_bytes();
  kmem_cache_t* s = kmem_cache_create("gone", 128, 0, 0, nullptr);
  std::vector<void*> v(10000);
  for (auto& p : v) p = kmem_cache_alloc(s, GFP_KERNEL);
  // Another thread frees half: those land in its magazines and go back when it exits.
  std::thread([&] {
    for (std::size_t i = 0; i < v.size() / 2; ++i) kmem_cache_free(s, v[i]);
  }).join();
  for (std::size_t i = v.size() / 2; i < v.size(); ++i) kmem_cache_free(s, v[i]);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
  // Every slab of `s` is gone; the magazine caches may keep their empty-slab allowance.
  EXPECT_LE(kmem_mapped_bytes(), mapped0 + 4 * detail::slab_min_size);
  EXPECT_EQ(kmem_cache_destroy(warm), 0u);
}

TEST(Slab, AtomicAllocationFailsInsteadOfWaiting) {
  kmem_cache_t* s = kmem_cache_create("atomic", 64, 0, 0, nullptr);
  void* r = reinterpret_cast<void*>(1);
  {
    // A thread with no magazines must go to the depot and the slabs: both locks are busy.
    std::lock_guard<std::mutex> d(s->depot_lock);
    std::lock_guard<std::mutex> n(s->node_lock);
    std::thread([&] { r = kmem_cache_alloc(s, GFP_ATOMIC); }).join();
  }
  EXPECT_EQ(r, nullptr);
  std::thread([&] {
    r = kmem_cache_alloc(s, GFP_ATOMIC);  // locks free: succeeds
    kmem_cache_free(s, r);
  }).join();
  EXPECT_NE(r, nullptr);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, AtomicBulkIsAllOrNothingAndKeepsTheMagazines) {
  kmem_cache_t* s = kmem_cache_create("atomic_bulk", 64, 0, 0, nullptr);
  std::atomic<int> phase{0};
  int failed = -1, from_magazines = -1;
  std::thread t([&] {
    kmem_cache_free(s, kmem_cache_alloc(s, GFP_KERNEL));  // a refill leaves a full magazine
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    void* p[1000];
    failed = kmem_cache_alloc_bulk(s, GFP_ATOMIC, 1000, p);         // needs the slabs: locks busy
    from_magazines = kmem_cache_alloc_bulk(s, GFP_ATOMIC, 100, p);  // magazines alone suffice
    if (from_magazines == 100) kmem_cache_free_bulk(s, 100, p);
    phase = 3;  // the locks must be free before this thread exits: its flush takes them
  });
  while (phase.load() != 1) std::this_thread::yield();
  {
    std::lock_guard<std::mutex> d(s->depot_lock);
    std::lock_guard<std::mutex> n(s->node_lock);
    phase = 2;
    while (phase.load() != 3) std::this_thread::yield();
  }
  t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(from_magazines, 100);  // the failed call put its objects back
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(Slab, SlabinfoListsCaches) {
  kmem_cache_t* s = kmem_cache_create("visible_cache", 96, 0, 0, nullptr);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  char buf[8192] = {};
  std::FILE* f = fmemopen(buf, sizeof buf - 1, "w");
  slabinfo_show(f);
  std::fclose(f);
  const std::string out(buf);
  EXPECT_NE(out.find("slabinfo - version: 2.1"), std::string::npos);
  EXPECT_NE(out.find("visible_cache"), std::string::npos) << out;
  kmem_cache_free(s, p);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

struct point {
  int x, y;
  std::string label;
  point(int a, int b, std::string l) : x(a), y(b), label(std::move(l)) {}
};

TEST(Slab, TypedFront) {
  kmem_cache<point> cache("points");
  std::vector<point*> v;
  for (int i = 0; i < 1000; ++i) {
    point* p = cache.create(i, -i, "p" + std::to_string(i));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, alignof(point)));
    v.push_back(p);
  }
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(v[i]->label, "p" + std::to_string(i));
  // active_objs also counts objects cached in this thread's two magazines.
  const slabinfo info = cache.info();
  EXPECT_GE(info.active_objs, 1000u);
  EXPECT_LE(info.active_objs, 1000u + 2 * info.magazine_rounds);
  for (point* p : v) cache.destroy(p);
  cache.destroy(nullptr);
}

}  // namespace

namespace {

struct picky {
  explicit picky(int v) : value(v) {
    if (v < 0) throw std::invalid_argument("negative");
  }
  int value;
};

TEST(Slab, TypedFrontFreesWhenTheConstructorThrows) {
  kmem_cache<picky> cache("picky");
  picky* ok = cache.create(1);
  EXPECT_THROW((void)cache.create(-1), std::invalid_argument);
  cache.destroy(ok);
  cache.shrink();
  EXPECT_EQ(cache.info().active_objs, 0u);  // the failed object went back too
  EXPECT_EQ(kmem_cache_size(cache.raw()), sizeof(picky));
}

}  // namespace

#if KPRIM_KASAN
namespace {

// Under AddressSanitizer every cache, not only the debug ones, reports a use after free and a
// write past the object's end (into its padding) through ASan's shadow memory.
TEST(SlabKasan, UseAfterFreeAndOverflowAreReportedByAsan) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("kasan_uaf", 48, 0, 0, nullptr);
        auto* p = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
        kmem_cache_free(s, p);
        static_cast<volatile char*>(p)[5] = 1;
      },
      "use-after-poison");
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("kasan_overflow", 44, 0, 0, nullptr);
        auto* p = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
        static_cast<volatile char*>(p)[44] = 1;  // padding up to the 48-byte stride
      },
      "AddressSanitizer: (use-after-poison|unknown-crash)");  // a partly addressable granule
}

}  // namespace
#endif
