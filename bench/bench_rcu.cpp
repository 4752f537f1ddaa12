// bench_rcu: RCU (kprim/rcu.hpp, every liburcu flavour in one process) against reader-writer
// locks on read-mostly data. One generic body per workload over a table of synchronisation
// policies ("sync"): a small adapter each (read_lock/unlock, write_lock/unlock, retire).
// Workloads:
//   list, hash   lookups of random keys in an RCU list (64 keys) / hash table (1024 keys, 1024
//                buckets); a fraction `writes:<percent>` of operations replaces the entry of a
//                random key with an updated copy (RCU: under the key's bucket lock (list: the
//                list's lock), old copy kfree_rcu()ed, copies from per-worker pools;
//                locks: under the exclusive lock, old copy deleted; seqlock: the value is
//                updated in place, as a seqlock only protects data readers copy out, never
//                pointers they follow into freed memory). hash adds liburcu's lock-free
//                rculfhash as a peer.
//   read_empty   an empty read-side critical section; `nolock` (an empty loop) is the baseline.
//                qsbr is used as intended: rcu_read_lock()/unlock() emit nothing, and a reader
//                announces a quiescent state once per `qs_every` operations (rcu_qsbr: 1024,
//                the batch of requests a server loop would serve between two; the counter
//                records it) at the harness's per-thread boundaries (boundary_workload in
//                kprim/bench/harness.hpp), so the loop between them is the empty loop's;
//                rcu_qsbr_qs1 announces one after every section (the cost of the announcement
//                itself).
//   Every RCU row of list/hash also reports its flavour's call_rcu() callback thread:
//   cb_thread_cpu_pct (its CPU time over the trial's wall time, x100: the share of one CPU it
//   took from the readers) and cb_thread_ns_per_op (that CPU time per operation). kfree_rcu()
//   batches deferred frees a page at a time (kprim/rcu.hpp), so the thread runs one callback
//   per page.
//   grace_period one thread calls synchronize_rcu() in a loop while the others read:
//                gp_p50_ns / gp_p99_ns / gp_max_ns / gp_count are the grace-period latencies.
//   callback_storm every thread kfree_rcu()s fresh objects as fast as it can:
//                pending_max_objs / pending_max_bytes are the most memory waiting for callbacks.
#include <kprim/bench/registry.hpp>
#include <kprim/llist.hpp>
#include <kprim/rcu.hpp>
#include <kprim/rcu/bp.hpp>
#include <kprim/rcu/mb.hpp>
#include <kprim/rcu/memb.hpp>
#include <kprim/rcu/qsbr.hpp>
#include <kprim/rcu_hashtable.hpp>
#include <kprim/rculist.hpp>
#include <kprim/spinlock.hpp>

#include "contenders/rw_locks.hpp"

#include <urcu/rculfhash.h>

#include <oneapi/tbb/queuing_rw_mutex.h>
#include <oneapi/tbb/spin_rw_mutex.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using kprim::bench::worker;
namespace rw = kprim::bench::rw;

/// Per-worker element pools, so that an update's allocation touches only its own thread's
/// lines: freed elements go back to the pool that allocated them (the call_rcu() thread frees
/// most of them, a page of them at a time: one llist_add() each onto the owner's `returned`
/// list, which stays in that thread's cache through the page), and the owner takes the whole
/// returned list with one exchange when its private list runs dry. glibc's malloc instead sends
/// each remote free through the owner arena's lock and bins (lines both threads write).
/// Worker tid t uses pools[t] (set when it registers with RCU; tid >= max_pools and threads
/// that never register use operator new). Pools live as long as the process: elements outlive
/// the worker thread that allocated them (the table keeps them), and the next trial's worker
/// of the same tid reuses them.
struct alignas(kprim::cacheline_size) elem_pool {
  static constexpr unsigned max_pools = 256;
  kprim::llist_node* free = nullptr;                            // owner only
  alignas(kprim::cacheline_size) kprim::llist_head returned{};  // any thread adds; owner empties
};
elem_pool pools[elem_pool::max_pools];
thread_local elem_pool* this_thread_pool = nullptr;

