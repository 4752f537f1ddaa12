// Behaviour of rw_semaphore (kprim/rwsem.hpp, primitives/src/rwsem.cpp): the shared
// reader-writer contract (rw_contract.hpp), batch wake of sleeping readers, and the slow-path
// states a plain lock/unlock test never reaches: NONSPINNABLE (a writer gave up spinning on
// readers), HANDOFF (a waiter waited past RWSEM_WAIT_TIMEOUT, 4 ms, and stops lock stealing)
// and READ_FAIL (the reader count overflowed into bit 63). Part of test_rwlocks.
#include <kprim/rwsem.hpp>

#include "rw_contract.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace kprim {
/// Friend of rw_semaphore (rwsem.hpp): the owner word, and count words that would take 2^55
/// readers to reach. Defined here only.
struct rwsem_test_access {
  static std::uintptr_t owner(const rw_semaphore& s) { return s.owner_.load(std::memory_order_relaxed); }
  static void set_count(rw_semaphore& s, std::int64_t v) { s.count_.store(v, std::memory_order_relaxed); }
  static void set_count_bits(rw_semaphore& s, std::int64_t bits) { s.count_.fetch_or(bits, std::memory_order_relaxed); }
  static void clear_count_bits(rw_semaphore& s, std::int64_t bits) {
    s.count_.fetch_and(~bits, std::memory_order_relaxed);
  }
  static void set_owner_bits(rw_semaphore& s, std::uintptr_t bits) { s.owner_.fetch_or(bits, std::memory_order_relaxed); }
};
}  // namespace kprim

namespace kprim::test {
using RwSemaphores = ::testing::Types<kprim::rw_semaphore>;
INSTANTIATE_TYPED_TEST_SUITE_P(RwSemaphore, RwLockContract, RwSemaphores);
}  // namespace kprim::test

