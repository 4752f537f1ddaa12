// irq.cpp: kprim's interrupt registration (request_irq/free_irq), the signal trampoline and the
// replay of soft-masked interrupts. The design is in kprim/irq.hpp; this file keeps the parts
// that run in a signal handler async-signal-safe: lock-free atomics and system calls only.
#include <kprim/irq.hpp>

#include <sched.h>
#if KPRIM_DEBUG_LOCKING
#include <execinfo.h>
#endif
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

namespace kprim {

namespace {

constexpr unsigned nr_irqs = 65;  // signal numbers 1..64 (bit signo - 1 of the pending word)

/// One irq's descriptor (the kernel's struct irq_desc, reduced). handler is the publication
/// point: request_irq stores it last, free_irq clears it first.
struct irq_desc {
  std::atomic<irq_handler_t> handler{nullptr};
  std::atomic<void*> dev{nullptr};
  const char* name = nullptr;
  /// Handlers of this irq running now, on any thread; free_irq waits for 0. Raised before the
  /// handler pointer is read (seq_cst both sides, Dekker-style: free_irq clears the pointer,
  /// then reads the count; the trampoline raises the count, then reads the pointer; so either
  /// free_irq sees the count or the trampoline sees nullptr).
  std::atomic<unsigned> running{0};
  std::atomic<unsigned long> count{0};
  std::atomic<unsigned long> deferred{0};
  struct sigaction old {};  // the disposition to restore (registration mutex)
};

irq_desc g_desc[nr_irqs];
std::mutex g_register_lock;  // request_irq/free_irq only: never taken in a handler

bool valid_irq(unsigned irq) noexcept {
  if (irq == SIGUSR1 || irq == SIGUSR2) return true;
  return irq >= static_cast<unsigned>(SIGRTMIN) && irq <= static_cast<unsigned>(SIGRTMAX) && irq < nr_irqs;
}

/// run_handler() - one handler call in hardirq context (the soft mask is already set).
void run_handler(unsigned irq) noexcept {
  irq_desc& d = g_desc[irq];
  d.running.fetch_add(1, std::memory_order_seq_cst);
  if (irq_handler_t h = d.handler.load(std::memory_order_seq_cst)) {
    detail::tls_irq.hardirq.store(1, std::memory_order_relaxed);
    __irq_enter();
    std::atomic_signal_fence(std::memory_order_seq_cst);
    (void)h(static_cast<int>(irq), d.dev.load(std::memory_order_relaxed));
    std::atomic_signal_fence(std::memory_order_seq_cst);
    __irq_exit();
    detail::tls_irq.hardirq.store(0, std::memory_order_relaxed);
    d.count.fetch_add(1, std::memory_order_relaxed);
  }
  d.running.fetch_sub(1, std::memory_order_release);  // free_irq's wait pairs with this
}

#if KPRIM_DEBUG_LOCKING
using saved_debug_irqs = bool;
saved_debug_irqs save_debug_irqs() noexcept { return debug::tls_context.irqs_off; }
void restore_debug_irqs(saved_debug_irqs v) noexcept { debug::tls_context.irqs_off = v; }
#else
using saved_debug_irqs = int;
saved_debug_irqs save_debug_irqs() noexcept { return 0; }
void restore_debug_irqs(saved_debug_irqs) noexcept {}
#endif

/// The trampoline every kprim irq's sigaction points at. Runs with every signal blocked
/// (sa_mask full), so it never nests with itself on one thread.
void trampoline(int signo, siginfo_t*, void*) {
  const int saved_errno = errno;
  detail::irq_state& s = detail::tls_irq;
  const auto irq = static_cast<unsigned>(signo);
  if (s.off.load(std::memory_order_relaxed) != 0) {
    // Interrupts are soft-masked: latch it for the restore and return to the section.
    s.pending.fetch_or(std::uint64_t{1} << (irq - 1), std::memory_order_relaxed);
    g_desc[irq].deferred.fetch_add(1, std::memory_order_relaxed);
    errno = saved_errno;
    return;
  }
  const saved_debug_irqs dbg = save_debug_irqs();
  detail::irq_mask_store(1);  // handlers run with interrupts off, as the kernel's do
  std::atomic_signal_fence(std::memory_order_seq_cst);
  run_handler(irq);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s.off.store(0, std::memory_order_relaxed);
  restore_debug_irqs(dbg);
  errno = saved_errno;
}

}  // namespace

namespace detail {

void irq_replay_pending() noexcept {
  const int saved_errno = errno;
  irq_state& s = tls_irq;
  const saved_debug_irqs dbg = save_debug_irqs();
  for (;;) {
    // Mask first, then take the word: what arrives from here on is pended again and picked up
    // by the next round, so nothing is run twice or lost.
    irq_mask_store(1);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::uint64_t p = s.pending.exchange(0, std::memory_order_relaxed);
    while (p != 0) {
      run_handler(static_cast<unsigned>(__builtin_ctzll(p)) + 1);
      p &= p - 1;
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    s.off.store(0, std::memory_order_relaxed);
    restore_debug_irqs(dbg);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (s.pending.load(std::memory_order_relaxed) == 0) break;
  }
  errno = saved_errno;
}

}  // namespace detail

int request_irq(unsigned irq, irq_handler_t handler, unsigned long flags, const char* name, void* dev) {
  might_sleep();
  if (!valid_irq(irq) || handler == nullptr || flags != 0) return -EINVAL;
#if KPRIM_DEBUG_LOCKING
  // The debug layer's reports end with backtrace(), whose first call loads libgcc_s (dlopen,
  // malloc): not async-signal-safe. Make that first call here, in process context, so a report
  // from inside a handler only walks the stack.
  static const bool primed = [] {
    void* frame[1];
    return backtrace(frame, 1) >= 0;
  }();
  (void)primed;
#endif
  std::lock_guard<std::mutex> g(g_register_lock);
  irq_desc& d = g_desc[irq];
  if (d.handler.load(std::memory_order_relaxed) != nullptr) return -EBUSY;
  d.dev.store(dev, std::memory_order_relaxed);
  d.name = name;
  d.handler.store(handler, std::memory_order_seq_cst);  // before the trampoline can run
  struct sigaction sa {};
  sa.sa_sigaction = trampoline;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(static_cast<int>(irq), &sa, &d.old) != 0) {
    const int e = errno;
    d.handler.store(nullptr, std::memory_order_seq_cst);
    return -e;
  }
  return 0;
}

void synchronize_irq(unsigned irq) {
  if (irq >= nr_irqs) return;
  while (g_desc[irq].running.load(std::memory_order_acquire) != 0) sched_yield();
}

const char* free_irq(unsigned irq, void* dev) {
  might_sleep();
  if (!valid_irq(irq)) return nullptr;
  std::lock_guard<std::mutex> g(g_register_lock);
  irq_desc& d = g_desc[irq];
  if (d.handler.load(std::memory_order_relaxed) == nullptr || d.dev.load(std::memory_order_relaxed) != dev)
    return nullptr;
  d.handler.store(nullptr, std::memory_order_seq_cst);  // no handler starts after this...
  sigaction(static_cast<int>(irq), &d.old, nullptr);
  synchronize_irq(irq);  // ...and none still runs after this
  const char* name = d.name;
  d.name = nullptr;
  d.dev.store(nullptr, std::memory_order_relaxed);
  return name;
}

int raise_irq(unsigned irq) noexcept {
  if (syscall(SYS_tgkill, getpid(), gettid(), static_cast<int>(irq)) != 0) return -errno;
  return 0;
}

int raise_irq_on(pthread_t thread, unsigned irq) noexcept { return -pthread_kill(thread, static_cast<int>(irq)); }

unsigned long kstat_irqs(unsigned irq) noexcept {
  return irq < nr_irqs ? g_desc[irq].count.load(std::memory_order_relaxed) : 0;
}

unsigned long kstat_irqs_deferred(unsigned irq) noexcept {
  return irq < nr_irqs ? g_desc[irq].deferred.load(std::memory_order_relaxed) : 0;
}

}  // namespace kprim