/// The element every workload stores: one key, one value bumped by each update, and a link for
/// each structure (a list, an hlist bucket, rculfhash) plus the rcu_head that frees it.
/// Allocated from the calling worker's pool; a 16-byte header before it names that pool.
struct elem {
  static constexpr std::size_t header = 16;
  static void* operator new(std::size_t n) {
    elem_pool* p = this_thread_pool;
    if (p) {
      if (!p->free && __atomic_load_n(&p->returned.first, __ATOMIC_RELAXED))
        p->free = kprim::llist_del_all(&p->returned);
      if (kprim::llist_node* f = p->free) {
        p->free = f->next;
        return f;
      }
    }
    auto* raw = static_cast<unsigned char*>(::operator new(n + header));
    *reinterpret_cast<elem_pool**>(raw) = p;
    return raw + header;
  }
  static void operator delete(void* ptr) {
    auto* raw = static_cast<unsigned char*>(ptr) - header;
    if (elem_pool* p = *reinterpret_cast<elem_pool**>(raw))
      kprim::llist_add(static_cast<kprim::llist_node*>(ptr), &p->returned);
    else
      ::operator delete(raw);
  }

  std::uint64_t key;
  std::uint64_t value;
  kprim::list_head node{};
  kprim::hlist_node hnode{};
  cds_lfht_node lfnode{};
  kprim::rcu_head rcu{};
};

/// Per-thread state of one operation, between acquire() and release(), in the worker's node
/// storage (trivially destructible).
struct op_state {
  elem* old;                ///< the copy an update replaced, retired in release()
  kprim::spinlock_t* lock;  ///< the bucket (or list) lock an RCU update holds
  std::uint64_t sink;       ///< folds read values so lookups cannot be optimised away
  bool write;
  bool registered;  ///< this worker thread holds its RCU registration
};
static_assert(sizeof(op_state) <= rw::body_state_bytes, "queue-lock rows keep their node after it");

// ---- Synchronisation policies: the contender table's rows ------------------------------------

/// Registers the calling worker thread with flavour F (the harness runs a fresh thread per
/// trial; the registration ends with the thread). Out of line and given no pointer, so the
/// per-operation check stays one load and a branch and the worker does not escape.
template <class F>
[[gnu::noinline, gnu::cold]] void rcu_register_slow() {
  static thread_local std::optional<kprim::rcu_thread<F>> reg;
  reg.emplace();
}
template <class F>
inline void rcu_register_once(worker& t) {
  op_state& s = t.node<op_state>();
  if (likely(s.registered)) return;
  rcu_register_slow<F>();
  if (t.tid < elem_pool::max_pools) this_thread_pool = &pools[t.tid];
  s.registered = true;
}

/// The qsbr rows' cadence: one quiescent state per this many operations (about a microsecond
/// of empty sections, tens of microseconds of hash lookups: grace periods still end within
/// that). Each boundary costs the loop one mispredicted branch and the announcement (~18 ns
/// here, measured at 64: 0.29 ns per section, 1.44x the empty loop; at 1024 it is in the noise).
constexpr unsigned qsbr_qs_every = 1024;

/// RCU of flavour F: lock-free readers; updaters serialised by the structure's own update
/// locks (the hash table's per-bucket locks, as the kernel's rhashtable bucket locks; the
/// list's one lock); old copies freed after a grace period (kfree_rcu). The worker registers at the harness's first boundary
/// (kprim/bench/harness.hpp, boundary_workload); qsbr threads announce a quiescent state at
/// every boundary, QsEvery operations (reads and updates alike) apart, as a qsbr server loop
/// does between batches of requests. The countdown is the harness loop's own (a register), so
/// rcu_read_lock()/unlock() are all a read section costs between boundaries: nothing.
template <kprim::rcu_flavour_type F, unsigned QsEvery = qsbr_qs_every>
struct rcu_sync {
  using flavour = F;
  static constexpr unsigned qs_every = F::needs_quiescent_states ? QsEvery : 0;
  /// memb, mb, bp: one boundary before the first operation (registration) is all they need.
  static constexpr std::uint64_t boundary_every = qs_every ? qs_every : ~std::uint64_t{0};
  static constexpr auto name =
      kprim::bench::fixed_string("rcu_") + kprim::bench::fixed_string<F::name.size() + 1>::of(F::name);
  static constexpr bool structure_locks = true;  // read_mostly_body takes DS::update_lock(key)
  ~rcu_sync() { kprim::rcu_barrier<F>(); }       // no callbacks outlive the trial
  void boundary(worker& t) {
    if constexpr (F::needs_quiescent_states)
      if (t.node<op_state>().registered) kprim::rcu_quiescent_state<F>();
    rcu_register_once<F>(t);
  }
  void read_lock(worker&) { kprim::rcu_read_lock<F>(); }
  void read_unlock(worker&) { kprim::rcu_read_unlock<F>(); }
  void retire(elem* e) { kprim::kfree_rcu<&elem::rcu, F>(e); }
};

