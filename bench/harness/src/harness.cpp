// The driver side of a trial: threads, start barrier, stop flag, watchdog, pinning, and the
// arithmetic of results (fairness, shares). The worker loop itself is inline in harness.hpp.
#include <kprim/bench/harness.hpp>

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

// Instruction counts (./kbench callgrind, tools/kprim_tools/callgrind.py): each worker thread
// turns callgrind's collection on for exactly the call of its worker loop, with a client
// request (a few no-op instructions outside valgrind, before and after the trial). The loop
// function's name cannot delimit it (--toggle-collect): g++ moves unlikely paths into a
// "[clone .cold]" part reached by jumps, and each jump between the two parts toggled the
// collection again, so the kmem_cache rows read 0.00 instructions per operation.
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define KPRIM_CALLGRIND_TOGGLE() CALLGRIND_TOGGLE_COLLECT
#else
#define KPRIM_CALLGRIND_TOGGLE() ((void)0)  // cross builds: not measured under callgrind
#endif

#include <algorithm>
#include <bit>
#include <charconv>
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

double trial_result::cpu_util() const noexcept {
  return cpu_utilisation(worker_cpu_s, static_cast<unsigned>(ops.size()), trial_s);
}

double cpu_utilisation(double cpu_s, unsigned threads, double wall_s) noexcept {
  if (threads == 0 || !(wall_s > 0) || !(cpu_s >= 0)) return 0.0;
  return cpu_s / (static_cast<double>(threads) * wall_s);
}

bool parse_proc_stat(std::string_view text, cpu_ticks& out) noexcept {
  // The aggregate line is "cpu" followed by blanks; per-CPU lines are "cpu0", "cpu1", ...
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t eol = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, eol - at);
    at = eol + 1;
    if (line.size() < 4 || line.substr(0, 3) != "cpu" || (line[3] != ' ' && line[3] != '\t')) continue;
    line.remove_prefix(3);
    std::uint64_t field[8] = {};
    int n = 0;
    while (n < 8) {
      const std::size_t b = line.find_first_not_of(" \t");
      if (b == std::string_view::npos) break;
      line.remove_prefix(b);
      auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), field[n]);
      if (ec != std::errc()) return false;
      line.remove_prefix(static_cast<std::size_t>(p - line.data()));
      ++n;
    }
    if (n < 4) return false;
    out.total = 0;
    for (std::uint64_t f : field) out.total += f;
    out.steal = field[7];
    return true;
  }
  return false;
}

bool read_proc_stat(cpu_ticks& out) noexcept {
  // The aggregate line comes first; 4 KiB holds it on any machine.
  const int fd = ::open("/proc/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  const ssize_t got = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return got > 0 && parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(got)), out);
}

double steal_percent(const cpu_ticks& before, const cpu_ticks& after) noexcept {
  if (after.total <= before.total || after.steal < before.steal) return 0.0;
  return 100.0 * static_cast<double>(after.steal - before.steal) / static_cast<double>(after.total - before.total);
}

std::uint64_t thread_cpu_ns() noexcept {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
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

namespace detail {

std::uint64_t sample_taken(sampling& s, clock::time_point t1, std::uint64_t n) noexcept {
  const double dt = std::chrono::duration<double, std::nano>(t1 - s.t0).count() - s.clock_ns;
  s.hist->record(dt > 0 ? static_cast<std::uint64_t>(dt) : 0);
  const double per_op = std::chrono::duration<double, std::nano>(t1 - s.begin).count() / static_cast<double>(n + 1);
  s.next_sample = n + sample_stride(s.clock_ns, per_op);
  return s.next_sample - n;
}

}  // namespace detail

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
      KPRIM_CALLGRIND_TOGGLE();  // on: this thread's worker loop (see the include above)
      body(ctx, t);
      KPRIM_CALLGRIND_TOGGLE();  // off
      ctl->done.fetch_add(1, std::memory_order_release);
    });
  }

  // Start barrier: wait (sleeping, not spinning: workers may outnumber cores) until every
  // worker is ready, then release them together.
  for (unsigned seen = ctl->ready.load(std::memory_order_acquire); seen < n;
       seen = ctl->ready.load(std::memory_order_acquire))
    ctl->ready.wait(seen, std::memory_order_acquire);
  // Steal over the trial: /proc/stat read just before the release and just before the stop.
  cpu_ticks stat_begin, stat_end;
  const bool have_begin = read_proc_stat(stat_begin);
  const auto start = clock::now();
  ctl->go.store(true, std::memory_order_release);
  ctl->go.notify_all();

  std::this_thread::sleep_until(start + cfg.duration);
  const bool have_end = read_proc_stat(stat_end);
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
  r.steal_pct = have_begin && have_end ? steal_percent(stat_begin, stat_end) : 0.0;
  if (!r.abandoned) {
    r.ops.reserve(n);
    std::uint64_t cpu_ns = 0;
    for (unsigned t = 0; t < n; ++t) {
      r.ops.push_back(*ctl->ops[t]);
      r.lat.merge(*ctl->hist[t]);
      cpu_ns += *ctl->cpu_ns[t];
    }
    r.worker_cpu_s = static_cast<double>(cpu_ns) * 1e-9;
  }
  return r;
}

}  // namespace detail
}  // namespace kprim::bench
