// Issue 14: lockdep (kprim/lockdep.hpp). Each misuse is a death test matching the kernel's own
// headline; the correct uses beside them run in-process with abort on, so any report from them
// (a false positive) kills the test. Under TSan, two more tests prove that ThreadSanitizer sees
// kprim's locks as mutexes (its race report names the kprim mutex; its deadlock detector sees a
// lock-order inversion on kprim spinlocks). Built where KPRIM_DEBUG_LOCKING is on.
#include <kprim/lockdep.hpp>
#include <kprim/mutex.hpp>
#include <kprim/rcu.hpp>
#include <kprim/rwlock.hpp>
#include <kprim/rwsem.hpp>
#include <kprim/spinlock.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <source_location>
#include <thread>

static_assert(KPRIM_DEBUG_LOCKING == 1, "this test checks the debug layer: build it with KPRIM_DEBUG_LOCKING=1");

namespace {

using namespace kprim;

constexpr const char* kCircular = "WARNING: possible circular locking dependency detected";
constexpr const char* kRecursive = "WARNING: possible recursive locking detected";
constexpr const char* kBadUnlock = "WARNING: bad unlock balance detected!";
constexpr const char* kAny = "(.|\n)*";

class Lockdep : public testing::Test {
 protected:
  void SetUp() override {
    testing::FLAGS_gtest_death_test_style = "threadsafe";
    debug::set_abort_on_report(true);
  }
};

TEST_F(Lockdep, AbbaOnTwoMutexesInOneThreadIsReportedWithBothChains) {
  EXPECT_DEATH(
      {
        mutex a;
        mutex b;
        mutex_lock(&a);
        mutex_lock(&b);  // records a -> b
        mutex_unlock(&b);
        mutex_unlock(&a);
        mutex_lock(&b);
        mutex_lock(&a);  // b -> a closes the cycle: no deadlock happened, still reported
      },
      std::string(kCircular) + kAny + "is trying to acquire lock:\n 0x[0-9a-f]+ \\(mutex" + kAny +
          "already holding lock" + kAny + "the existing dependency chain \\(in reverse order\\) is:" + kAny +
          "-> #0 \\(mutex" + kAny + "acquired at .*lockdep_test.cpp" + kAny + "\\*\\*\\* DEADLOCK \\*\\*\\*" + kAny +
          "1 lock held by thread");
}

TEST_F(Lockdep, AbbaOnTwoSpinlocksInOneThreadIsReported) {
  EXPECT_DEATH(
      {
        spinlock_t a;
        spinlock_t b;
        spin_lock(&a);
        spin_lock(&b);
        spin_unlock(&b);
        spin_unlock(&a);
        spin_lock(&b);
        spin_lock(&a);
      },
      std::string(kCircular) + kAny + "spinlock_t");
}

TEST_F(Lockdep, AbbaAcrossTwoThreadsThatNeverDeadlockedIsReported) {
  EXPECT_DEATH(
      {
        mutex a;
        mutex b;
        std::thread([&] {  // the first thread's order a -> b, finished before the second starts
          mutex_lock(&a);
          mutex_lock(&b);
          mutex_unlock(&b);
          mutex_unlock(&a);
        })
            .join();
        std::thread([&] {
          mutex_lock(&b);
          mutex_lock(&a);  // b -> a, in another thread: the graph is global
          mutex_unlock(&a);
          mutex_unlock(&b);
        }).join();
      },
      std::string(kCircular) + kAny + "by thread [0-9]+ while holding");
}

TEST_F(Lockdep, LongerCycleThroughThreeLocksIsReported) {
  EXPECT_DEATH(
      {
        spinlock_t a;
        spinlock_t b;
        spinlock_t c;
        spin_lock(&a);
        spin_lock(&b);
        spin_unlock(&b);
        spin_unlock(&a);  // a -> b
        spin_lock(&b);
        spin_lock(&c);
        spin_unlock(&c);
        spin_unlock(&b);  // b -> c
        spin_lock(&c);
        spin_lock(&a);  // c -> a: a -> b -> c -> a
      },
      std::string(kCircular) + kAny + "-> #1" + kAny + "-> #0");
}

TEST_F(Lockdep, ClassesAreKeyedByInitSite) {
  // Two instances of each of two structures: the order inverts between different instances,
  // which lockdep still sees, as the kernel's class-level graph does.
  struct inode {
    mutex lock;
    inode() { mutex_init(&lock); }
  };
  struct dentry {
    mutex lock;
    dentry() { mutex_init(&lock); }
  };
  EXPECT_DEATH(
      {
        inode i1;
        inode i2;
        dentry d1;
        dentry d2;
        mutex_lock(&i1.lock);
        mutex_lock(&d1.lock);
        mutex_unlock(&d1.lock);
        mutex_unlock(&i1.lock);
        mutex_lock(&d2.lock);
        mutex_lock(&i2.lock);
      },
      std::string(kCircular) + kAny + "mutex \\(initialised at .*lockdep_test.cpp");
}

TEST_F(Lockdep, DefineSpinlockNamesTheClass) {
  EXPECT_DEATH(
      {
        static DEFINE_SPINLOCK(table_lock);
        static DEFINE_SPINLOCK(list_lock);
        spin_lock(&table_lock);
        spin_lock(&list_lock);
        spin_unlock(&list_lock);
        spin_unlock(&table_lock);
        spin_lock(&list_lock);
        spin_lock(&table_lock);
      },
      std::string(kCircular) + kAny + "table_lock \\(spinlock_t" + kAny + "list_lock");
}

TEST_F(Lockdep, AaOnSpinLockReportsInsteadOfHanging) {
  EXPECT_DEATH(
      {
        spinlock_t s;
        spin_lock(&s);
        spin_lock(&s);  // would spin forever: reported (and aborted) before it waits
      },
      std::string(kRecursive) + kAny + "lock\\(spinlock_t\\);\n  lock\\(spinlock_t\\);" + kAny + "DEADLOCK");
}

TEST_F(Lockdep, AaOnMutexLockReportsInsteadOfHanging) {
  EXPECT_DEATH(
      {
        mutex m;
        mutex_lock(&m);
        mutex_lock(&m);
      },
      std::string(kRecursive) + kAny + "mutex");
}

TEST_F(Lockdep, SecondDownReadOfOneRwsemIsRecursive) {
  EXPECT_DEATH(
      {
        rw_semaphore s;
        down_read(&s);
        down_read(&s);  // a writer queued between the two would deadlock it
      },
      kRecursive);
}

TEST_F(Lockdep, SameSiteClassTakenTwiceIsRecursiveUnlessNested) {
  struct node {
    spinlock_t lock;
    node() { spin_lock_init(&lock); }
  };
  node parent, child;
  EXPECT_DEATH(
      {
        spin_lock(&parent.lock);
        spin_lock(&child.lock);
      },
      std::string(kRecursive) + kAny + "May be due to missing lock nesting notation");
  spin_lock(&parent.lock);  // the nesting notation: silent (a report would abort this process)
  spin_lock_nested(&child.lock, 1);
  spin_unlock(&child.lock);
  spin_unlock(&parent.lock);

  struct dir {
    mutex m;
    dir() { mutex_init(&m); }
  };
  dir d1, d2;
  mutex_lock(&d1.m);
  mutex_lock_nested(&d2.m, 1);
  mutex_unlock(&d2.m);
  mutex_unlock(&d1.m);
}

TEST_F(Lockdep, BadUnlockIsReported) {
  EXPECT_DEATH(
      {
        spinlock_t s;
        spin_unlock(&s);
      },
      std::string(kBadUnlock) + kAny + "lockdep_test.cpp:[0-9]+\nbut there are no more locks to release!");
  EXPECT_DEATH(
      {
        mutex m;
        mutex_lock(&m);
        std::thread([&] { mutex_unlock(&m); }).join();  // not the owner
      },
      kBadUnlock);
}

TEST_F(Lockdep, LockdepAssertHeldFiresWhenNotHeld) {
  mutex m;
  spinlock_t s;
  mutex_lock(&m);
  spin_lock(&s);
  lockdep_assert_held(&m);  // held: silent
  lockdep_assert_held(&s);
  EXPECT_TRUE(lockdep_is_held(&s));
  spin_unlock(&s);
  mutex_unlock(&m);
  EXPECT_FALSE(lockdep_is_held(&m));
  EXPECT_DEATH(lockdep_assert_held(&m), "WARNING: at .*lockdep_test.cpp:[0-9]+ lockdep_assert_held\\(&m\\)");
  EXPECT_DEATH(
      {
        std::thread([&] { mutex_lock(&m); }).join();  // held, but by another thread
        lockdep_assert_held(&m);
      },
      "lockdep_assert_held");
}

TEST_F(Lockdep, LockTakenInHandlerAndWithInterruptsOnIsInconsistent) {
  EXPECT_DEATH(
      {
        spinlock_t s;
        __irq_enter();  // handler context (kprim/irq.hpp brackets handlers so)
        spin_lock(&s);
        spin_unlock(&s);
        __irq_exit();
        spin_lock(&s);  // process context, interrupts on: the handler could interrupt us here
      },
      "WARNING: inconsistent lock state\n-+\ninconsistent \\{IN-HARDIRQ-W\\} -> \\{HARDIRQ-ON-W\\} usage\\." +
          std::string(kAny) + "\\{IN-HARDIRQ-W\\} state was registered at:\n  .*lockdep_test.cpp" + kAny + "<Interrupt>");
  EXPECT_DEATH(
      {
        spinlock_t s;
        spin_lock(&s);
        spin_unlock(&s);
        __irq_enter();
        spin_lock(&s);
      },
      "inconsistent \\{HARDIRQ-ON-W\\} -> \\{IN-HARDIRQ-W\\} usage\\.");
  // With interrupts off outside the handler (spin_lock_irqsave's way) it is consistent.
  spinlock_t s;
  __irq_enter();
  spin_lock(&s);
  spin_unlock(&s);
  __irq_exit();
  debug::tls_context.irqs_off = true;
  spin_lock(&s);
  spin_unlock(&s);
  debug::tls_context.irqs_off = false;
}

TEST_F(Lockdep, RcuDereferenceCheckOutsideAReader) {
  static int value = 1;
  static int* gp = &value;
  rcu_thread reg;
  {
    rcu_read_lock();
    EXPECT_TRUE(rcu_read_lock_held());
    EXPECT_EQ(rcu_dereference_check(gp, false), &value);  // inside a reader: silent
    rcu_read_unlock();
  }
  mutex m;
  mutex_lock(&m);
  EXPECT_EQ(rcu_dereference_check(gp, lockdep_is_held(&m)), &value);  // the update lock held: silent
  mutex_unlock(&m);
#if KPRIM_DEBUG_RCU
  constexpr const char* kSuspicious = "rcu_dereference_check\\(\\) outside a read-side critical section";
#else
  constexpr const char* kSuspicious =
      "WARNING: suspicious RCU usage\n-+\n.*lockdep_test.cpp:[0-9]+ suspicious rcu_dereference_check\\(\\) usage!";
#endif
  EXPECT_DEATH((void)rcu_dereference_check(gp, lockdep_is_held(&m)), kSuspicious);
}

TEST_F(Lockdep, TrylockAddsNoOrder) {
  // a then trylock(b), later b then a: a trylock cannot deadlock, so no a -> b was recorded.
  spinlock_t a;
  spinlock_t b;
  spin_lock(&a);
  ASSERT_TRUE(spin_trylock(&b));
  spin_unlock(&b);
  spin_unlock(&a);
  spin_lock(&b);
  spin_lock(&a);
  spin_unlock(&a);
  spin_unlock(&b);
  mutex m;
  mutex n;
  mutex_lock(&m);
  ASSERT_TRUE(mutex_trylock(&n));
  mutex_unlock(&n);
  mutex_unlock(&m);
  mutex_lock(&n);
  mutex_lock(&m);
  mutex_unlock(&m);
  mutex_unlock(&n);
}

TEST_F(Lockdep, RecursiveReadersAndConsistentOrdersAreSilent) {
  rwlock_t rw;
  read_lock(&rw);
  read_lock(&rw);  // rwlock_t readers are recursive (the kernel's read_lock())
  EXPECT_EQ(preempt_count(), 2u);
  read_unlock(&rw);
  read_unlock(&rw);
  rw_semaphore sem;
  mutex m;
  spinlock_t s;
  for (int i = 0; i < 3; ++i) {  // one order, many times, several lock types
    down_read(&sem);
    mutex_lock(&m);
    write_lock(&rw);
    spin_lock(&s);
    spin_unlock(&s);
    write_unlock(&rw);
    mutex_unlock(&m);
    up_read(&sem);
    down_write(&sem);
    mutex_lock(&m);
    mutex_unlock(&m);
    up_write(&sem);
  }
  EXPECT_EQ(preempt_count(), 0u);
}

TEST_F(Lockdep, LockReusingAFreedLocksAddressStartsAFreshClass) {
  // Two locks made, ordered a -> b, destroyed; two new ones at the same two addresses in the
  // opposite roles. Keyed by address without retirement this would be a false cycle.
  alignas(mutex) unsigned char buf1[sizeof(mutex)], buf2[sizeof(mutex)];
  mutex* a = new (buf1) mutex;
  mutex* b = new (buf2) mutex;
  mutex_lock(a);
  mutex_lock(b);
  mutex_unlock(b);
  mutex_unlock(a);
  std::destroy_at(a);
  std::destroy_at(b);
  a = new (buf2) mutex;
  b = new (buf1) mutex;
  mutex_lock(a);
  mutex_lock(b);
  mutex_unlock(b);
  mutex_unlock(a);
  std::destroy_at(a);
  std::destroy_at(b);
  for (int round = 0; round < 20000; ++round) {  // more locks than classes: ids are recycled
    auto x = std::make_unique<spinlock_t>();
    auto y = std::make_unique<spinlock_t>();
    spinlock_t* first = round % 2 ? x.get() : y.get();
    spinlock_t* second = round % 2 ? y.get() : x.get();
    spin_lock(first);
    spin_lock(second);
    spin_unlock(second);
    spin_unlock(first);
  }
}

// The lockdep hooks on two plain objects (what the lock verbs call), so that under TSan no
// TSan lock-order report joins lockdep's in the child's output.
void take(const void* l) {
  const auto at = std::source_location::current();
  debug::lock_acquired(l, debug::lock_acquire(l, "spinlock_t", 0, 0, at), "spinlock_t", 0, at);
}

TEST_F(Lockdep, ReportedOncePerDependencyWhenNotAborting) {
  EXPECT_EXIT(
      {
        debug::set_abort_on_report(false);
        static int a;
        static int b;
        take(&a);
        take(&b);
        debug::lock_released(&b);
        debug::lock_released(&a);
        for (int i = 0; i < 3; ++i) {
          take(&b);
          take(&a);
          debug::lock_released(&a);
          debug::lock_released(&b);
        }
        std::fprintf(stderr, "continued\n");
        std::exit(0);
      },
      testing::ExitedWithCode(0), std::string(kCircular) + "[^W]*continued");
}

#if KPRIM_TSAN
// ThreadSanitizer sees kprim's locks. The child processes report and exit with TSan's exit code.
bool any_exit(int) { return true; }

TEST_F(Lockdep, TsanRaceReportNamesTheKprimMutex) {
  EXPECT_EXIT(
      {
        static int counter;
        static std::atomic<int> step{0};
        mutex m;
        std::thread t1([&] {
          mutex_lock(&m);
          ++counter;
          mutex_unlock(&m);
          step.store(1, std::memory_order_relaxed);  // relaxed: no happens-before for TSan
        });
        std::thread t2([&] {
          while (step.load(std::memory_order_relaxed) == 0) std::this_thread::yield();
          ++counter;  // the race: this side forgot the mutex
        });
        t1.join();
        t2.join();
        std::exit(0);
      },
      any_exit,
      "WARNING: ThreadSanitizer: data race(.|\n)*\\(mutexes: write M[0-9]+\\)(.|\n)*Mutex M[0-9]+ \\(0x[0-9a-f]+\\) "
      "created at:(.|\n)*kprim::mutex::lock");
}

TEST_F(Lockdep, TsanDeadlockDetectorSeesKprimSpinlocks) {
  EXPECT_EXIT(
      {
        debug::set_abort_on_report(false);  // lockdep reports this too; here TSan's is the point
        spinlock_t a;
        spinlock_t b;
        a.lock();
        b.lock();
        b.unlock();
        a.unlock();
        b.lock();
        a.lock();
        a.unlock();
        b.unlock();
        std::exit(0);
      },
      any_exit, "WARNING: ThreadSanitizer: lock-order-inversion \\(potential deadlock\\)(.|\n)*basic_qspinlock");
}
#endif

}  // namespace
