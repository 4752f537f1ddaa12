// kprim/bench/floor.hpp: the cache-line transfer floor measured at the moment it is needed, for
// figures that must be read against the machine's state at the time of their own trial (a VM's
// vCPUs move between host cores: the floor can change between two trials of one run). For the
// floor family itself (every distance class, as benchmarks) see bench/bench_floor.cpp.
// Test: bench/harness/tests/harness_test.cpp (TransferFloor); used by bench_locks' handover.
#pragma once

namespace kprim::bench {

/// transfer_floor_ns() - one-way cache-line transfer time between the two closest distinct PUs
/// of the machine (the nearest distance class topology.hpp finds), measured now.
/// Method: two threads pinned to that pair pass one line back and forth `round_trips` times,
/// each side spinning on plain loads (no `pause`, so no wake-up delay is added: the fastest a
/// spinning reader can see a store); only the first thread reads the clock, once per batch
/// (no cross-CPU timestamps); the result is the median over `batches` batches of batch time /
/// (2 x round_trips).
/// Returns 0 when the machine has fewer than two PUs, a thread cannot be pinned (a synthetic
/// topology), or a side waits longer than 10 ms (preempted): callers then publish no ratio.
/// Context: spawns and joins two threads; about 1 ms at round_trips 2000 x batches 5 here.
double transfer_floor_ns(unsigned round_trips = 2000, unsigned batches = 5);

}  // namespace kprim::bench
