// irq_test: kprim interrupts (kprim/irq.hpp). Handlers run in hardirq context with errno kept;
// the soft mask defers them to the restore (latched: once per irq per masked interval); nested
// save/restore; spin_lock_irqsave keeps a handler that takes the lock out of the holder; a
// signal storm from other threads never sees a torn irqsave section; the debug layer reports a
// sleep with interrupts off or in a handler.
#include <kprim/irq.hpp>
#include <kprim/mutex.hpp>

#include <gtest/gtest.h>

#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <chrono>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

constexpr unsigned kIrq = SIGUSR2;

struct seen {
  std::atomic<int> runs{0};
  std::atomic<int> in_irq_ok{0};  // handler saw in_kprim_irq() and (debug) in_irq()/in_interrupt()
  std::atomic<int> masked_ok{0};  // handler saw interrupts off
};
seen g_seen;

irqreturn_t record(int irq, void* dev) {
  auto* s = static_cast<seen*>(dev);
  s->runs.fetch_add(1, std::memory_order_relaxed);
  bool ctx = detail::in_kprim_irq() && irq == static_cast<int>(kIrq);
#if KPRIM_DEBUG_LOCKING
  ctx = ctx && in_irq() && in_interrupt() && irqs_disabled() && (preempt_count() & HARDIRQ_MASK) == HARDIRQ_OFFSET;
#endif
  if (ctx) s->in_irq_ok.fetch_add(1, std::memory_order_relaxed);
  if (arch_irqs_disabled()) s->masked_ok.fetch_add(1, std::memory_order_relaxed);
  errno = EIO;  // the trampoline must give the interrupted code its errno back
  return IRQ_HANDLED;
}

/// wait_until() - poll `done` (yielding) for up to 10 s; true once it holds. An unblocked
/// signal to self is delivered before tgkill returns, but ThreadSanitizer queues signals and
/// delivers them at its next interceptor (sched_yield is one), so every test that expects a
/// delivery waits for it rather than assume it happened by the next line.
template <class F>
bool wait_until(F done) {
  for (int i = 0; i < 1000000; ++i) {
    if (done()) return true;
    sched_yield();
  }
  return done();
}

/// Registers `h` on kIrq for one test and frees it after.
struct registered {
  explicit registered(irq_handler_t h, void* dev = &g_seen, unsigned irq = kIrq) : irq_(irq), dev_(dev) {
    EXPECT_EQ(request_irq(irq, h, 0, "irq_test", dev), 0);
  }
  ~registered() { EXPECT_NE(free_irq(irq_, dev_), nullptr); }
  unsigned irq_;
  void* dev_;
};

TEST(Irq, RequestValidatesAndIsExclusive) {
  EXPECT_EQ(request_irq(SIGSEGV, record, 0, "x", nullptr), -EINVAL);
  EXPECT_EQ(request_irq(0, record, 0, "x", nullptr), -EINVAL);
  EXPECT_EQ(request_irq(kIrq, nullptr, 0, "x", nullptr), -EINVAL);
  EXPECT_EQ(request_irq(kIrq, record, 1, "x", nullptr), -EINVAL);
  int dev = 0;
  ASSERT_EQ(request_irq(kIrq, record, 0, "first", &dev), 0);
  EXPECT_EQ(request_irq(kIrq, record, 0, "second", &dev), -EBUSY);
  EXPECT_EQ(free_irq(kIrq, nullptr), nullptr) << "free_irq must match the dev it was requested with";
  EXPECT_STREQ(free_irq(kIrq, &dev), "first");
  EXPECT_EQ(free_irq(kIrq, &dev), nullptr);
}

TEST(Irq, HandlerRunsInHardirqContextAndKeepsErrno) {
  g_seen.runs = 0;
  g_seen.in_irq_ok = 0;
  g_seen.masked_ok = 0;
  registered r(record);
  const unsigned long before = kstat_irqs(kIrq);
  errno = 0;
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([] { return g_seen.runs.load() == 1; }));
  EXPECT_EQ(errno, 0);
  EXPECT_EQ(g_seen.runs.load(), 1);
  EXPECT_EQ(g_seen.in_irq_ok.load(), 1);
  EXPECT_EQ(g_seen.masked_ok.load(), 1) << "handlers run with interrupts off";
  EXPECT_EQ(kstat_irqs(kIrq), before + 1);
  EXPECT_FALSE(detail::in_kprim_irq());
  EXPECT_FALSE(arch_irqs_disabled());
