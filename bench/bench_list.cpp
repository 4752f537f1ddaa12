// bench_list: intrusive lists against std::list and boost::intrusive::list, and an hlist
// hash table against std::unordered_map. Single-threaded (these are not contention trials):
// each benchmark builds its structure, then repeats a bounded step (one traversal, or a batch
// of operations) until --kprim_trial_ms has elapsed. Names follow results/SCHEMA.md
// (threads:1, one manual-time iteration); real_time is ns per element visited / operation.
//   traverse/<c>/elems:N/order:seq|shuffled - sum a field over every element; seq: links
//       follow allocation order, shuffled: links visit memory in random order
//   insert_remove/<c>/elems:N  - queue churn on an N-element list: add at tail, remove head
//       (std::list allocates and frees a node per operation; intrusive lists do not)
//   lru/<c>/elems:N            - touch a random element and move it to the front
//   hash_lookup/<c>/keys:N     - look up a random present key
//   hash_insert_erase/<c>/keys:N - insert a fresh key and erase an old one (table stays at N)
#include <kprim/bench/registry.hpp>

#include <kprim/hlist.hpp>
#include <kprim/list.hpp>

#include <boost/intrusive/list.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace {

using kprim::bench::clock;

// ---- the single-threaded trial ------------------------------------------------------------

/// Registers a benchmark that builds a runner with make() (untimed), runs one warm-up step,
/// then runs steps until the trial duration has elapsed. A step returns how many operations
/// it did; real_time is the wall time per operation. `control`: this row is the family's A/A
/// control, also registered as its twin `<contender>_aa` (as register_control() does).
template <class Make>
void register_single(const kprim::bench::case_id& id, Make make, bool control = false) {
  const auto budget = std::chrono::milliseconds(kprim::bench::current_options().trial_ms);
  benchmark::RegisterBenchmark(id.name().c_str(),
                               [make, budget](benchmark::State& state) {
                                 for (auto _ : state) {
                                   auto r = make();
                                   (void)(*r)();  // warm-up: caches, page faults, branch history
                                   std::uint64_t ops = 0;
                                   const auto t0 = clock::now();
                                   auto t = t0;
                                   do {
                                     ops += (*r)();
                                     t = clock::now();
                                   } while (t - t0 < budget);
                                   const double s = std::chrono::duration<double>(t - t0).count();
                                   kprim::bench::report_loop(state, {static_cast<double>(ops), s, 1});
                                   state.counters["trial_s"] = s;
                                 }
                               })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
  if (control) {
    kprim::bench::case_id twin = id;
    twin.contender += "_aa";
    register_single(twin, std::move(make));
  }
}

/// A fixed pseudo-random sequence (same for every contender).
std::vector<std::uint32_t> random_indices(std::size_t count, std::size_t bound, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<std::uint32_t> v(count);
  for (auto& x : v) x = static_cast<std::uint32_t>(g() % bound);
  return v;
}
std::vector<std::uint32_t> permutation(std::size_t n, bool shuffled) {
  std::vector<std::uint32_t> p(n);
  std::iota(p.begin(), p.end(), 0u);
  if (shuffled) std::shuffle(p.begin(), p.end(), std::mt19937_64(42));
  return p;
}

// ---- element types: 24 bytes each (two links and a payload word) ------------------------

struct kitem {
  std::uint64_t data;
  kprim::list_head list;
};
namespace bi = boost::intrusive;
struct bitem : bi::list_base_hook<bi::link_mode<bi::normal_link>> {
  std::uint64_t data;
};
using blist = bi::list<bitem, bi::constant_time_size<false>>;
static_assert(sizeof(kitem) == 24 && sizeof(bitem) == 24);

/// Elements are allocated one by one in index order (as std::list allocates its nodes), then
/// linked in `order`; std::list is built in index order and relinked by std::list::sort on
/// the order's rank (sort moves links, never nodes), so all three see the same memory walk.
template <class T>
std::vector<std::unique_ptr<T>> allocate(std::size_t n) {
  std::vector<std::unique_ptr<T>> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    v.push_back(std::make_unique<T>());
    v.back()->data = i;
  }
  return v;
}

// ---- traversal ------------------------------------------------------------------------

