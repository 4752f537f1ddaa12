// Shared helpers for the per-CPU tests: threads that keep migrating themselves between the
// CPUs this process may use (sched_setaffinity), so per-CPU slots change hands mid-stream.
#pragma once

#include "lock_stress.hpp"

#include <sched.h>

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

}  // namespace kprim::test
