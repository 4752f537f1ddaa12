// bench_rwlocks: reader-writer locks at read fractions 50, 90, 99 and 100%. One generic body
// (rw_body); every contender is a row of the `contenders` table: an adapter with read(f)
// (run f under a read lock, or, for a seqlock, until a stable copy) and write_lock/unlock.
// Exclusive locks live in bench_locks.
#include <kprim/bench/registry.hpp>

#include "contenders/rw_locks.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <new>
#include <shared_mutex>
#include <string>
#include <type_traits>

namespace {

using kprim::bench::worker;

using namespace kprim::bench::rw;

// ---- The contender table: every row runs every read fraction. ----
using contenders =
    kprim::bench::contender_table<nolock, kprim_qrwlock, kprim_rwsem, kprim_seqlock, pthread_rwlock,
                                  shared_style<std::shared_mutex, "std_shared_mutex">,
                                  shared_style<tbb::spin_rw_mutex, "tbb_spin_rw_mutex">,
                                  shared_style<tbb::rw_mutex, "tbb_rw_mutex">, tbb_queuing_rw, ck_rw>;

// ---- The generic body. ----

/// rw_body<L> - one lock guarding a record of `words` equal words on its own cache line
/// (read-mostly, as the data of a read-mostly lock is). Each operation is a read with
/// probability reads/100: copy the record (relaxed atomic loads: seqlock readers race with
/// the writer by design), else a write: bump every word under the write lock. check():
/// every copy a reader kept must have had equal words (a writer overlapping a reader, or
/// a seqlock reader keeping an unstable copy, tears it).
template <class L>
class rw_body {
 public:
  static constexpr unsigned words = 4;

  explicit rw_body(unsigned reads_percent) : reads_(reads_percent) {}

  void acquire(worker& t) {
    t.cur = static_cast<unsigned>(t.next_random() % 100) < reads_;
    if (t.cur) {
      const bool ok = lock_.read(t, [this] {
        const std::uint64_t first = load(data_->w[0]);
        bool same = true;
        for (unsigned i = 1; i < words; ++i) same &= load(data_->w[i]) == first;
        return same;
      });
      if (!ok) torn_.fetch_add(1, std::memory_order_relaxed);
    } else {
      lock_.write_lock(t);
      for (auto& w : data_->w) store(w, load(w) + 1);
    }
  }
  void release(worker& t) {
    if (!t.cur) lock_.write_unlock(t);
  }
  std::string check(std::uint64_t) const {
    if constexpr (!L::exclusive) return {};
    if (const auto n = torn_.load(); n != 0)
      return std::string(L::name) + ": " + std::to_string(n) + " readers kept a torn record";
    return {};
  }

 private:
  struct alignas(kprim::cacheline_size) record {
    std::array<std::uint64_t, words> w{};
  };
  static std::uint64_t load(std::uint64_t& v) { return std::atomic_ref<std::uint64_t>(v).load(std::memory_order_relaxed); }
  static void store(std::uint64_t& v, std::uint64_t n) {
    std::atomic_ref<std::uint64_t>(v).store(n, std::memory_order_relaxed);
  }

  unsigned reads_;
  kprim::cacheline_padded<L> lock_padded_;
  L& lock_ = *lock_padded_;
  std::unique_ptr<record> data_ = std::make_unique<record>();
  std::atomic<std::uint64_t> torn_{0};
};

constexpr unsigned read_fractions[] = {50, 90, 99, 100};

template <class L>
void register_contender() {
  using namespace kprim::bench;
  const options& o = current_options();
  for (unsigned reads : read_fractions)
    for (unsigned n : o.threads) {
      const trial_config cfg = base_config(n);
      case_id id{"rwlocks", "mixed", L::name, n, {{"reads", std::to_string(reads)}, {"cs", std::to_string(cfg.cs)}, {"gap", std::to_string(cfg.gap)}}};
      // The family's A/A control (results/SCHEMA.md, "A/A controls"): kprim_qrwlock at reads:90.
      register_trial_or_control(std::is_same_v<L, kprim_qrwlock> && reads == 90, id, cfg,
                                [reads] { return std::make_unique<rw_body<L>>(reads); });
    }
}

void register_all() {
  contenders::for_each([]<class L>() { register_contender<L>(); });
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