/// sync_boundary<S> - S takes the harness's per-thread boundary hook (the RCU rows).
template <class S>
concept sync_boundary = requires(S& s, worker& t) {
  s.boundary(t);
  { S::boundary_every } -> std::convertible_to<std::uint64_t>;
};
/// The boundary cadence a body over sync S declares (unused when S has no hook).
template <class S>
constexpr std::uint64_t boundary_every_of() {
  if constexpr (sync_boundary<S>)
    return S::boundary_every;
  else
    return 0;
}

/// memb freeing each old copy with its own call_rcu() (what kfree_rcu() did before it batched):
/// the batching's A/B row (hash only), its callback thread's share beside rcu_memb's.
struct rcu_memb_call_rcu : rcu_sync<kprim::rcu_memb> {
  static constexpr const char* name = "rcu_memb_call_rcu";
  static void free_elem(kprim::rcu_head* h) { delete container_of(h, elem, rcu); }
  void retire(elem* e) { kprim::call_rcu<kprim::rcu_memb>(&e->rcu, &free_elem); }
};

/// qsbr announcing a quiescent state after every section: the cost of the announcement itself
/// (read_empty only).
struct rcu_qsbr_qs1 : rcu_sync<kprim::rcu_qsbr, 1> {
  static constexpr const char* name = "rcu_qsbr_qs1";
  // In the section's own code, not at a harness boundary (which would take the loop's slow
  // path every operation and time that instead): a boundary only registers the thread.
  static constexpr std::uint64_t boundary_every = ~std::uint64_t{0};
  void read_unlock(worker&) {
    kprim::rcu_read_unlock<kprim::rcu_qsbr>();
    kprim::rcu_quiescent_state<kprim::rcu_qsbr>();
  }
};

/// publish_qs_every() - the qsbr cadence of row S as the `qs_every` counter (qsbr rows only).
template <class S>
void publish_qs_every(benchmark::State& st) {
  if constexpr (requires { S::qs_every; })
    if (S::qs_every != 0) st.counters["qs_every"] = S::qs_every;
}

/// Times the CPU the call_rcu() callback thread of row S's flavour uses (RCU rows only; a
/// no-op for lock rows): started at construction, published as cb_thread_cpu_pct and
/// cb_thread_ns_per_op.
template <class S>
class callback_thread_clock {
 public:
  callback_thread_clock() {
    if constexpr (requires { typename S::flavour; }) {
      if (pthread_getcpuclockid(S::flavour::callback_thread(), &clk_) == 0) {
        cpu0_ = now(clk_);
        wall0_ = now(CLOCK_MONOTONIC);
        ok_ = true;
      }
    }
  }
  void publish(benchmark::State& st, const kprim::bench::trial_result& r) const {
    if (!ok_) return;
    const double cpu = now(clk_) - cpu0_, wall = now(CLOCK_MONOTONIC) - wall0_;
    st.counters["cb_thread_cpu_pct"] = wall > 0 ? 100.0 * cpu / wall : 0.0;
    st.counters["cb_thread_ns_per_op"] = r.total() ? cpu / static_cast<double>(r.total()) : 0.0;
  }

