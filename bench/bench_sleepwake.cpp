// bench_sleepwake: what sleeping and waking cost (issue 13) - kprim's completion, wait queue
// and semaphore against sem_t, std::binary/counting_semaphore, pthread_cond_t,
// std::condition_variable, std::atomic::wait and a raw futex. Their cost is wake-up latency,
// not lock throughput; for locks see bench_locks.
//
// Workloads:
//   pingpong  - two threads hand one event back and forth. The pinger stamps t0, signals,
//               sleeps until the ponger signals back, stamps t1: one-way wake-up = (t1-t0)/2,
//               both stamps on the pinger's clock (never two threads' clocks subtracted).
//               Counters wake_p50_ns, wake_p99_ns, wake_p999_ns, rounds.
//   counting  - a semaphore of 2 units as a resource across the thread sweep: down, work
//               (--kprim_cs), up; a harness trial (time-bounded, watchdog).
//   herd      - N sleepers, one event per round (a token), exclusive wake_up() against
//               notify_all(): counters woken_per_event (threads that woke, each round) and
//               futile_per_event (of those, the ones that found no token), both estimated from
//               condition evaluations - a thread re-entering its wait can take the next token
//               before the sleeper woken for it runs, which reads as a futile wake-up - and,
//               for wake_up(), wakeups_per_event: the sleepers it took off the queue (exact).
//   prodcons  - a bounded buffer of 16 items, P producers and C consumers (P = C = n/2 across
//               the thread sweep, so oversubscribed at 2x and 4x nproc): kprim semaphores
//               (empty/full + a spinlock), sem_t the same way, kprim wait queues (exclusive
//               wait_event on not-full/not-empty), std::condition_variable (mutex + two
//               condvars), tbb::concurrent_bounded_queue. Bounded by the trial time: producers
//               stop at the deadline, a closer pushes one end marker per consumer, a watchdog
//               gives up on a trial that does not drain within 5 s. Validated: the count and
//               the sum of the items consumed equal those produced (every item exactly once),
//               else the run is an error. ops = items consumed.
// A/A controls: pingpong/completion, counting/kprim_semaphore and prodcons/kprim_semaphore have
// `_aa` twins (the same code registered twice; pingpong's and prodcons' via the same naming
// register_control() uses).
// Primitives: primitives/include/kprim/{completion,wait,semaphore}.hpp.
#include <kprim/bench/registry.hpp>
#include <kprim/completion.hpp>
#include <kprim/futex.hpp>
#include <kprim/semaphore.hpp>
#include <kprim/wait.hpp>

#include <oneapi/tbb/concurrent_queue.h>

#include <pthread.h>
#include <semaphore.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

