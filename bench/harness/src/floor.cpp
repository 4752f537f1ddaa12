// The transfer floor of floor.hpp: a pinned two-thread ping-pong timed by one side.
#include <kprim/bench/floor.hpp>
#include <kprim/bench/topology.hpp>

#include <kprim/cache.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace kprim::bench {

namespace {

constexpr auto give_up = std::chrono::milliseconds(10);
constexpr std::uint32_t poll_every = 4096;

/// spin_until() - plain loads (ping_pong_line::wait without pause) until `line` holds `v` or
/// `stop` is set; false after give_up.
bool spin_until(const ping_pong_line& line, std::uint64_t v, const std::atomic<bool>& stop) {
  return line.wait<false>(v, give_up, poll_every, &stop);
}

}  // namespace

double transfer_floor_ns(unsigned round_trips, unsigned batches) {
  const std::vector<pu_pair> pairs = representative_pairs();
  if (pairs.empty() || round_trips == 0 || batches == 0) return 0;
  const pu_pair pair = *std::min_element(pairs.begin(), pairs.end(),
                                         [](const pu_pair& x, const pu_pair& y) { return x.cls < y.cls; });
  ping_pong_line line;
  std::atomic<bool> stop{false}, echo_ok{true};
  const std::uint64_t rounds = std::uint64_t{round_trips} * batches + 1;  // round 0: both sides pinned
  std::thread echo([&] {
    if (!pin_current_thread_to_pu(pair.b)) {
      echo_ok.store(false);
      stop.store(true);
      return;
    }
    for (std::uint64_t r = 0; r < rounds; ++r) {
      if (!spin_until(line, ping_pong_line::served(r), stop)) {
        echo_ok.store(false);
        stop.store(true);
        return;
      }
      line.store(ping_pong_line::answered(r));
    }
  });
  std::vector<double> per_batch;
  bool ok = false;
  std::thread timer([&] {
    if (!pin_current_thread_to_pu(pair.a)) {
      stop.store(true);
      return;
    }
    std::uint64_t r = 0;
    auto one_round = [&] {
      line.store(ping_pong_line::served(r));
      const bool seen = spin_until(line, ping_pong_line::answered(r), stop);
      ++r;
      return seen;
    };
    if (!one_round()) {
      stop.store(true);
      return;
    }
    for (unsigned b = 0; b < batches; ++b) {
      const auto t0 = clock::now();
      for (unsigned i = 0; i < round_trips; ++i)
        if (!one_round()) {
          stop.store(true);
          return;
        }
      const auto t1 = clock::now();
      per_batch.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / (2.0 * round_trips));
    }
    ok = true;
  });
  timer.join();
  echo.join();
  if (!ok || !echo_ok.load() || per_batch.empty()) return 0;
  const auto mid = per_batch.begin() + static_cast<std::ptrdiff_t>(per_batch.size() / 2);
  std::nth_element(per_batch.begin(), mid, per_batch.end());
  return *mid;
}

}  // namespace kprim::bench
