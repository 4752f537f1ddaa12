// kmalloc_test: size classes, natural alignment, ksize, kzalloc/kcalloc, large blocks, frees
// from other threads, and that large blocks go back to the OS at once.
#include <kprim/kmalloc.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

TEST(Kmalloc, ZeroAndNull) {
  void* z = kmalloc(0, GFP_KERNEL);
  EXPECT_EQ(z, ZERO_SIZE_PTR);
  EXPECT_EQ(ksize(z), 0u);
  kfree(z);
  kfree(nullptr);
  EXPECT_EQ(ksize(nullptr), 0u);
}

TEST(Kmalloc, ClassesAreTheNextPowerOfTwoAndNaturallyAligned) {
  for (std::size_t size = 1; size <= KMALLOC_MAX_CACHE_SIZE; size += (size < 300 ? 1 : 97)) {
    auto* p = static_cast<unsigned char*>(kmalloc(size, GFP_KERNEL));
    ASSERT_NE(p, nullptr);
    const std::size_t cls = std::max<std::size_t>(KMALLOC_MIN_SIZE, std::bit_ceil(size));
    EXPECT_EQ(ksize(p), cls) << size;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % std::min<std::size_t>(cls, 4096), 0u) << size;
    std::memset(p, 0xee, ksize(p));  // the whole usable size is writable
    kfree(p);
  }
}

TEST(Kmalloc, DistinctLiveBlocksKeepTheirContents) {
  std::vector<std::pair<unsigned char*, std::size_t>> v;
  for (int i = 0; i < 5000; ++i) {
    const std::size_t size = 1 + (i * 37) % 3000;
    auto* p = static_cast<unsigned char*>(kmalloc(size, GFP_KERNEL));
    std::memset(p, i & 0xff, size);
    v.emplace_back(p, size);
  }
  std::set<unsigned char*> uniq;
  for (int i = 0; i < 5000; ++i) {
    uniq.insert(v[i].first);
    ASSERT_EQ(v[i].first[0], i & 0xff);
    ASSERT_EQ(v[i].first[v[i].second - 1], i & 0xff);
  }
  EXPECT_EQ(uniq.size(), v.size());
  for (auto& [p, n] : v) kfree(p);
}

TEST(Kmalloc, ZeroingVariants) {
  for (int round = 0; round < 2; ++round) {
    std::vector<void*> v;
    for (std::size_t size : {8u, 100u, 1000u, 5000u, 20000u}) {
      auto* p = static_cast<unsigned char*>(kzalloc(size, GFP_KERNEL));
      for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(p[i], 0) << size;
      std::memset(p, 0xff, size);  // dirty it for the next round's recycled block
      v.push_back(p);
      auto* c = static_cast<std::uint32_t*>(kcalloc(size, sizeof(std::uint32_t), GFP_KERNEL));
      for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(c[i], 0u);
      std::memset(c, 0xff, size * sizeof(std::uint32_t));
      v.push_back(c);
    }
    for (void* p : v) kfree(p);
  }
  EXPECT_EQ(kmalloc_array(SIZE_MAX / 2, 4, GFP_KERNEL), nullptr);  // overflow
}

TEST(Kmalloc, LargeBlocksAreMappedAndReturned) {
  const std::size_t mapped0 = kmem_mapped_bytes();
  auto* p = static_cast<unsigned char*>(kmalloc(1 << 20, GFP_KERNEL));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(ksize(p), std::size_t{1} << 20);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
  std::memset(p, 1, 1 << 20);
  EXPECT_GE(kmem_mapped_bytes(), mapped0 + (1 << 20));
  kfree(p);
  EXPECT_EQ(kmem_mapped_bytes(), mapped0);
}

// kmalloc_shrink() reaches every size class: after many 512-byte blocks (several slabs of
// kmalloc-512) are freed on this thread, it unmaps their empty slabs and says how many bytes.
TEST(Kmalloc, ShrinkReturnsEmptySlabsOfEveryClass) {
  std::vector<void*> v;
  for (int i = 0; i < 2000; ++i) v.push_back(kmalloc(512, GFP_KERNEL));  // ~1 MiB: 16 slabs
  void* small = kmalloc(24, GFP_KERNEL);
  ASSERT_NE(small, nullptr);
  const std::size_t mapped_full = kmem_mapped_bytes();
  for (void* p : v) kfree(p);
  kfree(small);
  const std::size_t given = kmalloc_shrink();
  EXPECT_GE(given, 8 * detail::slab_min_size);  // most of the 16 slabs, whatever else ran before
  EXPECT_EQ(given % detail::slab_min_size, 0u);
  EXPECT_LE(kmem_mapped_bytes() + given, mapped_full);
  EXPECT_EQ(kmalloc_shrink(), 0u);  // nothing left to give back
}

TEST(Kmalloc, FreesFromOtherThreads) {
  const unsigned n = std::max(4u, 2 * std::thread::hardware_concurrency());
  std::vector<std::vector<void*>> made(n);
  std::vector<std::thread> th;
  for (unsigned i = 0; i < n; ++i)
    th.emplace_back([&, i] {
      for (int k = 0; k < 5000; ++k) {
        void* p = kmalloc(16 + (k % 500), GFP_KERNEL);
        std::memset(p, static_cast<int>(i), 16);
        made[i].push_back(p);
      }
    });
  for (auto& t : th) t.join();
  th.clear();
  for (unsigned i = 0; i < n; ++i)
    th.emplace_back([&, i] {
      for (void* p : made[(i + 1) % n]) kfree(p);  // someone else's blocks
    });
  for (auto& t : th) t.join();
}

TEST(Kmalloc, AtomicFromManyThreads) {
  std::vector<std::thread> th;
  for (unsigned i = 0; i < 4; ++i)
    th.emplace_back([] {
      for (int k = 0; k < 20000; ++k) {
        void* p = kmalloc(64, GFP_ATOMIC);  // may fail when a lock is busy; never blocks
        if (p != nullptr) kfree(p);
      }
    });
  for (auto& t : th) t.join();
}

}  // namespace