#if KPRIM_DEBUG_LOCKING
  EXPECT_EQ(preempt_count(), 0u);
  EXPECT_FALSE(irqs_disabled());
#endif
}

TEST(Irq, MaskDefersToRestoreLatchedOnce) {
  g_seen.runs = 0;
  g_seen.in_irq_ok = 0;
  registered r(record);
  const unsigned long deferred = kstat_irqs_deferred(kIrq);
  unsigned long flags;
  local_irq_save(flags);
  EXPECT_FALSE(irqs_disabled_flags(flags));
  EXPECT_TRUE(arch_irqs_disabled());
#if KPRIM_DEBUG_LOCKING
  EXPECT_TRUE(irqs_disabled());
#endif
  for (int i = 0; i < 3; ++i) ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([&] { return kstat_irqs_deferred(kIrq) > deferred; }));
  EXPECT_EQ(g_seen.runs.load(), 0) << "a handler ran inside local_irq_save";
  // Three deliveries without ThreadSanitizer; it may coalesce its queued ones, as the OS does
  // for a standard signal that is already pending.
  EXPECT_GE(kstat_irqs_deferred(kIrq), deferred + 1);
  EXPECT_LE(kstat_irqs_deferred(kIrq), deferred + 3);
  errno = 0;
  local_irq_restore(flags);
  EXPECT_EQ(errno, 0) << "the replay must not leak the handler's errno";
  EXPECT_EQ(g_seen.runs.load(), 1) << "three signals while masked latch into one replay";
  EXPECT_EQ(g_seen.in_irq_ok.load(), 1) << "a replayed handler runs in hardirq context too";
  EXPECT_FALSE(arch_irqs_disabled());
  ASSERT_EQ(raise_irq(kIrq), 0);
  EXPECT_TRUE(wait_until([] { return g_seen.runs.load() == 2; }));
}

TEST(Irq, NestedSaveRestoreEnablesOnlyAtTheOutermost) {
  g_seen.runs = 0;
  registered r(record);
  unsigned long outer, inner;
  local_irq_save(outer);
  local_irq_save(inner);
  EXPECT_TRUE(irqs_disabled_flags(inner));
  unsigned long d = kstat_irqs_deferred(kIrq);
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([&] { return kstat_irqs_deferred(kIrq) > d; }));
  local_irq_restore(inner);
  EXPECT_TRUE(arch_irqs_disabled());
  EXPECT_EQ(g_seen.runs.load(), 0) << "the inner restore re-enabled interrupts";
  {
    irq_guard g;  // RAII form, nested
    EXPECT_TRUE(arch_irqs_disabled());
  }
  EXPECT_EQ(g_seen.runs.load(), 0);
  local_irq_restore(outer);
  EXPECT_EQ(g_seen.runs.load(), 1);

  local_irq_disable();
  d = kstat_irqs_deferred(kIrq);
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([&] { return kstat_irqs_deferred(kIrq) > d; }));
  EXPECT_EQ(g_seen.runs.load(), 1);
  local_irq_enable();
  EXPECT_EQ(g_seen.runs.load(), 2);
}

// A handler that takes the lock its thread may hold: with spin_lock_irqsave it never finds it
// held (a spin_lock there would deadlock; trylock counts what would have).
spinlock_t g_lock;
std::atomic<int> g_lock_busy{0}, g_lock_taken{0};
irqreturn_t take_lock(int, void*) {
  if (spin_trylock(&g_lock)) {
    g_lock_taken.fetch_add(1, std::memory_order_relaxed);
    spin_unlock(&g_lock);
  } else {
    g_lock_busy.fetch_add(1, std::memory_order_relaxed);
  }
  return IRQ_HANDLED;
}