 private:
  static double now(clockid_t c) {
    timespec ts{};
    clock_gettime(c, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }
  clockid_t clk_{};
  double cpu0_ = 0, wall0_ = 0;
  bool ok_ = false;
};

/// A reader-writer lock row of contenders/rw_locks.hpp (its name is the row's): readers
/// exclude writers, so the writer deletes the old copy at once.
template <class L>
struct rw_row : L {
  void retire(elem* e) { delete e; }
};
using std_shared_mutex = rw_row<rw::shared_style<std::shared_mutex, "std_shared_mutex">>;
using tbb_spin_rw_mutex = rw_row<rw::shared_style<tbb::spin_rw_mutex, "tbb_spin_rw_mutex">>;
using kprim_qrwlock = rw_row<rw::kprim_qrwlock>;
using kprim_rwsem = rw_row<rw::kprim_rwsem>;
using pthread_rwlock = rw_row<rw::pthread_rwlock>;
using tbb_queuing_rw_mutex = rw_row<rw::tbb_queuing_rw>;

/// The kernel's seqlock_t: readers never write shared memory and retry when a writer ran;
/// writers (serialised by the seqlock's spinlock) update values in place, never unlink.
struct kprim_seqlock : rw_row<rw::kprim_seqlock> {
  static constexpr bool in_place_updates = true;
};

/// The empty-loop baseline (read_empty only).
struct nolock {
  static constexpr const char* name = "nolock";
  void read_lock(worker&) {}
  void read_unlock(worker&) {}
};

using kprim::bench::contender_table;
using rcu_flavours = contender_table<rcu_sync<kprim::rcu_memb>, rcu_sync<kprim::rcu_qsbr>, rcu_sync<kprim::rcu_mb>,
                                     rcu_sync<kprim::rcu_bp>>;
using rwlocks = contender_table<kprim_qrwlock, kprim_rwsem, std_shared_mutex, pthread_rwlock, tbb_spin_rw_mutex,
                                tbb_queuing_rw_mutex>;

// ---- Data structures: an RCU list and an RCU hash table --------------------------------------

/// list of `keys` elements; lookup walks from the head (half the list on average).
struct list_ds {
  static constexpr const char* workload = "list";
  static constexpr std::uint64_t keys = 64;
  kprim::list_head head;
  /// RCU rows' update lock: one for the list (list_replace_rcu() of neighbours writes both),
  /// on a line of its own so taking it does not invalidate the readers' line holding head.
  alignas(kprim::cacheline_size) kprim::spinlock_t lock;
  kprim::spinlock_t& update_lock(std::uint64_t) { return lock; }
  list_ds() {
    kprim::INIT_LIST_HEAD_RCU(&head);
    for (std::uint64_t k = 0; k < keys; ++k) kprim::list_add_tail_rcu(&(new elem{k, 0})->node, &head);
  }
  ~list_ds() {
    for (elem& e : kprim::entries_safe<&elem::node>(head)) delete &e;
  }
  elem* lookup(std::uint64_t key) {
    for (elem& e : kprim::rcu_entries<&elem::node>(head))
      if (e.key == key) return &e;
    return nullptr;
  }
  void replace(elem* old, elem* fresh) { kprim::list_replace_rcu(&old->node, &fresh->node); }
  template <class Fn>
  void for_each(Fn fn) {
    for (elem& e : kprim::rcu_entries<&elem::node>(head)) fn(e);
  }
};

/// hash table of `keys` elements in as many buckets.
struct hash_ds {
  static constexpr const char* workload = "hash";
  static constexpr std::uint64_t keys = 1024;
  std::unique_ptr<kprim::hashtable<10>> ht = std::make_unique<kprim::hashtable<10>>();
  /// RCU rows' update locks, one per bucket (the kernel's rhashtable bucket locks): updates of
  /// different buckets never share a lock, and no update writes a line every updater writes.
  std::unique_ptr<kprim::spinlock_t[]> locks = std::make_unique<kprim::spinlock_t[]>(kprim::hashtable<10>::size);
  kprim::spinlock_t& update_lock(std::uint64_t key) { return locks[kprim::hash_min(key, 10)]; }
  hash_ds() {
    for (std::uint64_t k = 0; k < keys; ++k) kprim::hash_add_rcu(*ht, &(new elem{k, 0})->hnode, k);
  }
  ~hash_ds() {
    for (auto& b : ht->heads)
      for (elem& e : kprim::hentries_safe<&elem::hnode>(b)) delete &e;
  }
  elem* lookup(std::uint64_t key) {
    for (elem& e : kprim::hash_possible_rcu<&elem::hnode>(*ht, key))
      if (e.key == key) return &e;
    return nullptr;
  }
  void replace(elem* old, elem* fresh) { kprim::hlist_replace_rcu(&old->hnode, &fresh->hnode); }
  template <class Fn>
  void for_each(Fn fn) {
    for (auto& b : ht->heads)
      for (elem& e : kprim::rcu_hentries<&elem::hnode>(b)) fn(e);
  }
};

/// Decides per operation whether it writes: `write_ppm` in a million, from the worker's RNG.
inline bool pick_write(worker& t, std::uint32_t write_ppm, std::uint64_t& key, std::uint64_t keys) {
  const std::uint64_t r = t.next_random();
  key = (r & 0xffffffffu) % keys;
  return (r >> 32) % 1000000u < write_ppm;
}

/// read_section() - fn() inside S's read side: S::read() where S has one (seqlock retries),
/// else read_lock(); fn(); read_unlock().
template <class S, class Fn>
std::uint64_t read_section(S& sync, worker& t, Fn fn) {
  if constexpr (requires { sync.read(t, fn); }) {
    return sync.read(t, fn);
  } else {
    sync.read_lock(t);
    const std::uint64_t v = fn();
    sync.read_unlock(t);
    return v;
  }
}

template <class S>
constexpr bool updates_in_place = requires { S::in_place_updates; };
template <class S>
constexpr bool structure_locks = requires { S::structure_locks; };

/// Values are read and written atomically (relaxed): a seqlock's readers race with its
/// in-place writers by design; for every other row the value never changes once published.
inline std::uint64_t load_value(const elem* e) {
  return __atomic_load_n(&e->value, __ATOMIC_RELAXED);
}

/// read_mostly_body<DS, S> - lookups, and with probability write_ppm/1e6 an update that
/// replaces the element with a copy whose value is one higher (in place for a seqlock).
/// check(): every key is still there once, and the values add up to the number of updates
/// (no update lost or doubled).
template <class DS, class S>
class read_mostly_body {
 public:
  read_mostly_body(std::uint32_t write_ppm, unsigned threads) : write_ppm_(write_ppm), updates_(threads) {}
  static constexpr std::uint64_t boundary_every = boundary_every_of<S>();
  void boundary(worker& t) requires sync_boundary<S> {
    sync_.boundary(t);
  }

