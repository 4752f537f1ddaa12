// kprim/spinlock/spin_wait.hpp: how kprim's spinning loops wait, and the user-space remedy for
// preemption. Internal to the spinlock family; lock users pick a policy through the lock type.
//
// The kernel spins with preemption disabled, so a lock holder or queue head always runs. User
// space cannot do that: with more runnable threads than cores the scheduler may deschedule the
// holder (everyone spins for a whole time slice) or, in a FIFO lock, the next waiter (the lock
// is handed to a thread that cannot take it). On 2 cores with 8 threads a FIFO lock that only
// spins, or spins then yields, waits for the scheduler at nearly every hand-over (see
// bench_locks at threads > nproc: kprim_qspinlock_spin, kprim_ticket); the remedies below
// keep hand-overs among running threads. Policies:
//   spin  - the kernel's loop, cpu_relax() only. Kept to measure the collapse.
//   yield - spin_then_yield_limit rounds of cpu_relax(), then sched_yield() each round. For
//           qspinlock also the kernel's paravirt hybrid (qspinlock_paravirt.h): the queue head
//           sets `pending` only while it actively spins; while it does not (descheduled),
//           running newcomers steal the free lock instead of queueing behind it.
//   virt  - qspinlock only: the kernel's virt_spin_lock() answer for guests without
//           paravirt spinlocks: an unfair test-and-set on the whole word (no queue, so no
//           hand-over to a descheduled waiter), with yield-style waiting.
// The ticket lock has no such escape: strict FIFO must wait for the descheduled next ticket.
#pragma once

#include <kprim/barrier.hpp>
#include <kprim/compiler.hpp>

#include <atomic>
#include <type_traits>

#include <sched.h>

namespace kprim {

enum class spin_policy : unsigned char { spin,
                                         yield,
                                         virt };

/// Rounds of cpu_relax() before the first sched_yield(): a few context switches' worth of
/// `pause`, so a holder that is running is rarely yielded to. What the bound buys is measured
/// by bench_locks `locks/handover` and `locks/contended`: kprim_qspinlock (yield policy)
/// against kprim_qspinlock_spin (no yield); the cost of one `pause` round trip on a machine
/// by bench_floor (METHOD.md, the physical floor).
inline constexpr unsigned spin_then_yield_limit = 128;

/// spin_wait<P> - one waiting loop's state. relax() is called once per failed poll.
template <spin_policy P>
struct spin_wait {
  unsigned rounds = 0;
  void relax() noexcept {
    if constexpr (P == spin_policy::spin) {
      cpu_relax();
    } else if (likely(rounds < spin_then_yield_limit)) {
      ++rounds;
      cpu_relax();
    } else {
      ::sched_yield();
    }
  }
};

namespace detail {
template <class T>
inline std::remove_cv_t<T> acquire_load(const T* p) noexcept { return smp_load_acquire(p); }
template <class T>
inline T acquire_load(const std::atomic<T>* a) noexcept { return a->load(std::memory_order_acquire); }
}  // namespace detail

/// spin_cond_load_acquire<P>(p, cond) - wait until cond(*p), acquire on the load that
/// satisfied it; returns that value. P == spin is the kernel's wait, smp_cond_load_acquire()
/// (WFE on arm64, `pause` on x86-64). The other policies poll with spin_wait<P>: they must
/// reach sched_yield() after a bounded number of polls, and a WFE wait is unbounded in time
/// while nothing stores to the line. p: a plain object or a std::atomic.
template <spin_policy P, class T, class Cond>
inline auto spin_cond_load_acquire(const T* p, Cond cond) noexcept {
  if constexpr (P == spin_policy::spin) {
    return smp_cond_load_acquire(p, cond);
  } else {
    spin_wait<P> w;
    for (;;) {
      const auto v = detail::acquire_load(p);
      if (cond(v)) return v;
      w.relax();
    }
  }
}

}  // namespace kprim
