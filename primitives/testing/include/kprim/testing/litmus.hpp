// kprim/testing/litmus.hpp: a two-thread litmus-test runner (shared by primitives/tests/
// barrier_test.cpp, atomic_test.cpp and bench/bench_atomics.cpp through kprim::testing). Each iteration i gets fresh variables (slot i of arrays), both
// threads meet at a spin barrier, wait a random few cycles (so either may lead), then run
// their side of the test on slot i. Outcomes are checked after the threads are joined.
//
// The raced variables are accessed with READ_ONCE/WRITE_ONCE, which are relaxed atomics
// under ThreadSanitizer, so the tests are race-free there too.
#pragma once

#include <kprim/barrier.hpp>
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace kprim::litmus {

/// Fresh shared variables and results for every iteration (slot i of each array).
struct slots {
  explicit slots(std::size_t n) : x(n), y(n), r0(n), r1(n) {}
  std::vector<int> x, y;    ///< the raced variables
  std::vector<int> r0, r1;  ///< what thread 0 / thread 1 observed
};

namespace detail {
/// Two-party spin barrier: generation g is passed when both have arrived g times.
/// Spins briefly then yields, so it also works when both threads share one CPU.
struct barrier2 {
  alignas(cacheline_size) std::atomic<std::uint64_t> count{0};
  void wait(std::uint64_t gen) noexcept {
    count.fetch_add(1, std::memory_order_acq_rel);
    unsigned spins = 0;
    while (count.load(std::memory_order_acquire) < 2 * gen) {
      if (++spins < 2000) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }
};
inline void jitter(std::uint64_t& rng) noexcept {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  for (unsigned k = static_cast<unsigned>(rng & 15); k; --k) barrier();
}
}  // namespace detail

/// run() - run up to `max_iters` iterations (stopping early, at a multiple of check_every,
/// once `budget` has elapsed) of f0(slots&, i) on one thread and f1(slots&, i) on another.
/// Returns the number of iterations run; s holds their outcomes.
inline constexpr std::size_t check_every = 256;

template <class F0, class F1>
std::size_t run(slots& s, std::size_t max_iters, std::chrono::nanoseconds budget, F0 f0, F1 f1) {
  detail::barrier2 bar;
  std::atomic<bool> go_on{true};
  std::size_t done0 = 0;
  const auto start = std::chrono::steady_clock::now();
  auto side = [&](unsigned tid) {
    std::uint64_t rng = 0x9E3779B97F4A7C15ull * (tid + 1);
    std::size_t i = 0;
    for (; i < max_iters; ++i) {
      if (tid == 0 && i % check_every == 0 && i)
        go_on.store(std::chrono::steady_clock::now() - start < budget, std::memory_order_relaxed);
      bar.wait(i + 1);
      if (i % check_every == 0 && i && !go_on.load(std::memory_order_relaxed)) break;
      detail::jitter(rng);
      if (tid == 0)
        f0(s, i);
      else
        f1(s, i);
    }
    if (tid == 0) done0 = i;
  };
  std::thread t1(side, 1u);
  side(0u);
  t1.join();
  return done0;
}

/// Store buffering: x = 1; [barrier]; r0 = y  ||  y = 1; [barrier]; r1 = x.
/// Forbidden with smp_mb(): r0 == 0 && r1 == 0. Allowed (and seen on x86-64) without.
template <bool WithMb>
std::size_t store_buffering(std::size_t max_iters, std::chrono::nanoseconds budget, std::size_t* reorders) {
  slots s(max_iters);
  std::size_t n = run(
      s, max_iters, budget,
      [](slots& v, std::size_t i) {
        write_once(v.x[i], 1);
        if constexpr (WithMb) smp_mb();
        else barrier();
        v.r0[i] = read_once(v.y[i]);
      },
      [](slots& v, std::size_t i) {
        write_once(v.y[i], 1);
        if constexpr (WithMb) smp_mb();
        else barrier();
        v.r1[i] = read_once(v.x[i]);
      });
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += (s.r0[i] == 0 && s.r1[i] == 0);
  *reorders = bad;
  return n;
}

}  // namespace kprim::litmus
