// Layout contracts of kprim/cache.hpp.
#include <kprim/cache.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

static_assert(sizeof(kprim::cacheline_padded<char>) == kprim::cacheline_size);
static_assert(alignof(kprim::cacheline_padded<std::uint64_t>) == kprim::cacheline_size);
static_assert(sizeof(kprim::cacheline_padded<char[65]>) == 2 * kprim::cacheline_size);

TEST(CachelinePadded, ElementsOfAVectorNeverShareALine) {
  std::vector<kprim::cacheline_padded<std::uint64_t>> v(8);
  for (std::size_t i = 0; i + 1 < v.size(); ++i) {
    auto a = reinterpret_cast<std::uintptr_t>(&*v[i]);
    auto b = reinterpret_cast<std::uintptr_t>(&*v[i + 1]);
    EXPECT_EQ(a % kprim::cacheline_size, 0u);
    EXPECT_NE(a / kprim::cacheline_size, b / kprim::cacheline_size);
  }
}

TEST(CachelinePadded, InPlaceConstructionForwardsArguments) {
  kprim::cacheline_padded<std::vector<int>> p(std::in_place, 3u, 7);
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[2], 7);
}

}  // namespace
