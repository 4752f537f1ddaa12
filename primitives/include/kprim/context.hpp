// kprim/context.hpp - the kernel's context rules: preempt count, in_atomic(), in_interrupt(),
// irqs_disabled(), might_sleep() (CONFIG_DEBUG_ATOMIC_SLEEP's check).
//
// Every path that may sleep calls might_sleep() at its entry, before it takes any lock of its
// own: mutex_lock, down_read/down_write, down()/wait_event*/wait_for_completion* (H5),
// kmem_cache_alloc/kmalloc with GFP_KERNEL, synchronize_rcu. With KPRIM_DEBUG_LOCKING=1 (the
// debug, asan and tsan presets; the CMake option KPRIM_DEBUG_LOCKING elsewhere, defined for the
// whole build so every translation unit agrees) a sleep from atomic context prints the kernel's
// report once per call site and the program goes on, or aborts when KPRIM_DEBUG_ABORT=1 is in
// the environment or debug::set_abort_on_report(true) was called (the death tests do). With
// KPRIM_DEBUG_LOCKING=0 (release) every hook here compiles to nothing: test_codegen checks that
// the release spin_lock/spin_unlock/mutex_lock fast paths have no TLS access and no call.
//
// The preempt count is laid out as the kernel's (include/linux/preempt.h): bits 0-7 preemption
// depth (spin_lock, read_lock/write_lock, preempt_disable), 8-15 softirq, 16-19 hardirq (a kprim
// interrupt handler). rcu_read_lock() keeps its own depth, as PREEMPT_RCU's rcu_preempt_depth().
// The state is header-only (inline constinit thread_local): no library has to be linked, and a
// hook is a few instructions on a thread-local block.
//
// Lock classes, the dependency graph and their reports: kprim/lockdep.hpp.
// Test: primitives/tests/context_test.cpp. Benchmark: bench/bench_locks.cpp (layer on vs off).
#pragma once

#ifndef KPRIM_DEBUG_LOCKING
#define KPRIM_DEBUG_LOCKING 0
#endif

#if KPRIM_DEBUG_LOCKING
#include <execinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <source_location>
#endif

namespace kprim {

inline constexpr unsigned PREEMPT_OFFSET = 1u << 0;
inline constexpr unsigned SOFTIRQ_OFFSET = 1u << 8;
inline constexpr unsigned HARDIRQ_OFFSET = 1u << 16;
inline constexpr unsigned PREEMPT_MASK = 0xffu;
inline constexpr unsigned SOFTIRQ_MASK = 0xffu << 8;
inline constexpr unsigned HARDIRQ_MASK = 0xfu << 16;

#if KPRIM_DEBUG_LOCKING
namespace debug {

/// One lock this thread holds, for the report (the kernel's "N locks held by T/P").
struct held_lock {
  const void* lock;
  const char* kind;  // "spinlock_t", ...
  const char* file;
  unsigned line;
  unsigned cls;    // lockdep class id (kprim/lockdep.hpp); 0: untracked
  unsigned flags;  // lockdep acquire flags (read, trylock, counts in preempt_count)
};

inline constexpr unsigned max_held_locks = 48;  // the kernel's MAX_LOCK_DEPTH

/// The per-thread context: the kernel keeps the first in the thread_info/per-CPU area.
struct thread_context {
  unsigned preempt_count;
  unsigned rcu_depth;
  bool irqs_off;
  unsigned held_depth;         // entries used in held[] (overflow counted, not stored)
  unsigned lockdep_recursion;  // inside lockdep's slow path (a handler that interrupts it skips checks)
  held_lock held[max_held_locks];
};
inline constinit thread_local thread_context tls_context{};

inline std::atomic<int> abort_mode{-1};  // -1: read KPRIM_DEBUG_ABORT on the first report

/// set_abort_on_report() - abort() after printing a report (death tests), or continue (default).
inline void set_abort_on_report(bool on) noexcept { abort_mode.store(on ? 1 : 0, std::memory_order_relaxed); }

/// The sites already reported: once per site, like the kernel's per-callsite WARN_ONCE-style
/// ratelimit in __might_sleep(). A fixed open-addressed table, so the report path never allocates.
inline constexpr unsigned report_sites = 1024;
inline std::atomic<const char*> reported_file[report_sites];
inline std::atomic<unsigned> reported_line[report_sites];

/// first_report_at() - true the first time (file, line) reports; false after.
inline bool first_report_at(const char* file, unsigned line) noexcept {
  unsigned h = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(file) >> 3) * 2654435761u ^ line;
  for (unsigned probe = 0; probe < report_sites; ++probe) {
    const unsigned i = (h + probe) % report_sites;
    const char* f = reported_file[i].load(std::memory_order_acquire);
    if (f == nullptr) {
      const char* expected = nullptr;
      if (reported_file[i].compare_exchange_strong(expected, file, std::memory_order_acq_rel)) {
        reported_line[i].store(line, std::memory_order_release);
        return true;
      }
      f = expected;
    }
    if (f == file && reported_line[i].load(std::memory_order_acquire) == line) return false;
  }
  return true;  // table full: report again rather than stay silent
}

/// report_end() - print the held locks and a backtrace, then abort if configured to.
/// Async-signal-safe output (snprintf into a stack buffer, write(2)), as the report may come
/// from a handler.
[[gnu::cold, gnu::noinline]] inline void report_end() noexcept {
  const thread_context& c = tls_context;
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, "%u lock%s held by thread %ld:\n", c.held_depth,
                        c.held_depth == 1 ? "" : "s", static_cast<long>(gettid()));
  (void)!write(2, buf, static_cast<std::size_t>(n));
  for (unsigned i = 0; i < c.held_depth && i < max_held_locks; ++i) {
    n = std::snprintf(buf, sizeof buf, " #%u: %p (%s), at: %s:%u\n", i, c.held[i].lock, c.held[i].kind,
                      c.held[i].file, c.held[i].line);
    (void)!write(2, buf, static_cast<std::size_t>(n));
  }
  (void)!write(2, "Call Trace:\n", 12);
  void* frames[32];
  backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  int mode = abort_mode.load(std::memory_order_relaxed);
  if (mode < 0) {
    const char* e = std::getenv("KPRIM_DEBUG_ABORT");
    mode = e != nullptr && *e != '\0' && *e != '0';
    abort_mode.store(mode, std::memory_order_relaxed);
  }
  if (mode) std::abort();
}