TEST(Irq, SpinLockIrqsaveKeepsTheHandlerOut) {
  registered r(take_lock, nullptr);
  g_lock_busy = 0;
  g_lock_taken = 0;
  unsigned long flags;
  spin_lock_irqsave(&g_lock, flags);
  unsigned long d = kstat_irqs_deferred(kIrq);
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([&] { return kstat_irqs_deferred(kIrq) > d; }));
  EXPECT_EQ(g_lock_taken.load() + g_lock_busy.load(), 0);
  spin_unlock_irqrestore(&g_lock, flags);
  EXPECT_EQ(g_lock_taken.load(), 1) << "the handler runs after the unlock, and finds the lock free";
  EXPECT_EQ(g_lock_busy.load(), 0);

  spin_lock_irq(&g_lock);
  d = kstat_irqs_deferred(kIrq);
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([&] { return kstat_irqs_deferred(kIrq) > d; }));
  EXPECT_EQ(g_lock_taken.load(), 1);
  spin_unlock_irq(&g_lock);
  EXPECT_EQ(g_lock_taken.load(), 2);
  EXPECT_EQ(g_lock_busy.load(), 0);

#if !KPRIM_DEBUG_LOCKING
  // Without the irqsave form the handler does interrupt the holder: the test can tell. (With
  // the debug layer this is lockdep's irq-safety report instead: IrqDeathTest below.)
  spin_lock(&g_lock);
  ASSERT_EQ(raise_irq(kIrq), 0);
  spin_unlock(&g_lock);
  EXPECT_TRUE(wait_until([] { return g_lock_busy.load() == 1; }));
#endif
}

// Storm: other threads signal the lockers nonstop; each locker updates a two-word record under
// spin_lock_irqsave that its own handler reads; the handler must never see the record torn
// nor the lock held by its own thread. More threads than cores.
struct alignas(64) torn_record {
  volatile unsigned long a = 0, b = 0;
};
constinit thread_local torn_record* t_record = nullptr;
std::atomic<long> g_storm_runs{0}, g_storm_torn{0}, g_storm_busy{0};
spinlock_t g_storm_locks[8];
constinit thread_local spinlock_t* t_lock = nullptr;

irqreturn_t storm_handler(int, void*) {
  g_storm_runs.fetch_add(1, std::memory_order_relaxed);
  if (t_record == nullptr) return IRQ_NONE;  // the sender thread, or before setup
  if (t_record->a != t_record->b) g_storm_torn.fetch_add(1, std::memory_order_relaxed);
  if (!spin_trylock(t_lock)) {
    g_storm_busy.fetch_add(1, std::memory_order_relaxed);
    return IRQ_HANDLED;
  }
  spin_unlock(t_lock);
  return IRQ_HANDLED;
}

TEST(Irq, SignalStormNeverEntersAnIrqsaveSection) {
  registered r(storm_handler, nullptr);
  constexpr int kLockers = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::vector<pthread_t> ids(kLockers);
  std::vector<std::thread> lockers;
  for (int i = 0; i < kLockers; ++i) {
    lockers.emplace_back([&, i] {
      torn_record rec;
      t_lock = &g_storm_locks[i];
      t_record = &rec;
      ids[i] = pthread_self();
      ready.fetch_add(1);
      for (unsigned long n = 1; !stop.load(std::memory_order_relaxed); ++n) {
        unsigned long flags;
        spin_lock_irqsave(t_lock, flags);
        rec.a = n;
        for (int k = 0; k < 20; ++k) kprim::barrier();  // widen the window
        rec.b = n;
        spin_unlock_irqrestore(t_lock, flags);
      }
      t_record = nullptr;
    });
  }
  while (ready.load() != kLockers) std::this_thread::yield();
  std::thread sender([&] {
    for (int round = 0; round < 20000; ++round) (void)raise_irq_on(ids[round % kLockers], kIrq);
  });
  sender.join();
  stop = true;
  for (auto& t : lockers) t.join();
  synchronize_irq(kIrq);
  EXPECT_GT(g_storm_runs.load(), 0);
  EXPECT_EQ(g_storm_torn.load(), 0) << "a handler saw a half-written irqsave section";
  EXPECT_EQ(g_storm_busy.load(), 0) << "a handler interrupted its own thread's lock holder";
  EXPECT_GT(kstat_irqs_deferred(kIrq), 0u) << "the storm never hit a masked section (test too weak)";
}

