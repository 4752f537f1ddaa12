// The contract every reader-writer lock of kprim keeps, as a gtest type-parameterized suite:
// writers exclude everyone, readers share, trylock says which, and a blocked side gets in
// when the other leaves. Instantiated per lock by rwlock_test.cpp (qrwlock) and
// rwsem_test.cpp (rw_semaphore); all three files build test_rwlocks.
#pragma once

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace kprim::test {

template <class L>
struct RwLockContract : ::testing::Test {};
TYPED_TEST_SUITE_P(RwLockContract);

// One writer thread in four. Writers run the non-atomic critical section; readers check,
// under the read lock, that no writer is inside and the pair is consistent. Readers may
// overlap each other (counted, not required: it depends on the scheduler).
TYPED_TEST_P(RwLockContract, WritersExcludeReadersAndWritersUnderOversubscription) {
  TypeParam lock;
  protected_state st;
  std::atomic<std::uint64_t> reader_violations{0}, writes{0};
  const unsigned threads = oversubscribed_threads();
  const unsigned iters = 100000 / sanitizer_slowdown;
  run_threads(threads, [&](unsigned t) {
    for (unsigned i = 0; i < iters; ++i) {
      if (t % 4 == 0) {
        std::unique_lock g(lock);
        st.critical_section();
        writes.fetch_add(1, std::memory_order_relaxed);
      } else {
        std::shared_lock g(lock);
        if (st.inside != 0 || st.a != st.b) reader_violations.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  EXPECT_EQ(st.violations.load(), 0u);
  EXPECT_EQ(reader_violations.load(), 0u);
  EXPECT_EQ(st.count, writes.load());
  EXPECT_FALSE(lock.is_locked());
}

TYPED_TEST_P(RwLockContract, ReadersShareWritersDoNot) {
  TypeParam lock;
  ASSERT_TRUE(lock.try_lock_shared());
  bool shared = false, exclusive = true;
  std::thread([&] {
    shared = lock.try_lock_shared();
    if (shared) lock.unlock_shared();
    exclusive = lock.try_lock();
  }).join();
  EXPECT_TRUE(shared);
  EXPECT_FALSE(exclusive);
  lock.unlock_shared();
  EXPECT_FALSE(lock.is_locked());

  ASSERT_TRUE(lock.try_lock());
  std::thread([&] {
    shared = lock.try_lock_shared();
    exclusive = lock.try_lock();
  }).join();
  EXPECT_FALSE(shared);
  EXPECT_FALSE(exclusive);
  lock.unlock();
  EXPECT_FALSE(lock.is_locked());
}

// A reader blocked behind a writer gets in once the writer leaves, and so does a writer
// blocked behind readers.
TYPED_TEST_P(RwLockContract, BlockedSidesGetInWhenTheOtherLeaves) {
  TypeParam lock;
  std::atomic<int> stage{0};
  lock.lock();
  std::thread reader([&] {
    std::shared_lock g(lock);
    stage = 1;
  });
  std::this_thread::yield();
  EXPECT_EQ(stage.load(), 0);
  lock.unlock();
  reader.join();
  EXPECT_EQ(stage.load(), 1);

  lock.lock_shared();
  std::thread writer([&] {
    std::unique_lock g(lock);
    stage = 2;
  });
  std::this_thread::yield();
  EXPECT_EQ(stage.load(), 1);
  lock.unlock_shared();
  writer.join();
  EXPECT_EQ(stage.load(), 2);
  EXPECT_FALSE(lock.is_locked());
}

REGISTER_TYPED_TEST_SUITE_P(RwLockContract, WritersExcludeReadersAndWritersUnderOversubscription,
                            ReadersShareWritersDoNot, BlockedSidesGetInWhenTheOtherLeaves);

}  // namespace kprim::test
