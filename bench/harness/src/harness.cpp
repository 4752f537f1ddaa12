// The driver side of a trial: threads, start barrier, stop flag, watchdog, pinning, and the
// arithmetic of results (fairness, shares). The worker loop itself is inline in harness.hpp.
#include <kprim/bench/harness.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <mutex>
#include <numeric>
#include <thread>

namespace kprim::bench {

std::uint64_t trial_result::total() const noexcept {
  return std::accumulate(ops.begin(), ops.end(), std::uint64_t{0});
}

double trial_result::ops_per_s() const noexcept {
  return trial_s > 0 ? static_cast<double>(total()) / trial_s : 0.0;
}

double trial_result::fairness() const noexcept {
  double sum = 0, sq = 0;
  for (auto x : ops) {
    sum += static_cast<double>(x);
    sq += static_cast<double>(x) * static_cast<double>(x);
  }
  if (ops.empty() || sq == 0) return 0.0;
  return sum * sum / (static_cast<double>(ops.size()) * sq);
}

namespace {
double share_of(const std::vector<std::uint64_t>& ops, std::uint64_t x) {
  const double sum = static_cast<double>(std::accumulate(ops.begin(), ops.end(), std::uint64_t{0}));
  return sum > 0 ? static_cast<double>(x) * static_cast<double>(ops.size()) / sum : 0.0;
}
}  // namespace

double trial_result::share_min() const noexcept {
  return ops.empty() ? 0.0 : share_of(ops, *std::min_element(ops.begin(), ops.end()));
}

double trial_result::share_max() const noexcept {
  return ops.empty() ? 0.0 : share_of(ops, *std::max_element(ops.begin(), ops.end()));
}

double clock_pair_ns() noexcept {
  static const double cost = [] {
    constexpr int n = 2001;
    std::vector<double> d(n);
    for (int i = 0; i < n; ++i) {
      const auto a = clock::now();
      const auto b = clock::now();
      d[i] = std::chrono::duration<double, std::nano>(b - a).count();
    }
    std::nth_element(d.begin(), d.begin() + n / 2, d.end());
    return d[n / 2];
  }();
  return cost;
}

std::uint64_t sample_stride(double clock_ns, double ns_per_op) noexcept {
  if (!(ns_per_op > 0) || !(clock_ns > 0)) return 1024;
  const double want = clock_ns / (0.02 * ns_per_op);
  if (want <= 1.0) return 1;
  if (want >= 1048576.0) return 1048576;
  return std::bit_ceil(static_cast<std::uint64_t>(std::ceil(want)));
}

// pin_current_thread() lives in topology.cpp, with the PU orders it uses.

namespace detail {

void keep_alive(std::shared_ptr<void> p) {
  static std::mutex lock;
  static auto* kept = new std::vector<std::shared_ptr<void>>;  // never destroyed on purpose
  std::lock_guard<std::mutex> guard(lock);
  kept->push_back(std::move(p));
}

trial_result drive(const trial_config& cfg, const std::shared_ptr<control>& ctl,
                   void (*body)(void* ctx, unsigned tid), void* ctx) {
  trial_result r;
  r.clock_ns = clock_pair_ns();
  const unsigned n = cfg.threads;
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned t = 0; t < n; ++t) {
    // Each thread holds its own reference to the control block: an abandoned worker keeps
    // it alive after this function returns.
    threads.emplace_back([ctl, body, ctx, t] {
      body(ctx, t);
      ctl->done.fetch_add(1, std::memory_order_release);
    });
  }

  // Start barrier: wait (sleeping, not spinning: workers may outnumber cores) until every
  // worker is ready, then release them together.
  for (unsigned seen = ctl->ready.load(std::memory_order_acquire); seen < n;
       seen = ctl->ready.load(std::memory_order_acquire))
    ctl->ready.wait(seen, std::memory_order_acquire);
  const auto start = clock::now();
  ctl->go.store(true, std::memory_order_release);
  ctl->go.notify_all();

  std::this_thread::sleep_until(start + cfg.duration);
  ctl->stop.store(true, std::memory_order_relaxed);
  const auto stopped = clock::now();

  // Drain, bounded by the watchdog.
  const auto deadline = stopped + cfg.drain_limit;
  while (ctl->done.load(std::memory_order_acquire) < n && clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  const auto drained = clock::now();

  r.abandoned = ctl->done.load(std::memory_order_acquire) < n;
  for (auto& th : threads) {
    if (r.abandoned)
      th.detach();
    else
      th.join();
  }
  r.trial_s = std::chrono::duration<double>(stopped - start).count();
  r.drain_s = std::chrono::duration<double>(drained - stopped).count();
  if (!r.abandoned) {
    r.ops.reserve(n);
    for (unsigned t = 0; t < n; ++t) {
      r.ops.push_back(*ctl->ops[t]);
      r.lat.merge(*ctl->hist[t]);
    }
  }
  return r;
}

}  // namespace detail
}  // namespace kprim::bench
