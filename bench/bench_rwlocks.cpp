// bench_rwlocks: reader-writer locks at read fractions 50, 90, 99 and 100%. One generic body
// (rw_body); every contender is a row of the `contenders` table: an adapter with read(f)
// (run f under a read lock, or, for a seqlock, until a stable copy) and write_lock/unlock.
// Exclusive locks live in bench_locks.
#include <kprim/bench/registry.hpp>

#include <kprim/rwlock.hpp>
#include <kprim/rwsem.hpp>
#include <kprim/seqlock.hpp>

#include <ck_rwlock.h>
#include <pthread.h>
#include <oneapi/tbb/queuing_rw_mutex.h>
#include <oneapi/tbb/rw_mutex.h>
#include <oneapi/tbb/spin_rw_mutex.h>

#include <array>
#include <atomic>
#include <memory>
#include <new>
#include <shared_mutex>
#include <string>

namespace {

using kprim::bench::worker;

// ---- Contender adapters. `exclusive`: writers exclude readers, so check() may verify. ----

/// Lock-based readers: run f between the adapter's read_lock and read_unlock.
template <class Self>
struct locked_reads {
  template <class F>
  auto read(worker& t, F f) {
    auto& self = static_cast<Self&>(*this);
    self.read_lock(t);
    auto r = f();
    self.read_unlock(t);
    return r;
  }
};

struct nolock : locked_reads<nolock> {
  static constexpr const char* name = "nolock";
  static constexpr bool exclusive = false;
  void read_lock(worker&) {}
  void read_unlock(worker&) {}
  void write_lock(worker&) {}
  void write_unlock(worker&) {}
};

/// Anything with the std::shared_mutex members: std::shared_mutex, tbb::spin_rw_mutex,
/// tbb::rw_mutex, and kprim's qrwlock and rw_semaphore (which offer the same adapters).
template <class M, const char* Name>
struct shared_style : locked_reads<shared_style<M, Name>> {
  static constexpr const char* name = Name;
  static constexpr bool exclusive = true;
  M m;
  void read_lock(worker&) { m.lock_shared(); }
  void read_unlock(worker&) { m.unlock_shared(); }
  void write_lock(worker&) { m.lock(); }
  void write_unlock(worker&) { m.unlock(); }
};
constexpr char std_shared_mutex_name[] = "std_shared_mutex";
constexpr char tbb_spin_rw_mutex_name[] = "tbb_spin_rw_mutex";
constexpr char tbb_rw_mutex_name[] = "tbb_rw_mutex";

/// kprim::qrwlock through the kernel verbs.
struct kprim_qrwlock : locked_reads<kprim_qrwlock> {
  static constexpr const char* name = "kprim_qrwlock";
  static constexpr bool exclusive = true;
  kprim::rwlock_t l;
  void read_lock(worker&) { kprim::read_lock(&l); }
  void read_unlock(worker&) { kprim::read_unlock(&l); }
  void write_lock(worker&) { kprim::write_lock(&l); }
  void write_unlock(worker&) { kprim::write_unlock(&l); }
};

/// kprim::rw_semaphore through the kernel verbs.
struct kprim_rwsem : locked_reads<kprim_rwsem> {
  static constexpr const char* name = "kprim_rwsem";
  static constexpr bool exclusive = true;
  kprim::rw_semaphore s;
  void read_lock(worker&) { kprim::down_read(&s); }
  void read_unlock(worker&) { kprim::up_read(&s); }
  void write_lock(worker&) { kprim::down_write(&s); }
  void write_unlock(worker&) { kprim::up_write(&s); }
};

/// kprim::seqlock_t: lockless readers retry until they copied a stable value.
struct kprim_seqlock {
  static constexpr const char* name = "kprim_seqlock";
  static constexpr bool exclusive = true;
  kprim::seqlock_t sl;
  template <class F>
  auto read(worker&, F f) {
    decltype(f()) r;
    std::uint32_t seq;
    do {
      seq = kprim::read_seqbegin(&sl);
      r = f();
    } while (kprim::read_seqretry(&sl, seq));
    return r;
  }
  void write_lock(worker&) { kprim::write_seqlock(&sl); }
  void write_unlock(worker&) { kprim::write_sequnlock(&sl); }
};

struct pthread_rwlock : locked_reads<pthread_rwlock> {
  static constexpr const char* name = "pthread_rwlock";
  static constexpr bool exclusive = true;
  pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
  ~pthread_rwlock() { pthread_rwlock_destroy(&l); }
  void read_lock(worker&) { pthread_rwlock_rdlock(&l); }
  void read_unlock(worker&) { pthread_rwlock_unlock(&l); }
  void write_lock(worker&) { pthread_rwlock_wrlock(&l); }
  void write_unlock(worker&) { pthread_rwlock_unlock(&l); }
};

/// tbb::queuing_rw_mutex is reached through its scoped_lock (the queue node), kept in the
/// worker's node storage between lock and unlock.
struct tbb_queuing_rw : locked_reads<tbb_queuing_rw> {
  static constexpr const char* name = "tbb_queuing_rw_mutex";
  static constexpr bool exclusive = true;
  using guard = tbb::queuing_rw_mutex::scoped_lock;
  static_assert(sizeof(guard) <= sizeof(worker::node_storage));
  tbb::queuing_rw_mutex m;
  void lock(worker& t, bool write) { new (t.node_storage) guard(m, write); }
  void unlock(worker& t) {
    auto* g = std::launder(reinterpret_cast<guard*>(t.node_storage));
    g->release();
    g->~guard();
  }
  void read_lock(worker& t) { lock(t, false); }
  void read_unlock(worker& t) { unlock(t); }
  void write_lock(worker& t) { lock(t, true); }
  void write_unlock(worker& t) { unlock(t); }
};

struct ck_rw : locked_reads<ck_rw> {
  static constexpr const char* name = "ck_rwlock";
  static constexpr bool exclusive = true;
  ck_rwlock_t l = CK_RWLOCK_INITIALIZER;
  void read_lock(worker&) { ck_rwlock_read_lock(&l); }
  void read_unlock(worker&) { ck_rwlock_read_unlock(&l); }
  void write_lock(worker&) { ck_rwlock_write_lock(&l); }
  void write_unlock(worker&) { ck_rwlock_write_unlock(&l); }
};

// ---- The contender table: every row runs every read fraction. ----
template <class... L>
struct table {};
using contenders =
    table<nolock, kprim_qrwlock, kprim_rwsem, kprim_seqlock, pthread_rwlock,
          shared_style<std::shared_mutex, std_shared_mutex_name>,
          shared_style<tbb::spin_rw_mutex, tbb_spin_rw_mutex_name>,
          shared_style<tbb::rw_mutex, tbb_rw_mutex_name>, tbb_queuing_rw, ck_rw>;

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
      case_id id{"rwlocks", "mixed", L::name, n,
                 {{"reads", std::to_string(reads)}, {"cs", std::to_string(cfg.cs)}, {"gap", std::to_string(cfg.gap)}}};
      register_trial(id, cfg, [reads] { return std::make_unique<rw_body<L>>(reads); });
    }
}

template <class... L>
void register_table(table<L...>) {
  (register_contender<L>(), ...);
}

void register_all() { register_table(contenders{}); }

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