namespace {

using kprim::bench::clock;
using kprim::bench::fixed_string;

// ---- One-shot events: signal() makes one wait() return (binary, one waiter at a time). ----

struct ev_completion {
  static constexpr auto name = fixed_string("completion");
  kprim::completion c;
  void signal() { kprim::complete(&c); }
  void wait() { kprim::wait_for_completion(&c); }
};
struct ev_completion_aa : ev_completion {
  static constexpr auto name = fixed_string("completion_aa");
};
struct ev_waitqueue {
  static constexpr auto name = fixed_string("kprim_waitqueue");
  kprim::wait_queue_head_t wq;
  std::atomic<bool> flag{false};
  void signal() {
    flag.store(true, std::memory_order_release);
    kprim::wake_up(&wq);
  }
  void wait() {
    kprim::wait_event(wq, [this] { return flag.exchange(false, std::memory_order_acq_rel); });
  }
};
struct ev_kprim_sem {
  static constexpr auto name = fixed_string("kprim_semaphore");
  kprim::semaphore s{0};
  void signal() { kprim::up(&s); }
  void wait() { kprim::down(&s); }
};
struct ev_sem_t {
  static constexpr auto name = fixed_string("sem_t");
  sem_t s;
  ev_sem_t() { sem_init(&s, 0, 0); }
  ~ev_sem_t() { sem_destroy(&s); }
  void signal() { sem_post(&s); }
  void wait() {
    while (sem_wait(&s) != 0) {
    }
  }
};
struct ev_binary_semaphore {
  static constexpr auto name = fixed_string("std_binary_semaphore");
  std::binary_semaphore s{0};
  void signal() { s.release(); }
  void wait() { s.acquire(); }
};
struct ev_pthread_cond {
  static constexpr auto name = fixed_string("pthread_cond");
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  bool flag = false;
  void signal() {
    pthread_mutex_lock(&m);
    flag = true;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
  }
  void wait() {
    pthread_mutex_lock(&m);
    while (!flag) pthread_cond_wait(&c, &m);
    flag = false;
    pthread_mutex_unlock(&m);
  }
};
struct ev_std_cv {
  static constexpr auto name = fixed_string("std_condition_variable");
  std::mutex m;
  std::condition_variable c;
  bool flag = false;
  void signal() {
    {
      std::lock_guard g(m);
      flag = true;
    }
    c.notify_one();
  }
  void wait() {
    std::unique_lock g(m);
    c.wait(g, [this] { return flag; });
    flag = false;
  }
};
struct ev_atomic_wait {
  static constexpr auto name = fixed_string("std_atomic_wait");
  std::atomic<std::uint32_t> w{0};
  void signal() {
    w.store(1, std::memory_order_release);
    w.notify_one();
  }
  void wait() {
    while (w.exchange(0, std::memory_order_acq_rel) == 0) w.wait(0, std::memory_order_acquire);
  }
};
struct ev_raw_futex {
  static constexpr auto name = fixed_string("raw_futex");
  std::atomic<std::uint32_t> w{0};
  void signal() {
    w.store(1, std::memory_order_release);
    kprim::futex_wake(w, 1);
  }
  void wait() {
    while (w.exchange(0, std::memory_order_acq_rel) == 0) kprim::futex_wait(w, 0);
  }
};

using events = kprim::bench::contender_table<ev_completion, ev_completion_aa, ev_waitqueue, ev_kprim_sem,
                                             ev_sem_t, ev_binary_semaphore, ev_pthread_cond, ev_std_cv,
                                             ev_atomic_wait, ev_raw_futex>;

/// Ping-pong for the run's trial time. The ponger ends when the pinger sets `stop` and signals
/// once more, so a run ends whatever the primitive's speed (rounds are bounded by time).
template <class E>
void register_pingpong() {
  using namespace kprim::bench;
  case_id id{"sleepwake", "pingpong", std::string(E::name), 2, {}};
  const auto budget = std::chrono::milliseconds(current_options().trial_ms);
  benchmark::RegisterBenchmark(id.name().c_str(), [budget](benchmark::State& state) {
    for (auto _ : state) {
      auto ping = std::make_unique<E>(), pong = std::make_unique<E>();
      std::atomic<bool> stop{false};
      std::thread ponger([&] {
        for (;;) {
          ping->wait();
          if (stop.load(std::memory_order_acquire)) return;
          pong->signal();
        }
      });
      latency_histogram hist;
      const double clock_ns = clock_pair_ns();
      std::uint64_t rounds = 0;
      const auto begin = clock::now();
      auto now = begin;
      do {
        const auto t0 = clock::now();
        ping->signal();
        pong->wait();
        now = clock::now();
        const double rtt = std::chrono::duration<double, std::nano>(now - t0).count() - clock_ns;
        hist.record(rtt > 0 ? static_cast<std::uint64_t>(rtt / 2) : 0);
        ++rounds;
      } while (now - begin < budget);
      stop.store(true, std::memory_order_release);
      ping->signal();
      ponger.join();
      const double s = std::chrono::duration<double>(now - begin).count();
      report_loop(state, {static_cast<double>(rounds), s, 2});
      state.counters["rounds"] = static_cast<double>(rounds);
      state.counters["wake_p50_ns"] = static_cast<double>(hist.percentile(0.50));
      state.counters["wake_p99_ns"] = static_cast<double>(hist.percentile(0.99));
      state.counters["wake_p999_ns"] = static_cast<double>(hist.percentile(0.999));
    }
  })->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

// ---- Counting semaphores as a resource (harness trials). ----

constexpr unsigned kUnits = 2;

struct cs_kprim {
  static constexpr auto name = fixed_string("kprim_semaphore");
  kprim::semaphore s{kUnits};
  void down() { kprim::down(&s); }
  void up() { kprim::up(&s); }
};
struct cs_sem_t {
  static constexpr auto name = fixed_string("sem_t");
  sem_t s;
  cs_sem_t() { sem_init(&s, 0, kUnits); }
  ~cs_sem_t() { sem_destroy(&s); }
  void down() {
    while (sem_wait(&s) != 0) {
    }
  }
  void up() { sem_post(&s); }
};
struct cs_std {
  static constexpr auto name = fixed_string("std_counting_semaphore");
  std::counting_semaphore<64> s{kUnits};
  void down() { s.acquire(); }
  void up() { s.release(); }
};
using counters_table = kprim::bench::contender_table<cs_kprim, cs_sem_t, cs_std>;

template <class S>
struct counting_body {
  std::unique_ptr<kprim::cacheline_padded<S>> s = std::make_unique<kprim::cacheline_padded<S>>();
  void acquire(kprim::bench::worker&) { (*s)->down(); }
  void release(kprim::bench::worker&) { (*s)->up(); }
  /// kprim's slow-path statistics per down/up pair: sleeps_per_op (downs that queued and
  /// slept) and handoffs_per_op (up()s that gave their unit straight to a sleeper).
  void publish(benchmark::State& state, const kprim::bench::trial_result& r) const {
    if constexpr (std::is_same_v<S, cs_kprim>) {
      const double ops = static_cast<double>(r.total());
      if (!(ops > 0)) return;
      const kprim::semaphore& sem = (*s)->s;
      state.counters["sleeps_per_op"] = static_cast<double>(sem.nr_sleeps.load()) / ops;
      state.counters["handoffs_per_op"] = static_cast<double>(sem.nr_handoffs.load()) / ops;
    }
  }
};

template <class S>
void register_counting() {
  using namespace kprim::bench;
  for (unsigned n : current_options().threads) {
    trial_config cfg = base_config(n);
    case_id id{"sleepwake", "counting", std::string(S::name), n, {{"units", std::to_string(kUnits)}, {"cs", std::to_string(cfg.cs)}}};
    register_trial_or_control(std::is_same_v<S, cs_kprim>, id, cfg,
                              [] { return std::make_unique<counting_body<S>>(); });
  }
}

// ---- Thundering herd: N sleepers, one token per event. ----

/// herd_kprim - exclusive waiters on a wait queue; the event is wake_up() (one exclusive).
struct herd_kprim {
  static constexpr auto name = fixed_string("kprim_wake_up_exclusive");
  static constexpr int entry_evals = 2;  // wait_event_exclusive: at entry, after prepare
  kprim::wait_queue_head_t wq;
  template <class Pred>
  void wait(Pred p) { kprim::wait_event_exclusive(wq, p); }
  /// Returns the sleepers wake_up() took off the queue: the exact count of threads woken.
  template <class F>
  int post(F make_available) {
    make_available();
    return kprim::wake_up(&wq);
  }
  template <class F>
  void post_all(F make_available) {
    make_available();
    kprim::wake_up_all(&wq);
  }
};
/// herd_cv - std::condition_variable, every sleeper woken by notify_all().
struct herd_cv {
  static constexpr auto name = fixed_string("std_cv_notify_all");
  static constexpr int entry_evals = 1;  // wait(lock, pred): at entry
  std::mutex m;
  std::condition_variable c;
  template <class Pred>
  void wait(Pred p) {
    std::unique_lock g(m);
    c.wait(g, p);
  }
  /// notify_all() does not say how many it woke: -1 (the counters estimate it).
  template <class F>
  int post(F make_available) {
    {
      std::lock_guard g(m);
      make_available();
    }
    c.notify_all();
    return -1;
  }
  template <class F>
  void post_all(F make_available) { post(make_available); }
};
using herd_table = kprim::bench::contender_table<herd_kprim, herd_cv>;

template <class H>
void register_herd(unsigned sleepers) {
  using namespace kprim::bench;
  case_id id{"sleepwake", "herd", std::string(H::name), sleepers + 1, {{"sleepers", std::to_string(sleepers)}}};
  const auto budget = std::chrono::milliseconds(current_options().trial_ms);
  benchmark::RegisterBenchmark(id.name().c_str(), [budget, sleepers](benchmark::State& state) {
    for (auto _ : state) {
      H h;
      std::atomic<int> tokens{0};
      std::atomic<bool> stop{false};
      std::atomic<std::uint64_t> false_evals{0}, calls{0}, taken{0};
      std::vector<std::thread> ts;
      for (unsigned i = 0; i < sleepers; ++i)
        ts.emplace_back([&] {
          while (!stop.load(std::memory_order_acquire)) {
            calls.fetch_add(1, std::memory_order_relaxed);
            h.wait([&] {
              if (stop.load(std::memory_order_acquire)) return true;
              int t = tokens.load(std::memory_order_acquire);
              while (t > 0)
                if (tokens.compare_exchange_weak(t, t - 1, std::memory_order_acq_rel)) {
                  taken.fetch_add(1, std::memory_order_relaxed);
                  return true;
                }
              false_evals.fetch_add(1, std::memory_order_relaxed);
              return false;
            });
          }
        });
      // Let the sleepers fall asleep before the first event.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::uint64_t events = 0;
      long long woken_exact = 0;  // sum of post()'s counts, -1 when unknown
      const auto begin = clock::now();
      auto now = begin;
      bool stuck = false;
      while (now - begin < budget && !stuck) {
        const int w = h.post([&] { tokens.fetch_add(1, std::memory_order_acq_rel); });
        woken_exact = (w < 0 || woken_exact < 0) ? -1 : woken_exact + w;
        ++events;
        // The next event once this one is consumed (bounded: a stuck round ends the trial).
        const auto posted = clock::now();
        while (taken.load(std::memory_order_acquire) < events) {
          std::this_thread::yield();
          if (clock::now() - posted > std::chrono::seconds(1)) {
            stuck = true;
            break;
          }
        }
        now = clock::now();
      }
      const std::uint64_t false_at_end = false_evals.load(), calls_at_end = calls.load();
      stop.store(true, std::memory_order_release);
      h.post_all([] {});
      for (auto& t : ts) t.join();
      const double s = std::chrono::duration<double>(now - begin).count();
      report_loop(state, {static_cast<double>(events), s, sleepers + 1});
      // Each wait call's entry evaluations find no token by construction; the rest are
      // wake-ups that found nothing (approximate: a call that finds a token at entry skips
      // them, so this undercounts by at most that).
      const double structural = static_cast<double>(H::entry_evals) * static_cast<double>(calls_at_end);
      const double futile = std::max(0.0, static_cast<double>(false_at_end) - structural);
      state.counters["events"] = static_cast<double>(events);
      state.counters["futile_per_event"] = events ? futile / static_cast<double>(events) : 0;
      state.counters["woken_per_event"] = events ? (futile + static_cast<double>(events)) / static_cast<double>(events) : 0;
      if (woken_exact >= 0)  // exact, where the primitive says whom it woke
        state.counters["wakeups_per_event"] = events ? static_cast<double>(woken_exact) / static_cast<double>(events) : 0;
      if (stuck) state.SkipWithError("a herd round was not consumed within 1 s");
    }
  })->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

// ---- Bounded producer/consumer buffer. Items are never 0: 0 is the end marker. ----

constexpr unsigned kCapacity = 16;

/// A ring of kCapacity items; the caller's lock guards it.
struct ring {
  std::uint64_t slot[kCapacity];
  std::uint64_t head = 0, tail = 0;
  [[nodiscard]] bool full() const noexcept { return tail - head == kCapacity; }
  [[nodiscard]] bool empty() const noexcept { return tail == head; }
  void put(std::uint64_t v) noexcept { slot[tail++ % kCapacity] = v; }
  std::uint64_t get() noexcept { return slot[head++ % kCapacity]; }
};

/// Counting semaphores `empty` (free slots) and `full` (items), the ring under a spinlock:
/// the textbook buffer, with the semaphore type the only difference between the two rows.
template <class Sem>
struct pc_semaphores {
  Sem empty{kCapacity}, full{0};
  kprim::spinlock_t lock;
  ring r;
  void push(std::uint64_t v) {
    empty.down();
    {
      kprim::spin_guard<kprim::spinlock_t> g(lock);
      r.put(v);
    }
    full.up();
  }
  std::uint64_t pop() {
    full.down();
    std::uint64_t v;
    {
      kprim::spin_guard<kprim::spinlock_t> g(lock);
      v = r.get();
    }
    empty.up();
    return v;
  }
};
struct kprim_sem_units {
  kprim::semaphore s;
  explicit kprim_sem_units(unsigned n) : s(n) {}
  void down() { kprim::down(&s); }
  void up() { kprim::up(&s); }
};
struct sem_t_units {
  sem_t s;
  explicit sem_t_units(unsigned n) { sem_init(&s, 0, n); }
  ~sem_t_units() { sem_destroy(&s); }
  void down() {
    while (sem_wait(&s) != 0) {
    }
  }
  void up() { sem_post(&s); }
};
struct pc_kprim_sem : pc_semaphores<kprim_sem_units> {
  static constexpr auto name = fixed_string("kprim_semaphore");
};
struct pc_kprim_sem_aa : pc_kprim_sem {
  static constexpr auto name = fixed_string("kprim_semaphore_aa");
};
struct pc_sem_t : pc_semaphores<sem_t_units> {
  static constexpr auto name = fixed_string("sem_t");
};
/// Wait queues: the condition itself moves the item under the ring's lock (the kernel's
/// wait_event(wq, try_to_take())), exclusive so that one wake_up() wakes one waiter.
struct pc_waitqueue {
  static constexpr auto name = fixed_string("kprim_waitqueue");
  kprim::wait_queue_head_t not_full, not_empty;
  kprim::spinlock_t lock;
  ring r;
  void push(std::uint64_t v) {
    kprim::wait_event_exclusive(not_full, [&] {
      kprim::spin_guard<kprim::spinlock_t> g(lock);
      if (r.full()) return false;
      r.put(v);
      return true;
    });
    kprim::wake_up(&not_empty);
  }
  std::uint64_t pop() {
    std::uint64_t v = 0;
    kprim::wait_event_exclusive(not_empty, [&] {
      kprim::spin_guard<kprim::spinlock_t> g(lock);
      if (r.empty()) return false;
      v = r.get();
      return true;
    });
    kprim::wake_up(&not_full);
    return v;
  }
};
struct pc_std_cv {
  static constexpr auto name = fixed_string("std_condition_variable");
  std::mutex m;
  std::condition_variable not_full, not_empty;
  ring r;
  void push(std::uint64_t v) {
    std::unique_lock g(m);
    not_full.wait(g, [&] { return !r.full(); });
    r.put(v);
    g.unlock();
    not_empty.notify_one();
  }
  std::uint64_t pop() {
    std::unique_lock g(m);
    not_empty.wait(g, [&] { return !r.empty(); });
    const std::uint64_t v = r.get();
    g.unlock();
    not_full.notify_one();
    return v;
  }
};
struct pc_tbb {
  static constexpr auto name = fixed_string("tbb_concurrent_bounded_queue");
  tbb::concurrent_bounded_queue<std::uint64_t> q;
  pc_tbb() { q.set_capacity(kCapacity); }
  void push(std::uint64_t v) { q.push(v); }
  std::uint64_t pop() {
    std::uint64_t v = 0;
    q.pop(v);
    return v;
  }
};
using buffers = kprim::bench::contender_table<pc_kprim_sem, pc_kprim_sem_aa, pc_sem_t, pc_waitqueue,
                                              pc_std_cv, pc_tbb>;

/// What a prodcons trial's threads share; held by shared_ptr so that workers abandoned by the
/// watchdog never touch freed memory.
struct pc_shared {
  std::atomic<unsigned> ready{0}, finished{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<std::uint64_t> produced_n{0}, produced_sum{0}, consumed_n{0}, consumed_sum{0};
};

template <class Q>
void register_prodcons(unsigned producers, unsigned consumers) {
  using namespace kprim::bench;
  case_id id{"sleepwake", "prodcons", std::string(Q::name), producers + consumers, {{"producers", std::to_string(producers)}, {"consumers", std::to_string(consumers)}, {"capacity", std::to_string(kCapacity)}}};
  const auto budget = std::chrono::milliseconds(current_options().trial_ms);
  benchmark::RegisterBenchmark(id.name().c_str(), [budget, producers, consumers](benchmark::State& state) {
    for (auto _ : state) {
      auto q = std::make_shared<Q>();
      auto sh = std::make_shared<pc_shared>();
      const unsigned workers = producers + consumers + 1;  // + the closer
      std::vector<std::thread> ts;
      for (unsigned p = 0; p < producers; ++p)
        ts.emplace_back([q, sh, p] {
          sh->ready.fetch_add(1);
          while (!sh->go.load(std::memory_order_acquire)) std::this_thread::yield();
          std::uint64_t seq = 0, sum = 0;
          while (!sh->stop.load(std::memory_order_relaxed)) {
            const std::uint64_t v = (std::uint64_t{p + 1} << 40) | ++seq;
            q->push(v);
            sum += v;
          }
          sh->produced_n.fetch_add(seq);
          sh->produced_sum.fetch_add(sum);
          sh->finished.fetch_add(1, std::memory_order_acq_rel);
        });
      for (unsigned c = 0; c < consumers; ++c)
        ts.emplace_back([q, sh] {
          sh->ready.fetch_add(1);
          std::uint64_t n = 0, sum = 0;
          for (std::uint64_t v; (v = q->pop()) != 0; ++n) sum += v;
          sh->consumed_n.fetch_add(n);
          sh->consumed_sum.fetch_add(sum);
          sh->finished.fetch_add(1, std::memory_order_acq_rel);
        });
      // The closer: once every producer has stopped, one end marker per consumer.
      ts.emplace_back([q, sh, producers, consumers] {
        while (sh->finished.load(std::memory_order_acquire) < producers)
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        for (unsigned c = 0; c < consumers; ++c) q->push(0);
        sh->finished.fetch_add(1, std::memory_order_acq_rel);
      });
      while (sh->ready.load() < producers + consumers) std::this_thread::yield();
      const auto begin = clock::now();
      sh->go.store(true, std::memory_order_release);
      std::this_thread::sleep_for(budget);
      sh->stop.store(true, std::memory_order_relaxed);
      const auto limit = clock::now() + std::chrono::seconds(5);
      while (sh->finished.load(std::memory_order_acquire) < workers && clock::now() < limit)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      const auto end = clock::now();
      if (sh->finished.load() < workers) {
        for (auto& t : ts) t.detach();
        kprim::bench::detail::keep_alive(q);
        kprim::bench::detail::keep_alive(sh);
        state.SkipWithError("prodcons: the buffer did not drain within 5 s of the stop");
        continue;
      }
      for (auto& t : ts) t.join();
      const std::uint64_t items = sh->consumed_n.load();
      report_loop(state, {static_cast<double>(items), std::chrono::duration<double>(end - begin).count(),
                          producers + consumers});
      state.counters["items"] = static_cast<double>(items);
      if (items != sh->produced_n.load() || sh->consumed_sum.load() != sh->produced_sum.load())
        state.SkipWithError("prodcons: the items consumed are not the items produced (count or checksum)");
    }
  })->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

void register_all() {
  events::for_each([]<class E>() { register_pingpong<E>(); });
  counters_table::for_each([]<class S>() { register_counting<S>(); });
  for (unsigned n : {8u, 64u}) herd_table::for_each([n]<class H>() { register_herd<H>(n); });
  for (unsigned n : kprim::bench::current_options().threads)
    if (n >= 2) buffers::for_each([n]<class Q>() { register_prodcons<Q>(n / 2, n - n / 2); });
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