  void acquire(worker& t) {
    op_state& s = t.node<op_state>();
    std::uint64_t key;
    s.write = pick_write(t, write_ppm_, key, DS::keys);
    if (!s.write) {
      s.sink += read_section(sync_, t, [&] { return load_value(ds_.lookup(key)); });
      return;
    }
    if constexpr (structure_locks<S>) {
      s.lock = &ds_.update_lock(key);
      kprim::spin_lock(s.lock);
    } else {
      sync_.write_lock(t);
    }
    elem* old = ds_.lookup(key);
    if constexpr (updates_in_place<S>) {
      std::atomic_ref<std::uint64_t>(old->value).store(old->value + 1, std::memory_order_relaxed);
    } else {
      ds_.replace(old, new elem{key, old->value + 1});
      s.old = old;
    }
    ++*updates_[t.tid];  // this thread's own line: no line shared by every updater
  }
  void release(worker& t) {
    op_state& s = t.node<op_state>();
    if (!s.write) return;
    if constexpr (structure_locks<S>)
      kprim::spin_unlock(s.lock);
    else
      sync_.write_unlock(t);
    if constexpr (!updates_in_place<S>) sync_.retire(s.old);
  }
  void publish(benchmark::State& st, const kprim::bench::trial_result& r) const {
    publish_qs_every<S>(st);
    cb_clock_.publish(st, r);
  }
  std::string check(std::uint64_t) {
    std::uint64_t n = 0, sum = 0, updates = 0;
    for (const auto& u : updates_) updates += *u;
    ds_.for_each([&](elem& e) {
      ++n;
      sum += e.value;
    });
    if (n == DS::keys && sum == updates) return {};
    return std::string(S::name) + ": " + std::to_string(n) + " keys (want " + std::to_string(DS::keys) + "), values sum " +
           std::to_string(sum) + " != updates " + std::to_string(updates);
  }

