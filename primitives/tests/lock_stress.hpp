// Shared stress helpers for the lock tests: a critical section whose plain (non-atomic) state
// any overlap breaks, run by more threads than cores. Under TSan, an overlap is also a race.
#pragma once

#include <kprim/testing/stress.hpp>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace kprim::test {

/// Divisor of every stress loop count: 8 under a sanitizer, times KPRIM_STRESS_SCALE (set by
/// a cross build's ctest run under qemu-user; kprim/testing/stress.hpp says why).
inline const unsigned sanitizer_slowdown = kprim::test::sanitizer_factor * kprim::test::stress_scale();

/// Threads used to oversubscribe: four times the two cores of the reference machine, and at
/// least two more than this machine's cores.
inline unsigned oversubscribed_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw + 2 > 8 ? hw + 2 : 8;
}

/// protected_state - touched only inside a critical section, with plain loads and stores on
/// purpose: two threads inside at once make `inside` read 1 on entry or break the a == b
/// pairing, and lose increments of `count`. Every yield_every-th section gives up the CPU in
/// the middle, so the holder is descheduled inside the lock: a broken lock lets another
/// thread in at that moment even when the machine runs our threads one at a time.
struct protected_state {
  static constexpr std::uint64_t yield_every = 256;
  unsigned inside = 0;
  std::uint64_t a = 0, b = 0, count = 0;
  std::atomic<std::uint64_t> violations{0};

  void critical_section() {
    if (inside != 0 || a != b) violations.fetch_add(1, std::memory_order_relaxed);
    inside = 1;
    ++a;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // keep the window open in codegen
    if (count % yield_every == 0) std::this_thread::yield();
    ++b;
    ++count;
    inside = 0;
  }
};

/// run_threads() - start n threads running body(tid) behind a start line; join them.
template <class Body>
void run_threads(unsigned n, Body body) {
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (unsigned t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(t);
    });
  go.store(true, std::memory_order_release);
  for (auto& th : ts) th.join();
}

}  // namespace kprim::test
