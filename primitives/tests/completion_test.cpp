// Behaviour of kprim::completion (kprim/completion.hpp): complete() releases one waiter per
// call, complete_all() every present and future one until reinit_completion(), timeouts,
// interruptible waits, try_wait_for_completion()/completion_done().
#include <kprim/completion.hpp>

#include "lock_stress.hpp"
#include "sleepwake_test.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using kprim::test::eventually;

TEST(Completion, CompleteReleasesOneWaiterEach) {
  DECLARE_COMPLETION(done);
  constexpr int kWaiters = 6;
  std::atomic<int> passed{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kWaiters; ++i)
    ts.emplace_back([&] {
      kprim::wait_for_completion(&done);
      passed.fetch_add(1);
    });
  eventually([&] { return done.sleepers() == kWaiters; });
  for (int i = 1; i <= kWaiters; ++i) {
    kprim::complete(&done);
    eventually([&] { return passed.load() == i; });
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(passed.load(), i) << "one complete(), one waiter";
  }
  for (auto& t : ts) t.join();
  EXPECT_FALSE(kprim::completion_done(&done));
}

TEST(Completion, CompleteAllReleasesPresentAndFutureUntilReinit) {
  DECLARE_COMPLETION(done);
  const unsigned n = kprim::test::oversubscribed_threads();
  std::atomic<unsigned> passed{0};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i)
    ts.emplace_back([&] {
      kprim::wait_for_completion(&done);
      passed.fetch_add(1);
    });
  eventually([&] { return done.sleepers() > 0; });
  kprim::complete_all(&done);
  for (auto& t : ts) t.join();
  EXPECT_EQ(passed.load(), n);
  for (int i = 0; i < 100; ++i) kprim::wait_for_completion(&done);  // future waiters pass
  EXPECT_TRUE(kprim::try_wait_for_completion(&done));
  EXPECT_TRUE(kprim::completion_done(&done));
  kprim::reinit_completion(&done);
  EXPECT_FALSE(kprim::completion_done(&done));
  EXPECT_FALSE(kprim::try_wait_for_completion(&done));
  EXPECT_EQ(kprim::wait_for_completion_timeout(&done, 1), 0ul) << "blocks again after reinit";
}

TEST(Completion, CountedCompletesAndTryWait) {
  kprim::completion c;
  kprim::init_completion(&c);
  kprim::complete(&c);
  kprim::complete(&c);
  EXPECT_TRUE(kprim::try_wait_for_completion(&c));
  EXPECT_TRUE(kprim::completion_done(&c));
  kprim::wait_for_completion(&c);
  EXPECT_FALSE(kprim::try_wait_for_completion(&c));
}

// Ping-pong under oversubscription: every complete() is consumed exactly once.
TEST(Completion, NoLostCompleteUnderOversubscription) {
  DECLARE_COMPLETION(work);
  const unsigned consumers = kprim::test::oversubscribed_threads();
  const unsigned per = 3000 / kprim::test::sanitizer_slowdown;
  std::atomic<unsigned> consumed{0};
  std::vector<std::thread> ts;
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      for (unsigned i = 0; i < per; ++i) {
        kprim::wait_for_completion(&work);
        consumed.fetch_add(1);
      }
    });
  for (unsigned i = 0; i < consumers * per; ++i) kprim::complete(&work);
  for (auto& t : ts) t.join();
  EXPECT_EQ(consumed.load(), consumers * per);
  EXPECT_FALSE(kprim::completion_done(&work));
}

// Waiters that time out every millisecond race complete(): a timed-out waiter must take a
// unit that arrived (never drop it) and must not consume one it does not report. Every one of
// the kCompletes units is consumed exactly once: a lost unit leaves `consumed` short forever
// (ctest's timeout), a unit consumed twice or left in `done` fails the checks.
TEST(Completion, NoCompleteLostToTimedOutWaiters) {
  DECLARE_COMPLETION(c);
  const unsigned kCompletes = 4000 / kprim::test::sanitizer_slowdown;
  std::atomic<unsigned> consumed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < kprim::test::oversubscribed_threads(); ++t)
    ts.emplace_back([&, t] {
      while (!stop.load()) {
        const bool got = (t % 2) ? kprim::wait_for_completion_timeout(&c, 1) != 0
                                 : kprim::try_wait_for_completion(&c);
        if (got) consumed.fetch_add(1);
      }
    });
  for (unsigned i = 0; i < kCompletes; ++i) {
    kprim::complete(&c);
    if (i % 16 == 0) std::this_thread::yield();
  }
  eventually([&] { return consumed.load() >= kCompletes; });
  stop.store(true);
  for (auto& t : ts) t.join();
  EXPECT_EQ(consumed.load(), kCompletes);
  EXPECT_FALSE(kprim::completion_done(&c));
  EXPECT_EQ(c.sleepers(), 0u) << "every waiter that left unregistered";
}

TEST(Completion, TimeoutHonoured) {
  DECLARE_COMPLETION(c);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(kprim::wait_for_completion_timeout(&c, kprim::msecs_to_jiffies(50)), 0ul);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 5050ms);
  kprim::complete(&c);
  const unsigned long left = kprim::wait_for_completion_timeout(&c, 60 * kprim::HZ);
  EXPECT_GE(left, 1ul);
  EXPECT_LE(left, 60ul * kprim::HZ);
  EXPECT_FALSE(kprim::completion_done(&c));
}

class CompletionSignal : public ::testing::TestWithParam<bool> {};

TEST_P(CompletionSignal, InterruptibleReturnsRestartSys) {
  kprim::test::sigusr1_handler h(GetParam());
  DECLARE_COMPLETION(c);
  const long r = kprim::test::interrupt_wait([&] { return kprim::wait_for_completion_interruptible(&c); });
  EXPECT_EQ(r, -kprim::ERESTARTSYS);
  EXPECT_EQ(c.sleepers(), 0u);
  kprim::complete(&c);
  EXPECT_TRUE(kprim::try_wait_for_completion(&c)) << "the complete() was not lost to a gone waiter";
  const long r2 = kprim::test::interrupt_wait(
      [&] { return kprim::wait_for_completion_interruptible_timeout(&c, 60 * kprim::HZ); });
  EXPECT_EQ(r2, -kprim::ERESTARTSYS);
}

INSTANTIATE_TEST_SUITE_P(SaRestart, CompletionSignal, ::testing::Bool(),
                         [](const auto& i) { return i.param ? "with_SA_RESTART" : "without_SA_RESTART"; });

}  // namespace
