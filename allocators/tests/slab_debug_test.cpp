// slab_debug_test: SLAB_POISON and SLAB_RED_ZONE catch use-after-free, overflow, double free
// and foreign pointers with a message naming the cache (death tests), and stay out of the way
// of correct programs. Under AddressSanitizer the allocator poisons free objects and the
// padding after allocated ones (KPRIM_KASAN), so ASan may stop a stray write first, reporting
// use-after-poison (or unknown-crash, in the partly addressable 8-byte granule at an object's
// end): the death tests accept either report.
#include <kprim/slab.hpp>

#include <kprim/testing/stress.hpp>  // death_test_style(): qemu-user cannot re-exec

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace kprim;

class SlabDebug : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style()); }
};

/// The report a death test expects: ours, or ASan's when it sees the stray access first.
std::string caught(const std::string& ours) {
  return KPRIM_KASAN ? "(" + ours + "|AddressSanitizer: (use-after-poison|unknown-crash))" : ours;
}

/// Defeat the optimiser: the stray writes below must happen.
void touch(void* p, std::size_t off, unsigned char v) {
  auto* volatile b = static_cast<unsigned char*>(p);
  b[off] = v;
}

TEST_F(SlabDebug, CorrectUseIsQuiet) {
  for (slab_flags_t f : {SLAB_POISON, SLAB_RED_ZONE, SLAB_POISON | SLAB_RED_ZONE}) {
    kmem_cache_t* s = kmem_cache_create("quiet", 61, 0, f, nullptr);
    std::vector<void*> v;
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 3000; ++i) {
        auto* p = static_cast<unsigned char*>(i % 3 ? kmem_cache_alloc(s, GFP_KERNEL) : kmem_cache_zalloc(s, GFP_KERNEL));
        ASSERT_NE(p, nullptr);
        std::memset(p, 0x11, 61);  // every byte of the object is the user's
        v.push_back(p);
      }
      void* bulk[100];
      ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, 100, bulk), 100);
      kmem_cache_free_bulk(s, 100, bulk);
      for (void* p : v) kmem_cache_free(s, p);
      v.clear();
    }
    EXPECT_EQ(kmem_cache_get_info(s).magazine_rounds, 0u);  // debug caches bypass magazines
    EXPECT_EQ(kmem_cache_destroy(s), 0u);
  }
}

TEST_F(SlabDebug, PoisonFillsFreeObjects) {
  kmem_cache_t* s = kmem_cache_create("poisoned", 40, 0, SLAB_POISON, nullptr);
  auto* p = static_cast<unsigned char*>(kmem_cache_alloc(s, GFP_KERNEL));
  for (int i = 0; i < 39; ++i) EXPECT_EQ(p[i], POISON_FREE);  // poison is left on allocation
  EXPECT_EQ(p[39], POISON_END);
  kmem_cache_free(s, p);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST_F(SlabDebug, UseAfterFreeIsCaughtOnNextAlloc) {
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("uaf_cache", 64, 0, SLAB_POISON, nullptr);
        void* p = kmem_cache_alloc(s, GFP_KERNEL);
        kmem_cache_free(s, p);
        touch(p, 10, 0);                            // write after free
        void* q = kmem_cache_alloc(s, GFP_KERNEL);  // LIFO: the same object comes back
        kmem_cache_free(s, q);
      },
      caught("kmem_cache 'uaf_cache': poison overwritten: use after free"));
}

TEST_F(SlabDebug, OverflowIsCaughtOnFree) {
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("overflow_cache", 60, 0, SLAB_RED_ZONE, nullptr);
        void* p = kmem_cache_alloc(s, GFP_KERNEL);
        touch(p, 60, 0x42);  // one byte past the end
        kmem_cache_free(s, p);
      },
      caught("kmem_cache 'overflow_cache': red zone overwritten: write past the end"));
}

TEST_F(SlabDebug, OverflowIntoStateWordIsCaughtOnFree) {
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("far_overflow", 64, 0, SLAB_RED_ZONE, nullptr);
        void* p = kmem_cache_alloc(s, GFP_KERNEL);
        touch(p, 64 + 3, 0x42);  // no pad after a 64-byte object: straight into the guard word
        kmem_cache_free(s, p);
      },
      caught("kmem_cache 'far_overflow': red zone overwritten"));
}

TEST_F(SlabDebug, DoubleFreeNamesTheCache) {
  for (slab_flags_t f : {SLAB_RED_ZONE, SLAB_POISON}) {
    EXPECT_DEATH(
        {
          kmem_cache_t* s = kmem_cache_create("dentry_cache", 192, 0, f, nullptr);
          void* p = kmem_cache_alloc(s, GFP_KERNEL);
          kmem_cache_free(s, p);
          kmem_cache_free(s, p);
        },
        "BUG kmem_cache 'dentry_cache': double free");
  }
}

TEST_F(SlabDebug, DoubleFreeAfterOtherActivityIsCaught) {
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("inode_cache", 128, 0, SLAB_RED_ZONE, nullptr);
        std::vector<void*> v;
        for (int i = 0; i < 100; ++i) v.push_back(kmem_cache_alloc(s, GFP_KERNEL));
        for (void* p : v) kmem_cache_free(s, p);
        kmem_cache_free(s, v[37]);
      },
      "kmem_cache 'inode_cache': double free");
}

TEST_F(SlabDebug, ForeignPointerIsCaught) {
  EXPECT_DEATH(
      {
        kmem_cache_t* a = kmem_cache_create("cache_a", 64, 0, SLAB_RED_ZONE, nullptr);
        kmem_cache_t* b = kmem_cache_create("cache_b", 64, 0, SLAB_RED_ZONE, nullptr);
        void* p = kmem_cache_alloc(a, GFP_KERNEL);
        kmem_cache_free(b, p);
      },
      "kmem_cache 'cache_b': kmem_cache_free: object does not belong to this cache");
  EXPECT_DEATH(
      {
        kmem_cache_t* a = kmem_cache_create("cache_c", 64, 0, SLAB_RED_ZONE, nullptr);
        auto* p = static_cast<char*>(kmem_cache_alloc(a, GFP_KERNEL));
        kmem_cache_free(a, p + 8);
      },
      "kmem_cache 'cache_c': kmem_cache_free: pointer is not the start of an object");
}

int g_ctor_calls = 0;
void ctor_mark(void* p) {
  *static_cast<std::uint64_t*>(p) = 0xfeedface;
  ++g_ctor_calls;
}

TEST_F(SlabDebug, ConstructorCachesKeepTheirStateUnderRedZone) {
  // SLAB_POISON is ignored with a ctor (it would destroy the constructed state); the red
  // zone still guards the object.
  kmem_cache_t* s = kmem_cache_create("ctor_debug", 24, 0, SLAB_POISON | SLAB_RED_ZONE, ctor_mark);
  for (int i = 0; i < 1000; ++i) {
    auto* p = static_cast<std::uint64_t*>(kmem_cache_alloc(s, GFP_KERNEL));
    EXPECT_EQ(*p, 0xfeedfaceu);
    kmem_cache_free(s, p);
  }
  EXPECT_EQ(static_cast<std::size_t>(g_ctor_calls), kmem_cache_get_info(s).num_objs);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST_F(SlabDebug, PanicFlagAbortsOnBadCreate) {
  EXPECT_DEATH((void)kmem_cache_create("bad_panic", 0, 0, SLAB_PANIC, nullptr),
               "kmem_cache_create: failed to create slab 'bad_panic'");
}

}  // namespace