 private:
  // Lines: what every operation reads and nobody writes during a trial first; the sync
  // (a reader-writer lock's word, written by readers of those rows) and the structure (its
  // head, written by updates) each on lines of their own, so an update invalidates no line
  // that holds the readers' constants.
  std::uint32_t write_ppm_;
  std::vector<kprim::cacheline_padded<std::uint64_t>> updates_;  // per thread, under its lock
  callback_thread_clock<S> cb_clock_;
  alignas(kprim::cacheline_size) S sync_;  // destroyed after ds_: callbacks drain before elements go
  alignas(kprim::cacheline_size) DS ds_;
};

/// liburcu's rculfhash (memb flavour) as a peer: lock-free lookups and lock-free updates
/// (cds_lfht_add_replace), old copies freed with call_rcu. check(): every key there once.
class lfht_body {
 public:
  static constexpr const char* name = "urcu_rculfhash";
  explicit lfht_body(std::uint32_t write_ppm) : write_ppm_(write_ppm) {
    ht_ = cds_lfht_new_flavor(hash_ds::keys, hash_ds::keys, 0, CDS_LFHT_AUTO_RESIZE, &urcu_memb_flavor, nullptr);
    kprim::rcu_thread<kprim::rcu_memb> reg;
    kprim::rcu_read_guard<kprim::rcu_memb> g;
    for (std::uint64_t k = 0; k < hash_ds::keys; ++k) {
      elem* e = new elem{k, 0};
      cds_lfht_add(ht_, hash_of(k), &e->lfnode);
    }
  }
  ~lfht_body() {
    {
      kprim::rcu_thread<kprim::rcu_memb> reg;
      kprim::rcu_read_guard<kprim::rcu_memb> g;
      for (elem* e : all()) {
        cds_lfht_del(ht_, &e->lfnode);
        kprim::kfree_rcu<&elem::rcu, kprim::rcu_memb>(e);
      }
    }
    kprim::rcu_barrier<kprim::rcu_memb>();
    cds_lfht_destroy(ht_, nullptr);
  }
  void acquire(worker& t) {
    op_state& s = t.node<op_state>();
    rcu_register_once<kprim::rcu_memb>(t);
    std::uint64_t key;
    s.write = pick_write(t, write_ppm_, key, hash_ds::keys);
    kprim::rcu_read_lock<kprim::rcu_memb>();
    elem* e = find(key);
    if (s.write) {
      cds_lfht_node* old = cds_lfht_add_replace(ht_, hash_of(key), match, &key, &(new elem{key, e->value + 1})->lfnode);
      s.old = caa_container_of(old, elem, lfnode);
    } else {
      s.sink += load_value(e);
    }
  }
  void release(worker& t) {
    op_state& s = t.node<op_state>();
    kprim::rcu_read_unlock<kprim::rcu_memb>();
    if (s.write) kprim::kfree_rcu<&elem::rcu, kprim::rcu_memb>(s.old);
  }
  std::string check(std::uint64_t) {
    kprim::rcu_thread<kprim::rcu_memb> reg;
    kprim::rcu_read_guard<kprim::rcu_memb> g;
    const std::size_t n = all().size();
    if (n == hash_ds::keys) return {};
    return std::string(name) + ": " + std::to_string(n) + " keys, want " + std::to_string(hash_ds::keys);
  }

