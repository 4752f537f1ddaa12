// percpu_counter.cpp: the cold paths of kprim/percpu_counter.hpp - folding a per-CPU delta
// into the global count, the exact sum, and set. All run under the counter's mutex.
#include <kprim/percpu_counter.hpp>

namespace kprim {

std::int64_t percpu_counter_batch() noexcept {
  static const std::int64_t batch = std::max<std::int64_t>(32, 2 * std::int64_t{nr_cpu_ids()});
  return batch;
}

namespace {
// count_ is written only under the lock, so a relaxed load and store replace a locked add.
void add_locked(std::atomic<std::int64_t>& count, std::int64_t v) noexcept {
  count.store(count.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}
}  // namespace

void percpu_counter::fold_current(std::int64_t amount) noexcept {
  std::lock_guard<std::mutex> g(lock_);
  // Whatever CPU the thread is on now: the delta taken from that slot moves whole, and the
  // lock keeps percpu_counter_sum() from seeing it in transit.
  add_locked(count_, this_cpu_xchg(deltas_, std::int64_t{0}) + amount);
}

void percpu_counter::fold_slot(std::int64_t* slot) noexcept {
  std::lock_guard<std::mutex> g(lock_);
  add_locked(count_, std::atomic_ref<std::int64_t>(*slot).exchange(0, std::memory_order_relaxed));
}

std::int64_t percpu_counter::sum() noexcept {
  std::lock_guard<std::mutex> g(lock_);
  return count_.load(std::memory_order_relaxed) + per_cpu_sum(deltas_);
}

void percpu_counter::set(std::int64_t amount) noexcept {
  std::lock_guard<std::mutex> g(lock_);
  for_each_possible_cpu([&](unsigned cpu) {
    std::atomic_ref<std::int64_t>(*per_cpu_ptr(deltas_, cpu)).store(0, std::memory_order_relaxed);
  });
  count_.store(amount, std::memory_order_relaxed);
}

}  // namespace kprim