namespace {

using access = kprim::rwsem_test_access;
using sem = kprim::rw_semaphore;

/// eventually() - poll `pred` until it holds; false after 10 s. A hang guard for states
/// another thread reaches in its own time (not a timing: the states are certain to come).
template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

bool has_waiters(const sem& s) { return (s.count_word() & sem::flag_waiters) != 0; }

/// writer_thread() / reader_thread() - a thread that takes `s` once, sets `in` while holding
/// it, and leaves.
std::thread writer_thread(sem& s, std::atomic<bool>& in) {
  return std::thread([&s, &in] {
    kprim::down_write(&s);
    in = true;
    kprim::up_write(&s);
  });
}
std::thread reader_thread(sem& s, std::atomic<bool>& in) {
  return std::thread([&s, &in] {
    kprim::down_read(&s);
    in = true;
    kprim::up_read(&s);
  });
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

// NONSPINNABLE: a writer finding the semaphore reader-owned spins its budget
// (optimistic_spin_limit) in the hope the readers leave, then marks the owner word
// NONSPINNABLE (so later writers queue at once) and sleeps. The last reader out clears it
// before waking the writer.
TEST(RwSemaphore, WriterThatGivesUpOnReadersMarksItNonspinnable) {
  sem s;
  std::atomic<bool> writer_in{false};
  kprim::down_read(&s);
  ASSERT_EQ(access::owner(s) & sem::owner_nonspinnable, 0u);
  std::thread w = writer_thread(s, writer_in);
  ASSERT_TRUE(eventually([&] { return has_waiters(s); }));
  EXPECT_TRUE(eventually([&] { return (access::owner(s) & sem::owner_nonspinnable) != 0; }));
  EXPECT_NE(access::owner(s) & sem::owner_reader_owned, 0u);
  EXPECT_FALSE(writer_in.load());
  kprim::up_read(&s);
  EXPECT_EQ(access::owner(s) & sem::owner_nonspinnable, 0u);
  w.join();
  EXPECT_TRUE(writer_in.load());
  EXPECT_EQ(s.count_word(), 0);
}

// A writer giving up on a writer owner does not mark it: NONSPINNABLE is about readers,
// whose tasks a spinner cannot watch. The owner word names the holder, flags clear.
TEST(RwSemaphore, WriterOwnerIsNeverMarkedNonspinnable) {
  sem s;
  std::atomic<bool> writer_in{false};
  kprim::down_write(&s);
  std::thread w = writer_thread(s, writer_in);
  ASSERT_TRUE(eventually([&] { return has_waiters(s); }));
  EXPECT_EQ(access::owner(s), reinterpret_cast<std::uintptr_t>(kprim::current()));
  EXPECT_FALSE(writer_in.load());
  kprim::up_write(&s);
  w.join();
  EXPECT_TRUE(writer_in.load());
  EXPECT_EQ(s.count_word(), 0);
}

// A reader joining a NONSPINNABLE reader-owned semaphore records itself as the owner and
// keeps the mark (rwsem_set_reader_owned): the readers are still there.
TEST(RwSemaphore, JoiningReaderKeepsNonspinnable) {
  sem s;
  kprim::down_read(&s);
  access::set_owner_bits(s, sem::owner_nonspinnable);
  std::uintptr_t seen = 0, expected = 0;
  std::thread([&] {
    kprim::down_read(&s);
    seen = access::owner(s);
    expected = reinterpret_cast<std::uintptr_t>(kprim::current()) | sem::owner_reader_owned | sem::owner_nonspinnable;
    kprim::up_read(&s);
  }).join();
  EXPECT_EQ(seen, expected);
  kprim::up_read(&s);
  EXPECT_EQ(s.count_word(), 0);
}

// The last reader out with waiters queued clears NONSPINNABLE (up_read_wake) so the writer it
// wakes may spin again. WAITERS is planted here, with an empty wait list (wake() then wakes
// nobody), so no woken writer's own owner store can hide a missing clear.
TEST(RwSemaphore, LastReaderOutClearsNonspinnable) {
  sem s;
  kprim::down_read(&s);
  access::set_owner_bits(s, sem::owner_nonspinnable);
  access::set_count_bits(s, sem::flag_waiters);
  kprim::up_read(&s);
  EXPECT_EQ(access::owner(s) & sem::owner_nonspinnable, 0u);
  EXPECT_EQ(s.count_word(), sem::flag_waiters);
  access::clear_count_bits(s, sem::flag_waiters);
}

// HANDOFF: a writer queued longer than the wait timeout that wakes and finds the lock taken
// (as when up_write() woke it and a stealer got in first) sets HANDOFF; from then on a
// stealer cannot take the lock again before the waiter has had it. The waiter is woken by
// wake_up_process() while this thread still holds the lock: to the waiter that is the same
// state as a wake-up beaten by a stealer (it re-checks a held lock past its timeout), but
// certain, where a real up_write()/down_write() race is lost to the waiter whenever the
// scheduler runs it on the waker's CPU first (every round of 20 under TSan in CI).
TEST(RwSemaphore, LongWaitingWriterSetsHandoffAndStealingStops) {
  sem s;
  std::atomic<bool> waiter_in{false};
  std::atomic<kprim::task_struct*> waiter_task{nullptr};
  kprim::down_write(&s);
  std::thread w([&] {
    waiter_task = kprim::current();
    kprim::down_write(&s);
    waiter_in = true;
    kprim::up_write(&s);
  });
  // The queued waiter's task: published before it queued, read once it has.
  ASSERT_TRUE(eventually([&] { return has_waiters(s) && waiter_task.load() != nullptr; }));
  // rwsem.cpp's wait_timeout is 4 ms; sleeping 20 ms puts the waiter past it for certain.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(s.count_word() & sem::flag_handoff, 0) << "HANDOFF before the waiter re-checked";
  kprim::wake_up_process(waiter_task.load());  // it re-checks and finds the lock held
  EXPECT_TRUE(eventually([&] { return (s.count_word() & sem::flag_handoff) != 0; }));
  EXPECT_FALSE(waiter_in.load());
  kprim::up_write(&s);
  kprim::down_write(&s);  // may not steal: HANDOFF reserves the lock for the waiter
  EXPECT_TRUE(waiter_in.load());
  kprim::up_write(&s);
  w.join();
  EXPECT_EQ(s.count_word(), 0);
}

// READ_FAIL: 2^55 - 1 readers fill the reader field; the next reader's bias carries into bit
// 63. That reader still gets in (slow path, no writer: reader stealing), but the word is
// negative from then on: down_read_trylock() refuses, and a wake-up grants no queued reader
// (rwsem_mark_wake: too many readers already) until the count is back in range.
TEST(RwSemaphore, ReaderCountOverflowSetsReadFailAndStopsReaderGrants) {
  {
    sem s;
    const std::int64_t full = sem::reader_mask & ~sem::flag_readfail;
    access::set_count(s, full);
    kprim::down_read(&s);
    EXPECT_EQ(s.count_word(), sem::flag_readfail);
    bool took = true;
    std::thread([&] {
      took = kprim::down_read_trylock(&s);
      if (took) kprim::up_read(&s);
    }).join();
    EXPECT_FALSE(took);
    EXPECT_EQ(s.count_word(), sem::flag_readfail);
    kprim::up_read(&s);
    EXPECT_EQ(s.count_word(), full);
    access::set_count(s, 0);  // the 2^55 - 1 imaginary readers leave
  }
  {
    sem s;
    std::atomic<bool> reader_in{false};
    kprim::down_write(&s);
    std::thread r = reader_thread(s, reader_in);
    ASSERT_TRUE(eventually([&] { return has_waiters(s); }));
    access::set_count_bits(s, sem::flag_readfail);
    kprim::up_write(&s);  // wakes the head waiter: a reader, not granted
    EXPECT_EQ(s.count_word(), sem::flag_readfail | sem::flag_waiters);
    EXPECT_FALSE(reader_in.load());
    access::clear_count_bits(s, sem::flag_readfail);
    kprim::down_write(&s);
    kprim::up_write(&s);  // now the reader is granted the lock and woken
    r.join();
    EXPECT_TRUE(reader_in.load());
    EXPECT_EQ(s.count_word(), 0);
  }
}

}  // namespace