 private:
  static unsigned long hash_of(std::uint64_t k) { return kprim::hash_64(k, 32); }
  static int match(cds_lfht_node* n, const void* key) {
    return caa_container_of(n, elem, lfnode)->key == *static_cast<const std::uint64_t*>(key);
  }
  elem* find(std::uint64_t key) {
    cds_lfht_iter it;
    cds_lfht_lookup(ht_, hash_of(key), match, &key, &it);
    return caa_container_of(cds_lfht_iter_get_node(&it), elem, lfnode);
  }
  std::vector<elem*> all() {  // caller: registered, in a read-side section
    std::vector<elem*> v;
    cds_lfht_iter it;
    cds_lfht_node* n;
    cds_lfht_for_each(ht_, &it, n) v.push_back(caa_container_of(n, elem, lfnode));
    return v;
  }
  cds_lfht* ht_ = nullptr;
  std::uint32_t write_ppm_;
};

/// read_empty_body<S> - an empty read-side critical section (S = nolock: an empty loop).
template <class S>
struct read_empty_body {
  S sync;
  static constexpr std::uint64_t boundary_every = boundary_every_of<S>();
  void boundary(worker& t) requires sync_boundary<S> {
    sync.boundary(t);
  }
  void acquire(worker& t) { sync.read_lock(t); }
  void release(worker& t) { sync.read_unlock(t); }
  void publish(benchmark::State& st, const kprim::bench::trial_result&) const { publish_qs_every<S>(st); }
};

/// grace_period_body<F> - worker 0 runs synchronize_rcu() back to back and times each one;
/// the other workers read (an empty section each). The latencies land in gp_hist.
template <class F>
class grace_period_body {
 public:
  static constexpr std::uint64_t boundary_every = rcu_sync<F>::boundary_every;
  void boundary(worker& t) {
    if (t.tid != 0) sync_.boundary(t);  // worker 0 only runs grace periods: never registers
  }
  void acquire(worker& t) {
    if (t.tid == 0) {  // synchronize_rcu() needs no registration (qsbr: worker 0 never registers)
      const auto t0 = kprim::bench::clock::now();
      kprim::synchronize_rcu<F>();
      gp_hist_.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(kprim::bench::clock::now() - t0).count()));
    } else {
      sync_.read_lock(t);
    }
  }
  void release(worker& t) {
    if (t.tid != 0) sync_.read_unlock(t);
  }
  void publish(benchmark::State& st, const kprim::bench::trial_result&) const {
    st.counters["gp_p50_ns"] = static_cast<double>(gp_hist_.percentile(0.50));
    st.counters["gp_p99_ns"] = static_cast<double>(gp_hist_.percentile(0.99));
    st.counters["gp_max_ns"] = static_cast<double>(gp_hist_.max());
    st.counters["gp_count"] = static_cast<double>(gp_hist_.count());
  }

 private:
  rcu_sync<F> sync_;
  kprim::bench::latency_histogram gp_hist_;  // written by worker 0 only, read after the trial
};

/// callback_storm_body<F> - every operation allocates an element and kfree_rcu()s it at once
/// (the shape of an update storm: each update retires one old copy). Objects queued and not
/// yet freed are counted: allocated (per-thread, published every 64) minus freed (by the
/// callback); each worker tracks the largest backlog it saw.
template <class F>
class callback_storm_body {
 public:
  explicit callback_storm_body(unsigned threads) : max_seen_(threads) {}
  ~callback_storm_body() { kprim::rcu_barrier<F>(); }
  void acquire(worker& t) {
    rcu_register_once<F>(t);
    kprim::call_rcu<F>(&(new elem{t.tid, 0})->rcu, &freed_callback);
    if ((++t.cur & 63) == 0) {
      const std::uint64_t a = allocated_.fetch_add(64, std::memory_order_relaxed) + 64;
      const std::uint64_t f = freed().load(std::memory_order_relaxed);
      std::uint64_t& m = *max_seen_[t.tid];
      if (a > f && a - f > m) m = a - f;
    }
  }
  void release(worker&) {
    if constexpr (F::needs_quiescent_states) kprim::rcu_quiescent_state<F>();
  }
  void publish(benchmark::State& st, const kprim::bench::trial_result&) const {
    std::uint64_t m = 0;
    for (const auto& x : max_seen_) m = std::max(m, *x);
    st.counters["pending_max_objs"] = static_cast<double>(m);
    st.counters["pending_max_bytes"] = static_cast<double>(m * sizeof(elem));
  }

