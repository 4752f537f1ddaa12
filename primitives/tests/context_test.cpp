// Issue 14: the kernel's context rules (kprim/context.hpp). Each misuse is a death test that
// matches the kernel's own headline; the correct uses beside them must stay silent. Built with
// KPRIM_DEBUG_LOCKING=1 whatever the build's option (the layer is header-only).
#include <kprim/context.hpp>
#include <kprim/kmalloc.hpp>
#include <kprim/mutex.hpp>
#include <kprim/rcu.hpp>
#include <kprim/rwsem.hpp>
#include <kprim/slab.hpp>
#include <kprim/spinlock.hpp>

#include <kprim/testing/stress.hpp>  // death_test_style(): qemu-user cannot re-exec

#include <gtest/gtest.h>

#include <thread>

static_assert(KPRIM_DEBUG_LOCKING == 1, "this test checks the debug layer: build it with KPRIM_DEBUG_LOCKING=1");

namespace {

constexpr const char* kHeadline = "BUG: sleeping function called from invalid context at .*mutex.hpp:[0-9]+";

class Context : public testing::Test {
 protected:
  void SetUp() override {
    testing::FLAGS_gtest_death_test_style = kprim::test::death_test_style();
    kprim::debug::set_abort_on_report(true);
  }
};

TEST_F(Context, PreemptCountFollowsSpinlocksAndPreemptDisable) {
  kprim::spinlock_t a, b;
  EXPECT_FALSE(kprim::in_atomic());
  kprim::spin_lock(&a);
  EXPECT_EQ(kprim::preempt_count(), 1u);
  kprim::spin_lock(&b);
  EXPECT_EQ(kprim::preempt_count(), 2u);
  kprim::spin_unlock(&a);  // out of order
  EXPECT_EQ(kprim::preempt_count(), 1u);
  kprim::spin_unlock(&b);
  EXPECT_FALSE(kprim::in_atomic());
  kprim::preempt_disable();
  EXPECT_TRUE(kprim::in_atomic());
  EXPECT_FALSE(kprim::in_interrupt());
  kprim::preempt_enable();
  kprim::__irq_enter();
  EXPECT_TRUE(kprim::in_interrupt());
  EXPECT_TRUE(kprim::in_irq());
  kprim::__irq_exit();
  EXPECT_EQ(kprim::preempt_count(), 0u);
}

TEST_F(Context, CorrectUsesAreSilent) {
  kprim::spinlock_t s;
  kprim::mutex m;
  kprim::rw_semaphore r;
  kprim::mutex_lock(&m);  // mutex outside any spinlock, spinlock inside a mutex: fine
  kprim::spin_lock(&s);
  kprim::spin_unlock(&s);
  kprim::mutex_unlock(&m);
  kprim::down_write(&r);
  kprim::up_write(&r);
  void* p = kprim::kmalloc(64, kprim::GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  kprim::kfree(p);
  kprim::spin_lock(&s);
  void* q = kprim::kmalloc(64, kprim::GFP_ATOMIC);  // allowed under a spinlock
  kprim::spin_unlock(&s);
  kprim::kfree(q);
}

TEST_F(Context, SpinlockHandedToAnotherThreadIsABadUnlock) {
  kprim::spinlock_t s;
  kprim::spin_lock(&s);
  // Unlocked elsewhere: not in that thread's held stack, so lockdep reports it (the kernel's
  // spinlocks may not be handed over either), and this thread still counts it.
  EXPECT_DEATH(std::thread([&] { kprim::spin_unlock(&s); }).join(), "WARNING: bad unlock balance detected!");
  EXPECT_EQ(kprim::preempt_count(), 1u);
  kprim::spin_unlock(&s);
  EXPECT_EQ(kprim::preempt_count(), 0u);
}

TEST_F(Context, MutexLockUnderSpinLockIsReported) {
  EXPECT_DEATH(
      {
        kprim::spinlock_t s;
        kprim::mutex m;
        kprim::spin_lock(&s);
        kprim::mutex_lock(&m);
      },
      std::string(kHeadline) + "(.|\n)*in_atomic\\(\\): 1, irqs_disabled\\(\\): 0(.|\n)*1 lock held by thread" +
          "(.|\n)*spinlock_t\\), at: .*context_test.cpp");
}

TEST_F(Context, ContendedMutexLockThatSleepsUnderSpinLockIsReported) {
  EXPECT_DEATH(
      {
        kprim::spinlock_t s;
        kprim::mutex m;
        std::thread owner([&] { kprim::mutex_lock(&m); });  // holds m forever
        owner.join();
        kprim::spin_lock(&s);
        kprim::mutex_lock(&m);  // would sleep: reported before it does
      },
      kHeadline);
}

TEST_F(Context, DownWriteAndDownReadUnderSpinLockAreReported) {
  EXPECT_DEATH(
      {
        kprim::spinlock_t s;
        kprim::rw_semaphore r;
        kprim::spin_lock(&s);
        kprim::down_write(&r);
      },
      "BUG: sleeping function called from invalid context at .*rwsem.hpp:[0-9]+");
  EXPECT_DEATH(
      {
        kprim::spinlock_t s;
        kprim::rw_semaphore r;
        kprim::spin_lock(&s);
        kprim::down_read(&r);
      },
      "BUG: sleeping function called from invalid context at .*rwsem.hpp:[0-9]+");
}

TEST_F(Context, KmallocGfpKernelUnderSpinLockIsReported) {
  EXPECT_DEATH(
      {
        kprim::spinlock_t s;
        kprim::spin_lock(&s);
        void* p = kprim::kmalloc(64, kprim::GFP_KERNEL);
        kprim::kfree(p);
      },
      "BUG: sleeping function called from invalid context at .*slab.hpp:[0-9]+");
}

TEST_F(Context, GfpKernelInInterruptContextIsReported) {
  EXPECT_DEATH(
      {
        kprim::__irq_enter();
        void* p = kprim::kmalloc(64, kprim::GFP_KERNEL);
        kprim::kfree(p);
      },
      "BUG: sleeping function called from invalid context at .*slab.hpp:[0-9]+(.|\n)*preempt_count: 10000");
}

TEST_F(Context, MutexLockInsideRcuReaderIsReported) {
  EXPECT_DEATH(
      {
        kprim::rcu_thread reg;
        kprim::mutex m;
        kprim::rcu_read_lock();
        kprim::mutex_lock(&m);
      },
      std::string(kHeadline) + "(.|\n)*RCU nest depth: 1");
}

TEST_F(Context, ReportedOncePerSiteWhenNotAborting) {
  // Without abort the program continues and a second violation at the same site is quiet.
  EXPECT_EXIT(
      {
        kprim::debug::set_abort_on_report(false);
        kprim::spinlock_t s;
        kprim::mutex m;
        for (int i = 0; i < 3; ++i) {
          kprim::spin_lock(&s);
          kprim::mutex_lock(&m);
          kprim::mutex_unlock(&m);
          kprim::spin_unlock(&s);
        }
        std::fprintf(stderr, "continued\n");
        std::exit(0);
      },
      testing::ExitedWithCode(0), std::string(kHeadline) + "[^B]*continued");
}

TEST_F(Context, AbortModeFromEnvironment) {
  EXPECT_DEATH(
      {
        kprim::debug::abort_mode.store(-1);
        setenv("KPRIM_DEBUG_ABORT", "1", 1);
        kprim::preempt_disable();
        kprim::mutex m;
        kprim::mutex_lock(&m);
      },
      kHeadline);
}

}  // namespace