/// __might_sleep's report: "BUG: sleeping function called from invalid context at FILE:LINE".
[[gnu::cold, gnu::noinline]] inline void report_sleep(const char* file, unsigned line) noexcept {
  if (!first_report_at(file, line)) return;
  const thread_context& c = tls_context;
  char buf[512];
  const int n = std::snprintf(buf, sizeof buf,
                              "BUG: sleeping function called from invalid context at %s:%u\n"
                              "in_atomic(): %d, irqs_disabled(): %d, non_block: 0, pid: %ld, name: kprim\n"
                              "preempt_count: %x, expected: 0\n"
                              "RCU nest depth: %u, expected: 0\n",
                              file, line, c.preempt_count != 0, c.irqs_off, static_cast<long>(gettid()),
                              c.preempt_count, c.rcu_depth);
  (void)!write(2, buf, static_cast<std::size_t>(n));
  report_end();
}

/// might_sleep_at() - the check: no sleeping with preemption or interrupts off, in an
/// interrupt handler, or inside an RCU reader. Cost: one thread-local load and compare.
/// rcu = false: leave the RCU reader depth out (synchronize_rcu(), whose own-flavour check is
/// KPRIM_DEBUG_RCU's: kprim's flavours are separate domains, and one flavour's grace period
/// inside another flavour's reader is legal).
inline void might_sleep_at(const char* file, unsigned line, bool rcu = true) noexcept {
  const thread_context& c = tls_context;
  if (__builtin_expect(c.preempt_count != 0 || c.irqs_off || (rcu && c.rcu_depth != 0), 0)) report_sleep(file, line);
}

// The lock hooks (lock_acquire/lock_acquired/lock_released) and the dependency checks are
// kprim/lockdep.hpp's; this header only keeps the state they update.

}  // namespace debug

#define might_sleep() ::kprim::debug::might_sleep_at(__FILE__, __LINE__)

/// preempt_count() - this thread's count (layout above). Context: any. Cost: one TLS load.
[[nodiscard]] inline unsigned preempt_count() noexcept { return debug::tls_context.preempt_count; }
/// preempt_disable()/preempt_enable() - nest a non-preemptible section (only counted here:
/// user space cannot stop the scheduler, but sleeping inside is reported as in the kernel).
inline void preempt_disable() noexcept { debug::tls_context.preempt_count += PREEMPT_OFFSET; }
inline void preempt_enable() noexcept { debug::tls_context.preempt_count -= PREEMPT_OFFSET; }
/// in_atomic() - any preemption, softirq or hardirq level is set.
[[nodiscard]] inline bool in_atomic() noexcept { return preempt_count() != 0; }
/// in_interrupt() - inside a kprim interrupt (signal) handler or softirq.
[[nodiscard]] inline bool in_interrupt() noexcept { return (preempt_count() & (HARDIRQ_MASK | SOFTIRQ_MASK)) != 0; }
[[nodiscard]] inline bool in_irq() noexcept { return (preempt_count() & HARDIRQ_MASK) != 0; }
/// irqs_disabled() - local_irq_disable()/spin_lock_irqsave() is in effect on this thread.
[[nodiscard]] inline bool irqs_disabled() noexcept { return debug::tls_context.irqs_off; }
/// Entering/leaving handler context (the interrupt wrapper, tests).
inline void __irq_enter() noexcept { debug::tls_context.preempt_count += HARDIRQ_OFFSET; }
inline void __irq_exit() noexcept { debug::tls_context.preempt_count -= HARDIRQ_OFFSET; }
/// The RCU reader depth kept by rcu_read_lock()/rcu_read_unlock() (rcu_preempt_depth()).
inline void __rcu_read_lock_depth_inc() noexcept { ++debug::tls_context.rcu_depth; }
inline void __rcu_read_lock_depth_dec() noexcept { --debug::tls_context.rcu_depth; }
[[nodiscard]] inline unsigned rcu_preempt_depth() noexcept { return debug::tls_context.rcu_depth; }

#else  // !KPRIM_DEBUG_LOCKING: nothing is tracked; the queries answer "not atomic".

#define might_sleep() ((void)0)
[[nodiscard]] inline unsigned preempt_count() noexcept { return 0; }
inline void preempt_disable() noexcept {}
inline void preempt_enable() noexcept {}
[[nodiscard]] inline bool in_atomic() noexcept { return false; }
[[nodiscard]] inline bool in_interrupt() noexcept { return false; }
[[nodiscard]] inline bool in_irq() noexcept { return false; }
[[nodiscard]] inline bool irqs_disabled() noexcept { return false; }
inline void __irq_enter() noexcept {}
inline void __irq_exit() noexcept {}
inline void __rcu_read_lock_depth_inc() noexcept {}
inline void __rcu_read_lock_depth_dec() noexcept {}
[[nodiscard]] inline unsigned rcu_preempt_depth() noexcept { return 0; }

#endif

}  // namespace kprim