 private:
  // One counter per flavour: callbacks of a trial may still run during the next one's start.
  static std::atomic<std::uint64_t>& freed() {
    static std::atomic<std::uint64_t> n{0};
    return n;
  }
  static void freed_callback(kprim::rcu_head* h) {
    delete container_of(h, elem, rcu);
    freed().fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> allocated_{freed().load()};  // counts continue from earlier trials
  std::vector<kprim::cacheline_padded<std::uint64_t>> max_seen_;
};

// ---- Registration ---------------------------------------------------------------------------

constexpr std::pair<const char*, std::uint32_t> write_fractions[] = {{"0", 0}, {"0.1", 1000}, {"1", 10000}, {"10", 100000}};

template <class DS, class S>
void register_read_mostly() {
  using namespace kprim::bench;
  for (auto [label, ppm] : write_fractions)
    for (unsigned n : current_options().threads) {
      case_id id{"rcu", DS::workload, S::name, n, {{"writes", label}}};
      register_trial(id, base_config(n), [ppm, n] { return std::make_unique<read_mostly_body<DS, S>>(ppm, n); });
    }
}

template <class Table>
void register_read_mostly_table() {
  Table::for_each([]<class S>() { register_read_mostly<list_ds, S>(); });
  Table::for_each([]<class S>() { register_read_mostly<hash_ds, S>(); });
}

template <class S>
void register_read_empty() {
  using namespace kprim::bench;
  // The family's A/A control (results/SCHEMA.md, "A/A controls"): rcu_memb in read_empty.
  for (unsigned n : current_options().threads)
    register_trial_or_control(std::is_same_v<S, rcu_sync<kprim::rcu_memb>>, case_id{"rcu", "read_empty", S::name, n, {}},
                              base_config(n), [] { return std::make_unique<read_empty_body<S>>(); });
}

template <class Table>
void register_update_side() {
  using namespace kprim::bench;
  for (unsigned n : current_options().threads) {
    Table::for_each([n]<class S>() {
      register_trial(case_id{"rcu", "grace_period", S::name, n, {}}, base_config(n),
                     [] { return std::make_unique<grace_period_body<typename S::flavour>>(); });
    });
    Table::for_each([n]<class S>() {
      register_trial(case_id{"rcu", "callback_storm", S::name, n, {}}, base_config(n),
                     [n] { return std::make_unique<callback_storm_body<typename S::flavour>>(n); });
    });
  }
}

void register_all() {
  using namespace kprim::bench;
  std::string flavours;
  for (std::string_view f : {kprim::rcu_memb::name, kprim::rcu_qsbr::name, kprim::rcu_mb::name, kprim::rcu_bp::name})
    flavours += (flavours.empty() ? "" : ",") + std::string(f);
  benchmark::AddCustomContext("kprim_rcu_flavour", flavours);
  benchmark::AddCustomContext("kprim_rcu_membarrier",
                              urcu_memb_has_sys_membarrier ? "sys_membarrier" : "smp_mb fallback");

  const auto read_empty = []<class S>() { register_read_empty<S>(); };
  register_read_empty<nolock>();
  rcu_flavours::for_each(read_empty);
  register_read_empty<rcu_qsbr_qs1>();
  rwlocks::for_each(read_empty);
  register_read_mostly_table<rcu_flavours>();
  register_read_mostly_table<rwlocks>();
  register_read_mostly_table<contender_table<kprim_seqlock>>();
  contender_table<rcu_memb_call_rcu>::for_each([]<class S>() { register_read_mostly<hash_ds, S>(); });
  for (auto [label, ppm] : write_fractions)
    for (unsigned n : current_options().threads)
      register_trial(case_id{"rcu", "hash", lfht_body::name, n, {{"writes", label}}}, base_config(n),
                     [ppm] { return std::make_unique<lfht_body>(ppm); });
  register_update_side<rcu_flavours>();
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
