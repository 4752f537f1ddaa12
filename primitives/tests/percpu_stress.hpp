// Shared helpers for the per-CPU tests: threads that keep migrating themselves between the
// CPUs this process may use (sched_setaffinity), so per-CPU slots change hands mid-stream,
// and a thread signalled over and over, so restartable sequences restart.
#pragma once

#include "lock_stress.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace kprim::test {

/// allowed_cpus() - the CPUs in the calling thread's affinity mask (as inherited from the
/// process, e.g. a container's cpuset), ascending.
inline std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

/// migrator - re-pins its thread to the next allowed CPU on every hop() (each hop is a forced
/// migration when the mask allows more than one CPU), and restores the full mask on unpin().
class migrator {
 public:
  migrator(std::vector<int> cpus, unsigned start) : cpus_(std::move(cpus)), next_(start) {}
  void hop() {
    if (cpus_.size() < 2) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus_[next_++ % cpus_.size()], &one);
    sched_setaffinity(0, sizeof one, &one);
  }
  void unpin() {
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int c : cpus_) CPU_SET(c, &all);
    sched_setaffinity(0, sizeof all, &all);
  }

 private:
  std::vector<int> cpus_;
  unsigned next_;
};

/// run_migrating() - `threads` threads (oversubscribed is the point) each call op(tid, i) for
/// i in [0, iters), hopping to another CPU every `hop_every` iterations, and unpinning at the
/// end. Bounded by iterations, never by time.
template <class Op>
void run_migrating(unsigned threads, unsigned iters, unsigned hop_every, Op op) {
  const std::vector<int> cpus = allowed_cpus();
  run_threads(threads, [&](unsigned tid) {
    migrator m(cpus, tid);
    for (unsigned i = 0; i < iters; ++i) {
      if (i % hop_every == 0) m.hop();
      op(tid, i);
    }
    m.unpin();
  });
}

namespace detail {
inline std::atomic<std::uint64_t> signals_handled{0};
extern "C" inline void count_signal(int) {
  signals_handled.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace detail

/// signal_storm() - run body(stop) on a new thread (it must loop until `stop`) and send it
/// SIGUSR1, one signal at a time, each waited for until handled, until until(sent) is true
/// or max_signals were sent. Returns the signals sent. A signal that lands inside a restartable
/// sequence restarts it. Bounded by the number of signals, never by time.
template <class Body, class Until>
unsigned signal_storm(Body body, Until until, unsigned max_signals) {
  struct sigaction sa, old;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = detail::count_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &old);
  std::atomic<bool> stop{false}, started{false};
  std::thread t([&] {
    started.store(true);
    body(stop);
  });
  while (!started.load()) std::this_thread::yield();
  unsigned sent = 0;
  for (; sent < max_signals && !until(sent); ++sent) {
    const std::uint64_t h = detail::signals_handled.load();
    pthread_kill(t.native_handle(), SIGUSR1);
    while (detail::signals_handled.load() == h) std::this_thread::yield();
  }
  stop.store(true);
  t.join();
  sigaction(SIGUSR1, &old, nullptr);
  return sent;
}

}  // namespace kprim::test
