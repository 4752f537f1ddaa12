// bench_layout: what cache-line layout is worth.
//   counters/<layout>  - each thread bumps its own counter; packed counters share lines (false
//                        sharing), padded ones (kprim::cacheline_padded) do not, padded_pair
//                        also keeps the adjacent-line prefetcher from pairing two slots.
//                        _plain: WRITE_ONCE(c, c + 1) (one writer per counter, as this_cpu_inc);
//                        _atomic: a locked add (atomic_inc).
//   hot_cold/<layout>  - each thread streams over a shared array of records reading the hot
//                        field of 8 consecutive records per operation; mixed keeps the 120 cold bytes next to the hot
//                        key (two lines per record), split keeps hot keys in their own dense
//                        array (eight records per line).
// Both run over the thread sweep through the harness (one operation = one increment or 8
// records visited; ns per operation over all threads).
#include <kprim/bench/registry.hpp>

#include <kprim/atomic.hpp>
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using kprim::bench::worker;

// ---- counters ----------------------------------------------------------------------------

struct packed_slot {
  std::uint64_t v = 0;
};
static_assert(sizeof(packed_slot) == 8);  // eight threads' counters per line

struct alignas(kprim::cacheline_size) padded_slot {
  std::uint64_t v = 0;
};
static_assert(kprim::is_cacheline_padded_v<padded_slot>);

struct alignas(kprim::cacheline_pair_size) padded_pair_slot {
  std::uint64_t v = 0;
};
static_assert(sizeof(padded_pair_slot) == 2 * kprim::cacheline_size);

struct plain_inc {
  static void inc(std::uint64_t& c) noexcept { WRITE_ONCE(c, READ_ONCE(c) + 1); }
};
struct atomic_inc {
  static void inc(std::uint64_t& c) noexcept {
    kprim::atomic64_inc(reinterpret_cast<kprim::atomic64_t*>(&c));
  }
};

template <class Slot, class Inc, kprim::bench::fixed_string Name>
struct counter_layout {
  static constexpr auto name = Name;
  using slot = Slot;
  using inc = Inc;
};

/// counters_body<L> - thread t increments slot t of one array of L::slot.
template <class L>
class counters_body {
 public:
  explicit counters_body(unsigned threads) : slots_(threads) {}
  void acquire(worker& t) { L::inc::inc(slots_[t.tid].v); }
  void release(worker&) {}
  std::string check(std::uint64_t total_ops) const {
    std::uint64_t sum = 0;
    for (const auto& s : slots_) sum += s.v;
    if (sum == total_ops) return {};
    return std::string(L::name) + ": counters sum " + std::to_string(sum) + " != operations " +
           std::to_string(total_ops);
  }

 private:
  std::vector<typename L::slot> slots_;  // C++17 aligned new honours the slot's alignment
};

// ---- hot/cold split ------------------------------------------------------------------------

constexpr std::size_t records = std::size_t{1} << 20;  // 128 MiB mixed (past any L3), 8 MiB of hot keys

struct mixed_record {
  std::uint64_t key;  // hot: read by every visit
  char cold[120];     // cold: payload read only on a (never taken here) match
};
static_assert(sizeof(mixed_record) == 2 * kprim::cacheline_size);

// Every byte is written at construction (untouched pages would all be the kernel's one
// shared zero page), and keys are read with READ_ONCE so no load can be elided.
struct mixed {
  static constexpr const char* name = "mixed";
  std::vector<mixed_record> recs = std::vector<mixed_record>(records);
  mixed() {
    for (std::size_t i = 0; i < records; ++i) {
      recs[i].key = i;
      std::memset(recs[i].cold, static_cast<int>(i & 0x7f), sizeof recs[i].cold);
    }
  }
  std::uint64_t key(std::size_t i) const noexcept { return READ_ONCE(recs[i].key); }
};
struct split {
  static constexpr const char* name = "split";
  std::vector<std::uint64_t> keys = std::vector<std::uint64_t>(records);  // hot, dense
  std::vector<std::array<char, 120>> cold = std::vector<std::array<char, 120>>(records);
  split() {
    for (std::size_t i = 0; i < records; ++i) {
      keys[i] = i;
      std::memset(cold[i].data(), static_cast<int>(i & 0x7f), cold[i].size());
    }
  }
  std::uint64_t key(std::size_t i) const noexcept { return READ_ONCE(keys[i]); }
};

/// Records visited per operation: one line of split keys, so the harness's per-operation
/// overhead does not hide the memory traffic.
constexpr unsigned per_op = 8;

/// hot_cold_body<L> - each thread walks the records in order, wrapping around, and reads
/// the hot keys of per_op consecutive records per operation.
template <class L>
class hot_cold_body {
 public:
  void acquire(worker& t) {
    std::uint64_t sum = 0;
    for (unsigned k = 0; k < per_op; ++k) sum += data_.key(t.cur + k);
    benchmark::DoNotOptimize(sum);
    t.cur = static_cast<unsigned>((t.cur + per_op) & (records - 1));
  }
  void release(worker&) {}

 private:
  L data_;
};

template <class Table>
void register_counters() {
  using namespace kprim::bench;
  // The family's A/A control (results/SCHEMA.md, "A/A controls"): padded_atomic in counters.
  for (unsigned n : current_options().threads)
    Table::for_each([n]<class L>() {
      register_trial_or_control(std::string_view(L::name) == "padded_atomic", case_id{"layout", "counters", L::name, n, {}},
                                base_config(n), [n] { return std::make_unique<counters_body<L>>(n); });
    });
}

template <class Table>
void register_hot_cold() {
  using namespace kprim::bench;
  for (unsigned n : current_options().threads)
    Table::for_each([n]<class L>() {
      register_trial(case_id{"layout", "hot_cold", L::name, n, {{"records", std::to_string(records)}, {"per_op", std::to_string(per_op)}}},
                     base_config(n), [] { return std::make_unique<hot_cold_body<L>>(); });
    });
}

void register_all() {
  using kprim::bench::contender_table;
  register_counters<contender_table<counter_layout<packed_slot, plain_inc, "packed_plain">,
                                    counter_layout<padded_slot, plain_inc, "padded_plain">,
                                    counter_layout<padded_pair_slot, plain_inc, "padded_pair_plain">,
                                    counter_layout<packed_slot, atomic_inc, "packed_atomic">,
                                    counter_layout<padded_slot, atomic_inc, "padded_atomic">>>();
  register_hot_cold<contender_table<mixed, split>>();
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
