// slab_rcu_test: SLAB_TYPESAFE_BY_RCU. A reader inside rcu_read_lock() can still read an object
// that was freed, its slab shrunk, or the object reused, and finds an object of the cache's
// type there; empty slabs are unmapped only after a grace period; destroy with registered
// readers waits for them and leaves nothing mapped. Readers are memb (kprim::slab's flavour).
#include <kprim/rcu.hpp>
#include <kprim/slab.hpp>

#include <kprim/testing/stress.hpp>  // death_test_style(): qemu-user cannot re-exec

#include <gtest/gtest.h>

#if KPRIM_KASAN
#include <sanitizer/asan_interface.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdint>
#include <new>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

constexpr std::uint64_t kMagic = 0x5AFE'0B1E'C7ED'0001;

/// The cache's type. Fields a reuse rewrites are atomics: a reader may race with the new owner.
struct item {
  std::atomic<std::uint64_t> magic{kMagic};  ///< constructed state, never changed
  std::atomic<std::uint64_t> key{0};         ///< identity: 0 while free, rewritten on reuse
  char payload[48] = {};
};

void item_ctor(void* p) { ::new (p) item; }

item* new_item(kmem_cache_t* s, std::uint64_t key, gfp_t gfp = GFP_KERNEL) {
  auto* it = static_cast<item*>(kmem_cache_alloc(s, gfp));
  it->key.store(key, std::memory_order_relaxed);
  return it;
}
void free_item(kmem_cache_t* s, item* it) {
  it->key.store(0, std::memory_order_relaxed);  // back in constructed state
  kmem_cache_free(s, it);
}

/// A one-way handshake between two threads.
struct step {
  std::atomic<int> at{0};
  void go(int n) { at.store(n, std::memory_order_release); }
  void wait(int n) const {
    while (at.load(std::memory_order_acquire) < n) std::this_thread::yield();
  }
};

