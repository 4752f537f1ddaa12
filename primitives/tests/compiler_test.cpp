// kprim/compiler.hpp: READ_ONCE/WRITE_ONCE, container_of, likely/unlikely, cpu_relax;
// and the layout helpers of kprim/cache.hpp.
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>
#include <kprim/core.hpp>  // the umbrella compiles on its own

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

namespace {

enum class color : std::uint8_t { red = 1,
                                  green = 2 };
struct pair32 {
  std::uint32_t a, b;
};

TEST(ReadWriteOnce, ScalarsPointersEnums) {
  int i = 5;
  EXPECT_EQ(READ_ONCE(i), 5);
  WRITE_ONCE(i, 7);
  EXPECT_EQ(i, 7);

  const long c = 9;
  EXPECT_EQ(READ_ONCE(c), 9);
  static_assert(std::is_same_v<decltype(kprim::read_once(c)), long>);

  int* p = nullptr;
  WRITE_ONCE(p, &i);
  EXPECT_EQ(READ_ONCE(p), &i);

  color col = color::red;
  WRITE_ONCE(col, color::green);
  EXPECT_EQ(READ_ONCE(col), color::green);

  std::uint16_t h = 0xffff;
  WRITE_ONCE(h, 0x1234);
  EXPECT_EQ(READ_ONCE(h), 0x1234);
}

TEST(ReadWriteOnce, SmallTriviallyCopyableStructIsOneAccess) {
  pair32 v{1, 2};
  WRITE_ONCE(v, (pair32{3, 4}));
  pair32 r = READ_ONCE(v);
  EXPECT_EQ(r.a, 3u);
  EXPECT_EQ(r.b, 4u);
}

TEST(ReadWriteOnce, TheCompilerRereadsInALoop) {
  // With a plain read the compiler may hoist the load out of the loop; READ_ONCE re-reads.
  int flag = 0;
  int n = 0;
  while (READ_ONCE(flag) == 0) {
    if (++n == 3) WRITE_ONCE(flag, 1);
  }
  EXPECT_EQ(n, 3);
}

struct outer {
  int a;
  double d;
  struct inner {
    char c;
  } in;
  long tail[2];
};

TEST(ContainerOf, RecoversTheEnclosingObject) {
  outer o{};
  double* pd = &o.d;
  EXPECT_EQ(container_of(pd, outer, d), &o);
  EXPECT_EQ(container_of(&o.in, outer, in), &o);
  EXPECT_EQ(kprim::container_of<&outer::a>(&o.a), &o);
  EXPECT_EQ(kprim::container_of<&outer::tail>(&o.tail), &o);
}

TEST(ContainerOf, PreservesConst) {
  const outer o{};
  auto* r = kprim::container_of<&outer::d>(&o.d);
  static_assert(std::is_same_v<decltype(r), const outer*>);
  EXPECT_EQ(r, &o);
}

TEST(ContainerOf, OffsetMatchesOffsetof) {
  EXPECT_EQ(kprim::offset_of_member(&outer::d), offsetof(outer, d));
  EXPECT_EQ(kprim::offset_of_member(&outer::in), offsetof(outer, in));
  EXPECT_EQ(kprim::offset_of_member(&outer::tail), offsetof(outer, tail));
}

TEST(Hints, LikelyUnlikelyKeepTruthValues) {
  int x = 3;
  EXPECT_TRUE(likely(x == 3));
  EXPECT_FALSE(unlikely(x != 3));
  EXPECT_EQ(likely(x), 1);  // !!(x): normalised to 0/1 as in the kernel
  kprim::cpu_relax();
  kprim::barrier();
}

// ---- layout helpers (kprim/cache.hpp) ----
struct alignas(kprim::cacheline_size) hot_cold {
  int lock;
  int nr_running;
  alignas(kprim::cacheline_size) long clock;
  char cold[100];
};
KPRIM_ASSERT_SAME_CACHELINE(hot_cold, lock, nr_running);
KPRIM_ASSERT_DIFFERENT_CACHELINES(hot_cold, lock, clock);
KPRIM_ASSERT_CACHELINE_ALIGNED_MEMBER(hot_cold, clock);
KPRIM_ASSERT_FITS_CACHELINES(hot_cold, 3);
KPRIM_ASSERT_GROUP_SIZE(hot_cold, lock, nr_running, 8);
static_assert(kprim::is_cacheline_padded_v<hot_cold>);
static_assert(!kprim::is_cacheline_padded_v<outer>);
static_assert(kprim::is_cacheline_padded_v<kprim::cacheline_padded<int>>);
static_assert(kprim::cachelines_spanned(60, 8) == 2);
static_assert(kprim::cachelines_spanned(0, 64) == 1);
static_assert(kprim::cachelines_disjoint(0, 64, 64, 8));
static_assert(!kprim::cachelines_disjoint(0, 65, 64, 8));
static_assert(kprim::cacheline_roundup(65) == 128);
static_assert(L1_CACHE_BYTES == 64);

TEST(Layout, CachelineAlignedMacroAlignsObjects) {
  struct s {
    char a;
    ____cacheline_aligned_in_smp int b;
  };
  static_assert(offsetof(s, b) == kprim::cacheline_size);
  s v{};
  EXPECT_TRUE(kprim::is_cacheline_aligned(&v.b));
}

}  // namespace