struct kprim_list_range {
  static constexpr const char* name = "kprim_list";
  LIST_HEAD(head);
  std::vector<std::unique_ptr<kitem>> items;
  kprim_list_range(std::size_t n, bool shuffled) : items(allocate<kitem>(n)) {
    for (auto i : permutation(n, shuffled)) kprim::list_add_tail(&items[i]->list, &head);
  }
  kprim_list_range(const kprim_list_range&) = delete;
  std::uint64_t operator()() {
    std::uint64_t sum = 0, n = 0;
    for (kitem& e : kprim::entries<&kitem::list>(head)) {
      sum += e.data;
      ++n;
    }
    benchmark::DoNotOptimize(sum);
    return n;
  }
};

struct kprim_list_macro : kprim_list_range {
  static constexpr const char* name = "kprim_list_macro";
  using kprim_list_range::kprim_list_range;
  std::uint64_t operator()() {
    std::uint64_t sum = 0, n = 0;
    kitem* pos;
    list_for_each_entry(pos, &head, list) {
      sum += pos->data;
      ++n;
    }
    benchmark::DoNotOptimize(sum);
    return n;
  }
};

struct std_list_trav {
  static constexpr const char* name = "std_list";
  std::list<std::uint64_t> l;
  std_list_trav(std::size_t n, bool shuffled) {
    for (std::size_t i = 0; i < n; ++i) l.push_back(i);
    if (shuffled) {
      // Relink in the shuffled order: sort by each value's rank in the permutation.
      auto p = permutation(n, true);
      std::vector<std::uint32_t> rank(n);
      for (std::uint32_t k = 0; k < n; ++k) rank[p[k]] = k;
      l.sort([&](std::uint64_t a, std::uint64_t b) { return rank[a] < rank[b]; });
    }
  }
  std::uint64_t operator()() {
    std::uint64_t sum = 0, n = 0;
    for (std::uint64_t v : l) {
      sum += v;
      ++n;
    }
    benchmark::DoNotOptimize(sum);
    return n;
  }
};

struct boost_list_trav {
  static constexpr const char* name = "boost_intrusive_list";
  blist l;
  std::vector<std::unique_ptr<bitem>> items;
  boost_list_trav(std::size_t n, bool shuffled) : items(allocate<bitem>(n)) {
    for (auto i : permutation(n, shuffled)) l.push_back(*items[i]);
  }
  ~boost_list_trav() { l.clear(); }
  std::uint64_t operator()() {
    std::uint64_t sum = 0, n = 0;
    for (bitem& e : l) {
      sum += e.data;
      ++n;
    }
    benchmark::DoNotOptimize(sum);
    return n;
  }
};

struct std_vector_trav {  // contiguous baseline
  static constexpr const char* name = "std_vector";
  std::vector<std::uint64_t> v;
  std_vector_trav(std::size_t n, bool) : v(n) { std::iota(v.begin(), v.end(), 0u); }
  std::uint64_t operator()() {
    std::uint64_t sum = 0;
    for (std::uint64_t x : v) {
      sum += x;
      benchmark::DoNotOptimize(sum);  // keep it a scalar walk, like the lists
    }
    return v.size();
  }
};

// ---- insert/remove (queue churn) ---------------------------------------------------------

constexpr std::uint64_t batch = 1024;

struct kprim_list_churn {
  static constexpr const char* name = "kprim_list";
  LIST_HEAD(head);
  std::vector<std::unique_ptr<kitem>> items;
  explicit kprim_list_churn(std::size_t n) : items(allocate<kitem>(n + 1)) {
    for (std::size_t i = 0; i < n; ++i) kprim::list_add_tail(&items[i]->list, &head);
    spare = items[n].get();
  }
  kprim_list_churn(const kprim_list_churn&) = delete;
  kitem* spare;
  std::uint64_t operator()() {
    for (std::uint64_t k = 0; k < batch; ++k) {
      kprim::list_add_tail(&spare->list, &head);
      kitem* first = list_first_entry(&head, kitem, list);
      kprim::list_del(&first->list);
      spare = first;
    }
    return batch;
  }
};

struct std_list_churn {
  static constexpr const char* name = "std_list";
  std::list<std::uint64_t> l;
  explicit std_list_churn(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) l.push_back(i);
  }
  std::uint64_t operator()() {
    for (std::uint64_t k = 0; k < batch; ++k) {
      l.push_back(k);
      l.pop_front();
    }
    return batch;
  }
};