TEST(Irq, FreeIrqRestoresThePreviousDisposition) {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(kIrq, &ign, &old), 0);
  g_seen.runs = 0;
  {
    registered r(record);
    ASSERT_EQ(raise_irq(kIrq), 0);
    EXPECT_TRUE(wait_until([] { return g_seen.runs.load() == 1; }));
  }
  ASSERT_EQ(raise_irq(kIrq), 0);  // ignored again: neither runs the handler nor kills us
  for (int i = 0; i < 100; ++i) sched_yield();
  EXPECT_EQ(g_seen.runs.load(), 1);
  struct sigaction now {};
  ASSERT_EQ(sigaction(kIrq, &old, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
}

#if KPRIM_DEBUG_LOCKING
// The debug layer sees irqs_off and handler context: sleeping there is the kernel's report.
TEST(IrqDeathTest, MightSleepWithIrqsOffReports) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        debug::set_abort_on_report(true);
        unsigned long flags;
        local_irq_save(flags);
        might_sleep();
        local_irq_restore(flags);
      },
      "BUG: sleeping function called from invalid context at .*irq_test.cpp:[0-9]+\n"
      "in_atomic\\(\\): 0, irqs_disabled\\(\\): 1");
}

TEST(IrqDeathTest, MutexLockUnderSpinLockIrqsaveReports) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        debug::set_abort_on_report(true);
        static spinlock_t l;
        static kprim::mutex m;
        unsigned long flags;
        spin_lock_irqsave(&l, flags);
        mutex_lock(&m);
      },
      "BUG: sleeping function called from invalid context.*\nin_atomic\\(\\): 1, irqs_disabled\\(\\): 1");
}

// lockdep's irq-safety check against a real handler: a lock taken in a kprim handler, then
// with interrupts on in process context, is the kernel's inconsistent-usage report.
TEST(IrqDeathTest, LockTakenInHandlerAndWithIrqsOnReports) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        debug::set_abort_on_report(true);
        (void)request_irq(kIrq, take_lock, 0, "take_lock", nullptr);
        (void)raise_irq(kIrq);  // IN-HARDIRQ-W
        (void)wait_until([] { return g_lock_taken.load() != 0; });
        spin_lock(&g_lock);  // HARDIRQ-ON-W
      },
      "inconsistent \\{IN-HARDIRQ-W\\} -> \\{HARDIRQ-ON-W\\} usage");
}

[[maybe_unused]] irqreturn_t sleeps(int, void*) {
  might_sleep();
  return IRQ_HANDLED;
}

std::atomic<int> g_sleeps_ran{0};
[[maybe_unused]] irqreturn_t sleeps_counted(int, void*) {
  might_sleep();
  g_sleeps_ran.fetch_add(1);
  return IRQ_HANDLED;
}

#if !KPRIM_TSAN
TEST(IrqDeathTest, MightSleepInARealHandlerReports) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        debug::set_abort_on_report(true);
        (void)request_irq(kIrq, sleeps, 0, "sleeps", nullptr);
        (void)raise_irq(kIrq);
        (void)wait_until([] { return false; });  // the handler's report aborts first
      },
      "BUG: sleeping function called from invalid context.*\nin_atomic\\(\\): 1, irqs_disabled\\(\\): 1.*\n"
      "preempt_count: 10000");
}
#else
// Under ThreadSanitizer an abort() inside a signal handler does not end the process (TSan
// takes over signal delivery), so the report from a real handler is read from stderr instead.
TEST(Irq, MightSleepInARealHandlerReports) {
  debug::set_abort_on_report(false);
  registered r(sleeps_counted, nullptr);
  testing::internal::CaptureStderr();
  ASSERT_EQ(raise_irq(kIrq), 0);
  ASSERT_TRUE(wait_until([] { return g_sleeps_ran.load() == 1; }));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("BUG: sleeping function called from invalid context"), std::string::npos) << err;
  EXPECT_NE(err.find("in_atomic(): 1, irqs_disabled(): 1"), std::string::npos) << err;
  EXPECT_NE(err.find("preempt_count: 10000"), std::string::npos) << err;
}
#endif
#endif

}  // namespace
