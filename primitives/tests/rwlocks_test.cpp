// Behaviour of the reader-writer family: qrwlock (kprim/rwlock.hpp), rw_semaphore
// (kprim/rwsem.hpp) and seqlock_t (kprim/seqlock.hpp): exclusion of writers against everyone,
// sharing among readers, trylock semantics, and seqlock readers never keeping a torn value.
#include <kprim/rwlock.hpp>
#include <kprim/rwsem.hpp>
#include <kprim/seqlock.hpp>

#include "lock_stress.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace {

using kprim::test::protected_state;
using kprim::test::run_threads;
using kprim::test::sanitizer_slowdown;

template <class L>
struct RwLockTest : ::testing::Test {};
using RwLocks = ::testing::Types<kprim::qrwlock, kprim::rw_semaphore>;
TYPED_TEST_SUITE(RwLockTest, RwLocks);

// One writer thread in four. Writers run the non-atomic critical section; readers check,
// under the read lock, that no writer is inside and the pair is consistent. Readers may
// overlap each other (counted, not required: it depends on the scheduler).
TYPED_TEST(RwLockTest, WritersExcludeReadersAndWritersUnderOversubscription) {
  TypeParam lock;
  protected_state st;
  std::atomic<std::uint64_t> reader_violations{0}, writes{0};
  const unsigned threads = kprim::test::oversubscribed_threads();
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

TYPED_TEST(RwLockTest, ReadersShareWritersDoNot) {
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
TYPED_TEST(RwLockTest, BlockedSidesGetInWhenTheOtherLeaves) {
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

TEST(Qrwlock, KernelVerbs) {
  kprim::rwlock_t l;
  kprim::read_lock(&l);
  EXPECT_FALSE(kprim::write_trylock(&l));
  EXPECT_TRUE(kprim::read_trylock(&l));
  kprim::read_unlock(&l);
  kprim::read_unlock(&l);
  kprim::write_lock(&l);
  EXPECT_FALSE(kprim::read_trylock(&l));
  kprim::write_unlock(&l);
  EXPECT_FALSE(l.is_locked());
}

// Readers sleeping behind a writer are all woken when it leaves; a writer waiting behind
// them keeps its turn (the count word ends clean).
TEST(RwSemaphore, SleepingReadersAndWritersAllGetIn) {
  kprim::rw_semaphore s;
  std::atomic<int> readers_in{0}, writers_in{0};
  kprim::down_write(&s);
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      if (i == 2) {
        kprim::down_write(&s);
        writers_in.fetch_add(1);
        kprim::up_write(&s);
      } else {
        kprim::down_read(&s);
        readers_in.fetch_add(1);
        kprim::up_read(&s);
      }
    });
  while (!(s.count_word() & kprim::rw_semaphore::flag_waiters)) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));  // let the rest queue too
  kprim::up_write(&s);
  for (auto& t : ts) t.join();
  EXPECT_EQ(readers_in.load(), 3);
  EXPECT_EQ(writers_in.load(), 1);
  EXPECT_EQ(s.count_word(), 0);
}

// Seqlock: writers keep (x, 2x, ~x) consistent; readers copy the triple out through relaxed
// atomics and must never return a torn copy after read_seqretry() said it was stable.
TEST(Seqlock, ReadersNeverKeepATornValue) {
  kprim::seqlock_t sl;
  std::uint64_t x = 0, y = 0, z = ~std::uint64_t{0};
  std::atomic<std::uint64_t> torn{0}, retries{0}, reads{0};
  const unsigned writer_iters = 100000 / sanitizer_slowdown, reader_iters = 200000 / sanitizer_slowdown;
  const unsigned threads = kprim::test::oversubscribed_threads();
  auto load = [](std::uint64_t& v) { return std::atomic_ref<std::uint64_t>(v).load(std::memory_order_relaxed); };
  auto store = [](std::uint64_t& v, std::uint64_t n) {
    std::atomic_ref<std::uint64_t>(v).store(n, std::memory_order_relaxed);
  };
  run_threads(threads, [&](unsigned t) {
    if (t < 2) {
      for (unsigned i = 0; i < writer_iters; ++i) {
        kprim::write_seqlock(&sl);
        const std::uint64_t n = load(x) + 1;
        store(x, n);
        store(y, 2 * n);
        store(z, ~n);
        kprim::write_sequnlock(&sl);
      }
    } else {
      for (unsigned i = 0; i < reader_iters; ++i) {
        std::uint64_t a, b, c;
        std::uint32_t seq;
        do {
          seq = kprim::read_seqbegin(&sl);
          a = load(x);
          b = load(y);
          c = load(z);
          retries.fetch_add(1, std::memory_order_relaxed);
        } while (kprim::read_seqretry(&sl, seq));
        if (b != 2 * a || c != ~a) torn.fetch_add(1, std::memory_order_relaxed);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(reads.load(), std::uint64_t{threads - 2} * reader_iters);
  EXPECT_EQ(x, 2u * writer_iters);
  EXPECT_EQ(sl.seqcount.sequence.load() % 2, 0u);
}

TEST(Seqcount, SequenceIsOddOnlyInsideAWrite) {
  kprim::seqcount_t s;
  const std::uint32_t start = kprim::read_seqcount_begin(&s);
  EXPECT_FALSE(kprim::read_seqcount_retry(&s, start));
  kprim::write_seqcount_begin(&s);
  EXPECT_EQ(s.sequence.load() % 2, 1u);
  kprim::write_seqcount_end(&s);
  EXPECT_TRUE(kprim::read_seqcount_retry(&s, start));
  EXPECT_EQ(kprim::read_seqcount_begin(&s), start + 2);
}

}  // namespace