struct boost_list_churn {
  static constexpr const char* name = "boost_intrusive_list";
  blist l;
  std::vector<std::unique_ptr<bitem>> items;
  bitem* spare;
  explicit boost_list_churn(std::size_t n) : items(allocate<bitem>(n + 1)) {
    for (std::size_t i = 0; i < n; ++i) l.push_back(*items[i]);
    spare = items[n].get();
  }
  ~boost_list_churn() { l.clear(); }
  std::uint64_t operator()() {
    for (std::uint64_t k = 0; k < batch; ++k) {
      l.push_back(*spare);
      bitem& first = l.front();
      l.pop_front();
      spare = &first;
    }
    return batch;
  }
};

// ---- LRU move-to-front ---------------------------------------------------------------------

struct kprim_list_lru {
  static constexpr const char* name = "kprim_list";
  LIST_HEAD(head);
  std::vector<std::unique_ptr<kitem>> items;
  std::vector<std::uint32_t> touch;
  std::size_t at = 0;
  explicit kprim_list_lru(std::size_t n) : items(allocate<kitem>(n)), touch(random_indices(1 << 16, n, 7)) {
    for (auto& i : items) kprim::list_add_tail(&i->list, &head);
  }
  kprim_list_lru(const kprim_list_lru&) = delete;
  std::uint64_t operator()() {
    for (std::uint64_t k = 0; k < batch; ++k) {
      kitem* e = items[touch[at++ & 0xffff]].get();
      e->data++;
      kprim::list_move(&e->list, &head);
    }
    return batch;
  }
};

struct std_list_lru {
  static constexpr const char* name = "std_list";
  std::list<std::uint64_t> l;
  std::vector<std::list<std::uint64_t>::iterator> its;
  std::vector<std::uint32_t> touch;
  std::size_t at = 0;
  explicit std_list_lru(std::size_t n) : touch(random_indices(1 << 16, n, 7)) {
    for (std::size_t i = 0; i < n; ++i) its.push_back(l.insert(l.end(), i));
  }
  std::uint64_t operator()() {
    for (std::uint64_t k = 0; k < batch; ++k) {
      auto it = its[touch[at++ & 0xffff]];
      ++*it;
      l.splice(l.begin(), l, it);
    }
    return batch;
  }
};

struct boost_list_lru {
  static constexpr const char* name = "boost_intrusive_list";
  blist l;
  std::vector<std::unique_ptr<bitem>> items;
  std::vector<std::uint32_t> touch;
  std::size_t at = 0;
  explicit boost_list_lru(std::size_t n) : items(allocate<bitem>(n)), touch(random_indices(1 << 16, n, 7)) {
    for (auto& i : items) l.push_back(*i);
  }
  ~boost_list_lru() { l.clear(); }
  std::uint64_t operator()() {
    for (std::uint64_t k = 0; k < batch; ++k) {
      bitem& e = *items[touch[at++ & 0xffff]];
      e.data++;
      l.splice(l.begin(), l, l.iterator_to(e));
    }
    return batch;
  }
};

// ---- hash tables -----------------------------------------------------------------------

inline std::uint64_t key_of(std::uint64_t i) noexcept { return i * 0x9E3779B97F4A7C15ull + 1; }

struct hentry {
  std::uint64_t key;
  std::uint64_t value;
  kprim::hlist_node node;
};

/// hlist table: a power-of-two bucket count >= keys, hash_64 bucket selection (the kernel's
/// DEFINE_HASHTABLE / hash_add / hash_for_each_possible pattern), one allocation per entry.
struct hlist_table {
  static constexpr const char* name = "kprim_hlist";
  unsigned bits;
  std::vector<kprim::hlist_head> buckets;
  std::vector<std::unique_ptr<hentry>> items;  // items[i % n] holds key i for the live window
  std::vector<std::uint32_t> probe;
  std::size_t n, at = 0, next = 0;
  explicit hlist_table(std::size_t keys)
      : bits(static_cast<unsigned>(std::bit_width(keys - 1))),
        buckets(std::size_t{1} << bits, kprim::hlist_head{nullptr}),
        probe(random_indices(1 << 16, keys, 11)),
        n(keys) {
    items.reserve(n);
    for (; next < n; ++next) {
      items.push_back(std::make_unique<hentry>());
      hentry* e = items.back().get();
      e->key = key_of(next);
      e->value = next;
      kprim::hlist_add_head(&e->node, bucket(e->key));
    }
  }
  hlist_table(const hlist_table&) = delete;
  kprim::hlist_head* bucket(std::uint64_t key) { return &buckets[kprim::hash_64(key, bits)]; }
  hentry* find(std::uint64_t key) {
    for (hentry& e : kprim::hentries<&hentry::node>(*bucket(key)))
      if (e.key == key) return &e;
    return nullptr;
  }
  /// A random live key: the live window is [next - n, next).
  std::uint64_t live_key() { return key_of(next - n + probe[at++ & 0xffff]); }
  std::uint64_t lookup() {
    std::uint64_t sum = 0;
    for (std::uint64_t k = 0; k < batch; ++k) sum += find(live_key())->value;
    benchmark::DoNotOptimize(sum);
    return batch;
  }
  std::uint64_t insert_erase() {
    for (std::uint64_t k = 0; k < batch; ++k, ++next) {
      hentry* e = items[next % n].get();  // the oldest key's entry, reused for the new key
      kprim::hlist_del(&e->node);
      e->key = key_of(next);
      e->value = next;
      kprim::hlist_add_head(&e->node, bucket(e->key));
    }
    return batch;
  }
};

