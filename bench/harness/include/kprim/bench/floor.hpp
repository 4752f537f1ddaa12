// kprim/bench/floor.hpp: the cache-line transfer floor measured at the moment it is needed, for
// figures that must be read against the machine's state at the time of their own trial (a VM's
// vCPUs move between host cores: the floor can change between two trials of one run). For the
// floor family itself (every distance class, as benchmarks) see bench/bench_floor.cpp.
// Test: bench/harness/tests/harness_test.cpp (TransferFloor); used by bench_locks' handover.
#pragma once

#include <kprim/bench/harness.hpp>
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>

#include <atomic>
#include <cstdint>

namespace kprim::bench {

/// ping_pong_line - the one ping-pong protocol behind both floor measurements (this file's
/// transfer_floor_ns() and bench_floor's floor/transfer rows): one cache line passed between
/// a timer and an echo. Round r: the timer stores served(r) and waits for answered(r); the
/// echo waits for served(r) and stores answered(r). Each caller keeps its own timing method
/// (per batch here, per sampled round in bench_floor) and spin flavour (Pause below).
struct ping_pong_line {
  static constexpr std::uint64_t served(std::uint64_t r) noexcept { return 2 * r + 1; }
  static constexpr std::uint64_t answered(std::uint64_t r) noexcept { return 2 * r + 2; }
  /// store() - publish `v` (release: the partner's acquire in wait() sees it).
  void store(std::uint64_t v) noexcept { word->store(v, std::memory_order_release); }
  /// wait<Pause>() - spin until the line holds `v`; false after `give_up`, or once `*stop` is
  /// set. Both are checked every `poll_every` polls only (the clock is read for that bound
  /// alone). Pause: cpu_relax() between polls (bench_floor, as lock spinners do); without it
  /// plain loads, the fastest a spinning reader can see a store (transfer_floor_ns()).
  template <bool Pause>
  bool wait(std::uint64_t v, clock::duration give_up, std::uint32_t poll_every,
            const std::atomic<bool>* stop = nullptr) const noexcept {
    clock::time_point started{};
    for (std::uint32_t polls = 1;; ++polls) {
      if (word->load(std::memory_order_acquire) == v) return true;
      if (polls % poll_every == 0) {
        if (stop != nullptr && stop->load(std::memory_order_relaxed)) return false;
        const auto now = clock::now();
        if (started == clock::time_point{})
          started = now;
        else if (now - started > give_up)
          return false;
      }
      if constexpr (Pause) cpu_relax();
    }
  }
  cacheline_padded<std::atomic<std::uint64_t>> word{};
};

/// transfer_floor_ns() - one-way cache-line transfer time between the two closest distinct PUs
/// of the machine (the nearest distance class topology.hpp finds), measured now.
/// Method (ping_pong_line): two threads pinned to that pair pass one line back and forth `round_trips` times,
/// each side spinning on plain loads (no `pause`, so no wake-up delay is added: the fastest a
/// spinning reader can see a store); only the first thread reads the clock, once per batch
/// (no cross-CPU timestamps); the result is the median over `batches` batches of batch time /
/// (2 x round_trips).
/// Returns 0 when the machine has fewer than two PUs, a thread cannot be pinned (a synthetic
/// topology), or a side waits longer than 10 ms (preempted): callers then publish no ratio.
/// Context: spawns and joins two threads; about 1 ms at round_trips 2000 x batches 5 here.
double transfer_floor_ns(unsigned round_trips = 2000, unsigned batches = 5);

}  // namespace kprim::bench
