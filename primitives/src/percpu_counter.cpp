// percpu_counter.cpp: the cold paths of kprim/percpu_counter.hpp - the default batch, the
// lock-free fold, the exact sum and set.
#include <kprim/percpu_counter.hpp>

namespace kprim {

namespace {
std::int64_t wrap_sub(std::int64_t a, std::int64_t b) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
}  // namespace

std::int64_t percpu_counter_batch() noexcept {
  static const std::int64_t batch = std::max<std::int64_t>(32, 2 * std::int64_t{nr_cpu_ids()});
  return batch;
}

void percpu_counter::fold(slot* s) noexcept {
  std::atomic_ref<std::int64_t> folded(s->folded), local(s->local);
  std::int64_t was = folded.load(std::memory_order_relaxed), now;
  // `now` is read after `was` was seen, so a successful CAS never moves the watermark back
  // past a value another fold already published; each success owns (was, now].
  do {
    now = local.load(std::memory_order_relaxed);
  } while (!folded.compare_exchange_weak(was, now, std::memory_order_relaxed));
  count_.fetch_add(wrap_sub(now, was), std::memory_order_relaxed);
}

std::int64_t percpu_counter::sum() noexcept {
  std::uint64_t total = static_cast<std::uint64_t>(base_);
  for_each_possible_cpu([&](unsigned cpu) {
    total += static_cast<std::uint64_t>(
        std::atomic_ref<std::int64_t>(slots_.slot(cpu)->local).load(std::memory_order_relaxed));
  });
  return static_cast<std::int64_t>(total);
}

void percpu_counter::set(std::int64_t amount) noexcept {
  for_each_possible_cpu([&](unsigned cpu) {
    slot* s = slots_.slot(cpu);
    std::atomic_ref<std::int64_t>(s->local).store(0, std::memory_order_relaxed);
    std::atomic_ref<std::int64_t>(s->folded).store(0, std::memory_order_relaxed);
  });
  base_ = amount;
  count_.store(amount, std::memory_order_relaxed);
}

}  // namespace kprim