struct std_unordered_map {
  static constexpr const char* name = "std_unordered_map";
  std::unordered_map<std::uint64_t, std::uint64_t> m;
  std::vector<std::uint32_t> probe;
  std::size_t n, at = 0, next = 0;
  explicit std_unordered_map(std::size_t keys) : probe(random_indices(1 << 16, keys, 11)), n(keys) {
    m.reserve(keys);
    for (; next < n; ++next) m.emplace(key_of(next), next);
  }
  std::uint64_t live_key() { return key_of(next - n + probe[at++ & 0xffff]); }
  std::uint64_t lookup() {
    std::uint64_t sum = 0;
    for (std::uint64_t k = 0; k < batch; ++k) sum += m.find(live_key())->second;
    benchmark::DoNotOptimize(sum);
    return batch;
  }
  std::uint64_t insert_erase() {
    for (std::uint64_t k = 0; k < batch; ++k, ++next) {
      m.erase(key_of(next - n));
      m.emplace(key_of(next), next);
    }
    return batch;
  }
};

template <class T, std::uint64_t (T::*Step)()>
struct step_of {
  std::unique_ptr<T> t;
  std::uint64_t operator()() { return ((*t).*Step)(); }
};

// ---- registration ------------------------------------------------------------------------

using kprim::bench::contender_table;

template <class Table>
void register_traverse() {
  for (std::size_t n : {std::size_t{1000}, std::size_t{1000000}})
    for (bool shuffled : {false, true})
      Table::for_each([&]<class C>() {
        register_single(
            kprim::bench::case_id{"list", "traverse", C::name, 1, {{"elems", std::to_string(n)}, {"order", shuffled ? "shuffled" : "seq"}}},
            [n, shuffled] { return std::make_unique<C>(n, shuffled); },
            std::is_same_v<C, kprim_list_range>);  // the A/A control (SCHEMA.md)
      });
}

template <class Table>
void register_sized(const char* workload, const char* key, std::initializer_list<std::size_t> sizes) {
  for (std::size_t n : sizes)
    Table::for_each([&]<class C>() {
      register_single(kprim::bench::case_id{"list", workload, C::name, 1, {{key, std::to_string(n)}}},
                      [n] { return std::make_unique<C>(n); });
    });
}

template <class Table>
void register_hash(std::initializer_list<std::size_t> sizes) {
  for (std::size_t n : sizes) {
    Table::for_each([n]<class C>() {
      register_single(kprim::bench::case_id{"list", "hash_lookup", C::name, 1, {{"keys", std::to_string(n)}}},
                      [n] { return std::make_unique<step_of<C, &C::lookup>>(step_of<C, &C::lookup>{std::make_unique<C>(n)}); });
    });
    Table::for_each([n]<class C>() {
      register_single(kprim::bench::case_id{"list", "hash_insert_erase", C::name, 1, {{"keys", std::to_string(n)}}},
                      [n] {
                        return std::make_unique<step_of<C, &C::insert_erase>>(
                            step_of<C, &C::insert_erase>{std::make_unique<C>(n)});
                      });
    });
  }
}

void register_all() {
  register_traverse<contender_table<kprim_list_range, kprim_list_macro, boost_list_trav, std_list_trav, std_vector_trav>>();
  register_sized<contender_table<kprim_list_churn, boost_list_churn, std_list_churn>>("insert_remove", "elems", {1000});
  register_sized<contender_table<kprim_list_lru, boost_list_lru, std_list_lru>>("lru", "elems", {1000, 1000000});
  register_hash<contender_table<hlist_table, std_unordered_map>>({1000, 1000000});
}

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all); }