TEST(SlabRcu, CreateAcceptsTheFlagAndKeepsFreePointerOutsideTheObject) {
  kmem_cache_t* s = kmem_cache_create("rcu_plain", 64, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(kmem_cache_get_info(s).size, 64u);  // room for the free pointer after the object
  // Without a ctor, a free writes nothing into the object: what the user left stays.
  rcu_thread<> reg;
  auto* p = static_cast<std::uint64_t*>(kmem_cache_alloc(s, GFP_KERNEL));  // GFP_KERNEL: outside the reader
  rcu_read_lock();
  for (int i = 0; i < 8; ++i) p[i] = kMagic + i;
  kmem_cache_free(s, p);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(p[i], kMagic + i);
#if KPRIM_KASAN
  // A free object stays addressable; the free pointer after it does not.
  EXPECT_EQ(__asan_region_is_poisoned(p, 64), nullptr);
  EXPECT_TRUE(__asan_address_is_poisoned(reinterpret_cast<char*>(p) + 64));
#endif
  rcu_read_unlock();
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

// (1) The reader's object is freed, its slab emptied and shrunk, and the cache allocates again:
// the old memory is still readable and still holds an object of the type, until the reader's
// critical section ends; then the slab goes away.
TEST(SlabRcu, ReaderReadsFreedObjectAcrossShrinkAndReallocation) {
  kmem_cache_t* s = kmem_cache_create("rcu_items", sizeof(item), 0, SLAB_TYPESAFE_BY_RCU, item_ctor);
  ASSERT_NE(s, nullptr);
  kmem_cache_set_tunables(s, {.max_empty_slabs = 0, .depot_max_full = 0});
  const std::size_t objperslab = kmem_cache_get_info(s).objperslab;
  item* published = nullptr;
  step st;
  std::size_t pending_seen = 0;
  bool reused_old_memory = false;
  std::thread updater([&] {
    rcu_thread<> reg;
    std::vector<item*> v;
    for (std::size_t i = 0; i < 3 * objperslab; ++i) v.push_back(new_item(s, i + 1));
    rcu_assign_pointer(published, v[0]);
    st.go(1);
    st.wait(2);  // the reader holds v[0]
    rcu_assign_pointer(published, nullptr);
    for (item* it : v) free_item(s, it);
    kmem_cache_shrink(s);  // every slab is empty: all wait for a grace period
    pending_seen = kmem_cache_get_info(s).rcu_pending_slabs;
    // Reallocate: new slabs, never the ones waiting (they are off the cache's lists).
    const auto old_slab = reinterpret_cast<std::uintptr_t>(v[0]) & ~(detail::slab_min_size - 1);
    for (item*& it : v) {
      it = new_item(s, 1000);
      if ((reinterpret_cast<std::uintptr_t>(it) & ~(detail::slab_min_size - 1)) == old_slab) reused_old_memory = true;
    }
    st.go(3);
    st.wait(4);  // the reader has left its critical section
    for (item* it : v) free_item(s, it);
    kmem_cache_shrink(s);
    rcu_barrier();
  });
  {
    rcu_thread<> reg;
    st.wait(1);
    rcu_read_lock();
    item* it = rcu_dereference(published);
    ASSERT_NE(it, nullptr);
    ASSERT_EQ(it->key.load(std::memory_order_relaxed), 1u);
    st.go(2);
    st.wait(3);
    // Freed, shrunk, the cache reallocated: the memory is mapped (no fault, and ASan stays
    // quiet) and still an item in constructed state: the reader re-validates and sees that
    // it is no longer the object it looked up.
    EXPECT_EQ(it->magic.load(std::memory_order_relaxed), kMagic);
    EXPECT_EQ(it->key.load(std::memory_order_relaxed), 0u);
#if KPRIM_KASAN
    EXPECT_EQ(__asan_region_is_poisoned(it, sizeof(item)), nullptr);
#endif
    rcu_read_unlock();
    st.go(4);
  }
  updater.join();
  EXPECT_GE(pending_seen, 3u);
  EXPECT_FALSE(reused_old_memory);
  const slabinfo info = kmem_cache_get_info(s);
  EXPECT_EQ(info.rcu_pending_slabs, 0u);
  EXPECT_EQ(info.num_slabs, 0u);
  EXPECT_EQ(info.mapped_bytes, 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

// (1, reuse in place) Freed and reallocated at once: the reader finds a valid item with another
// identity. Also with SLAB_POISON | SLAB_RED_ZONE: poisoning would destroy the type, so
// typesafe caches are not poisoned (the kernel's rule); red zones still work.
TEST(SlabRcu, ImmediateReuseKeepsTheTypeEvenInDebugCaches) {
  rcu_thread<> reg;
  for (slab_flags_t debug : {0u, SLAB_POISON, SLAB_POISON | SLAB_RED_ZONE}) {
    kmem_cache_t* s = kmem_cache_create("rcu_reuse", sizeof(item), 0, SLAB_TYPESAFE_BY_RCU | debug, item_ctor);
    ASSERT_NE(s, nullptr);
    for (int round = 0; round < 100; ++round) {
      item* a = new_item(s, 7);
      rcu_read_lock();
      item* seen = a;  // what a reader found before the free
      free_item(s, a);
      EXPECT_EQ(seen->magic.load(std::memory_order_relaxed), kMagic) << debug;  // free, still typed
      item* b = new_item(s, 8, GFP_ATOMIC);                                     // inside a reader: no sleeping allocation (context.hpp)
      ASSERT_NE(b, nullptr);
      if (b == seen) {
        EXPECT_EQ(seen->key.load(std::memory_order_relaxed), 8u);  // reused: another identity
      }
      EXPECT_EQ(seen->magic.load(std::memory_order_relaxed), kMagic) << debug;
      rcu_read_unlock();
      free_item(s, b);
    }
    EXPECT_EQ(kmem_cache_destroy(s), 0u);
  }
}

TEST(SlabRcu, DebugCacheStillCatchesDoubleFree) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  EXPECT_DEATH(
      {
        kmem_cache_t* s = kmem_cache_create("rcu_dbl", sizeof(item), 0, SLAB_TYPESAFE_BY_RCU | SLAB_RED_ZONE, item_ctor);
        void* p = kmem_cache_alloc(s, GFP_KERNEL);
        kmem_cache_free(s, p);
        kmem_cache_free(s, p);
      },
      "kmem_cache 'rcu_dbl': double free");
}

// (2) Empty slabs, from the empty-slab limit and from shrink, stay mapped while a reader is in
// a critical section that began before they emptied, and are unmapped after a grace period.
// The freeing thread is not registered with RCU (the allocator registers it for call_rcu).
TEST(SlabRcu, EmptySlabsAreUnmappedOnlyAfterAGracePeriod) {
  kmem_cache_t* s = kmem_cache_create("rcu_gp", 256, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  ASSERT_NE(s, nullptr);
  kmem_cache_set_tunables(s, {.max_empty_slabs = 1, .depot_max_full = 0});
  std::vector<void*> v(4000);
  for (auto& p : v) p = kmem_cache_alloc(s, GFP_KERNEL);
  const slabinfo full = kmem_cache_get_info(s);
  ASSERT_GE(full.num_slabs, 4u);
  step st;
  std::thread reader([&] {
    rcu_thread<> reg;
    rcu_read_lock();
    st.go(1);
    st.wait(2);
    rcu_read_unlock();
  });
  st.wait(1);
  const std::size_t mapped0 = kmem_mapped_bytes();
  for (void* p : v) kmem_cache_free(s, p);  // past the magazines: the limit path releases
  const slabinfo after_free = kmem_cache_get_info(s);
  EXPECT_GT(after_free.rcu_pending_slabs, 0u);
  const std::size_t shrunk = kmem_cache_shrink(s);
  const slabinfo after_shrink = kmem_cache_get_info(s);
  EXPECT_EQ(after_shrink.num_slabs, 0u);
  EXPECT_EQ(after_shrink.rcu_pending_slabs, full.num_slabs);
  EXPECT_EQ(after_shrink.mapped_bytes, full.mapped_bytes);
  EXPECT_GE(shrunk, full.pagesperslab * 4096);  // at least the slab the limit kept
  // No grace period can end while the reader is inside: nothing was unmapped, however long
  // the callback thread has had.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(kmem_mapped_bytes(), mapped0);
  EXPECT_EQ(kmem_cache_get_info(s).rcu_pending_slabs, full.num_slabs);
  st.go(2);
  reader.join();
  rcu_barrier();  // a grace period, then every queued release has run
  EXPECT_EQ(kmem_cache_get_info(s).rcu_pending_slabs, 0u);
  EXPECT_EQ(kmem_cache_get_info(s).mapped_bytes, 0u);
  EXPECT_EQ(kmem_mapped_bytes(), mapped0 - full.mapped_bytes);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

// A thread that never registered with RCU exits holding objects in its magazines: the flush at
// its exit empties slabs past the limit, which go to call_rcu() from its thread-exit path.
TEST(SlabRcu, ThreadExitFlushDefersSlabsFromAnUnregisteredThread) {
  kmem_cache_t* s = kmem_cache_create("rcu_exit", 512, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  ASSERT_NE(s, nullptr);
  kmem_cache_set_tunables(s, {.max_empty_slabs = 0, .depot_max_full = 0});
  std::vector<void*> v(1000);
  rcu_thread<> reg;
  rcu_read_lock();  // holds back every grace period: the releases stay pending
  std::thread([&] {
    for (auto& p : v) p = kmem_cache_alloc(s, GFP_KERNEL);  // refills leave some in magazines
  }).join();
  std::thread([&] {
    for (void* p : v) kmem_cache_free(s, p);  // the last ones stay in this thread's magazines
  }).join();
  const slabinfo info = kmem_cache_get_info(s);
  EXPECT_EQ(info.num_slabs, 0u);
  EXPECT_GT(info.rcu_pending_slabs, 0u);
  EXPECT_EQ(info.mapped_bytes, info.rcu_pending_slabs * info.pagesperslab * 4096);
  rcu_read_unlock();
  rcu_barrier();
  EXPECT_EQ(kmem_cache_get_info(s).mapped_bytes, 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

// (3) Readers stay registered and keep reading through an RCU-protected table while the updater
// replaces entries (freeing the old ones at once: the type is safe) and finally destroys the
// cache. Destroy waits for the readers' current sections and leaves no slab mapped.
TEST(SlabRcu, DestroyWithRegisteredReadersLeavesNothingMapped) {
  // Warm the magazine caches (shared by every cache; they keep a few slabs).
  kmem_cache_t* warm = kmem_cache_create("rcu_warm", sizeof(item), 0, 0, nullptr);
  kmem_cache_free(warm, kmem_cache_alloc(warm, GFP_KERNEL));
  const std::size_t mapped0 = kmem_mapped_bytes();
  kmem_cache_t* s = kmem_cache_create("rcu_table", sizeof(item), 0, SLAB_TYPESAFE_BY_RCU, item_ctor);
  ASSERT_NE(s, nullptr);
  kmem_cache_set_tunables(s, {.max_empty_slabs = 0, .depot_max_full = 1});
  constexpr std::size_t slots = 64;
  item* table[slots] = {};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0}, stale{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      rcu_thread<> reg;
      while (!stop.load(std::memory_order_relaxed)) {
        std::uint64_t n = 0;
        rcu_read_guard g;
        for (std::size_t i = 0; i < slots; ++i) {
          item* it = rcu_dereference(table[(i + r) % slots]);
          if (it == nullptr) continue;
          if (it->magic.load(std::memory_order_relaxed) != kMagic) bad.fetch_add(1);
          // Keys of slot i are i + slots*k: anything else means the item was reused meanwhile.
          const std::uint64_t key = it->key.load(std::memory_order_relaxed);
          if (key % slots != (i + r) % slots) stale.fetch_add(1, std::memory_order_relaxed);
          ++n;
        }
        reads.fetch_add(n, std::memory_order_relaxed);
      }
    });
  }
  // Every 50 rounds the updater waits for the readers to have read something since the last
  // wait (on 2 cores a sanitizer build may otherwise finish before they run at all).
  std::uint64_t reads_seen = 0;
  auto wait_for_readers = [&] {
    while (reads.load(std::memory_order_relaxed) == reads_seen) std::this_thread::yield();
    reads_seen = reads.load(std::memory_order_relaxed);
  };
  for (std::uint64_t round = 0; round < 300; ++round) {
    if (round % 50 == 1) wait_for_readers();
    for (std::size_t i = 0; i < slots; ++i) {
      item* fresh = new_item(s, i + slots * (round + 1));
      item* old = table[i];
      rcu_assign_pointer(table[i], fresh);
      if (old != nullptr) free_item(s, old);  // no grace period: SLAB_TYPESAFE_BY_RCU
    }
    if (round % 50 == 49) kmem_cache_shrink(s);
  }
  for (std::size_t i = 0; i < slots; ++i) {
    item* old = table[i];
    rcu_assign_pointer(table[i], nullptr);
    free_item(s, old);
  }
  EXPECT_EQ(kmem_cache_destroy(s), 0u);  // readers still running and registered
  EXPECT_LE(kmem_mapped_bytes(), mapped0 + 4 * detail::slab_min_size);
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  std::printf("reads %llu, reused under a reader %llu\n", static_cast<unsigned long long>(reads.load()),
              static_cast<unsigned long long>(stale.load()));
  EXPECT_EQ(kmem_cache_destroy(warm), 0u);
}

}  // namespace
