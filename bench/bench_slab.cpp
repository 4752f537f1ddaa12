// bench_slab: kprim's kmem_cache and kmalloc against general-purpose allocators. One generic
// body per workload over a contender table; each contender is a small alloc/free adapter.
// General allocators replace malloc for a whole process, so each runs in a process of its own:
// LD_PRELOAD selects it, --kprim_malloc=<label> names it (and is verified at start-up), and
// bench/bench_slab.runs lists the processes that `./kbench run` gathers into one results file.
// For lock benchmarks see bench_locks; this family measures allocation only.
#include <kprim/bench/registry.hpp>
#include <kprim/kmalloc.hpp>
#include <kprim/slab.hpp>

#include <dlfcn.h>
#include <malloc.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <memory_resource>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

using kprim::bench::worker;

// ---- The process's malloc: which allocator LD_PRELOAD put in, checked at start-up ----------

/// One general-purpose allocator: its label, a symbol only it exports (probed through
/// dlsym(RTLD_DEFAULT)), the library that must define malloc, and how to make it give
/// freed memory back to the OS (the "shrink" step of the memory benchmark).
struct malloc_impl {
  const char* label;
  const char* probe;    ///< nullptr for glibc
  const char* library;  ///< substring of the path of the object that defines malloc
  const char* preload;  ///< what to LD_PRELOAD (for the error message)
};
constexpr malloc_impl malloc_impls[] = {
    {"glibc", nullptr, "libc.so", ""},
    {"jemalloc", "mallctl", "libjemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
    {"tcmalloc", "tc_malloc", "libtcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"},
    {"mimalloc", "mi_version", "libmimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"},
    {"tbbmalloc", "scalable_malloc", "libtbbmalloc", "/usr/lib/x86_64-linux-gnu/libtbbmalloc_proxy.so.2"},
};
const malloc_impl* g_malloc = &malloc_impls[0];

template <class F>
F* find_symbol(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

/// verify_malloc() - empty when malloc really is `m`'s; otherwise one line saying what is wrong.
std::string verify_malloc(const malloc_impl& m) {
  Dl_info info{};
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  const char* where = sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "(unknown)";
  const bool probe_ok = m.probe == nullptr || dlsym(RTLD_DEFAULT, m.probe) != nullptr;
  if (probe_ok && std::strstr(where, m.library) != nullptr) return {};
  std::string msg = std::string("--kprim_malloc=") + m.label + " but malloc comes from " + where;
  if (*m.preload) msg += std::string(": run with LD_PRELOAD=") + m.preload;
  else msg += ": run without LD_PRELOAD";
  return msg;
}

/// release_free_memory() - ask the process's malloc to return freed memory to the OS.
void release_free_memory() {
  const std::string_view l = g_malloc->label;
  if (l == "glibc") {
    malloc_trim(0);
  } else if (l == "jemalloc") {
    if (auto* f = find_symbol<int(const char*, void*, std::size_t*, void*, std::size_t)>("mallctl"))
      f("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // MALLCTL_ARENAS_ALL
  } else if (l == "tcmalloc") {
    if (auto* f = find_symbol<void()>("MallocExtension_ReleaseFreeMemory")) f();
  } else if (l == "mimalloc") {
    if (auto* f = find_symbol<void(bool)>("mi_collect")) f(true);
  } else if (l == "tbbmalloc") {
    if (auto* f = find_symbol<int(int, void*)>("scalable_allocation_command")) f(0, nullptr);  // CLEAN_ALL_BUFFERS
  }
}

// ---- Objects with an expensive constructor --------------------------------------------------

struct heavy {
  std::uint64_t words[32];  // 256 bytes
};
/// heavy_ctor() - about a thousand cycles of dependent multiply-adds: an object whose set-up
/// costs far more than its allocation (Bonwick's case for constructed-state caching).
void heavy_ctor(void* p) {
  auto* h = static_cast<heavy*>(p);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& w : h->words) {
    for (int r = 0; r < 4; ++r) x = x * 6364136223846793005ull + 1442695040888963407ull;
    w = x;
  }
}

// ---- Contender adapters --------------------------------------------------------------------
// Each: name, alloc(worker&, size), free(worker&, p, size), shrink() (give cached memory
// back to the OS); fixed_size (serves one size), runs_ctor (keeps objects constructed),
// remote_frees (may free on another thread), baseline (no memory figures).

using per_thread_buffers = std::vector<kprim::cacheline_padded<std::array<unsigned char, 256>>>;

/// What a contender is built for: the object size it serves, the constructor its objects need
/// (run by the cache itself when `runs_ctor`), and the trial's thread count.
struct setup {
  std::size_t size;
  void (*ctor)(void*);
  unsigned threads;
};

/// Baseline: no allocator at all. Every allocation returns the thread's own 256-byte buffer
/// and frees do nothing, so its figures are the harness's and the workload's own cost (the
/// loop, the touches, the rings, the ctor) to subtract from every other row.
struct noalloc {
  static constexpr const char* name = "noalloc";
  static constexpr bool fixed_size = false, runs_ctor = false, remote_frees = true, baseline = true;
  per_thread_buffers buf;
  explicit noalloc(const setup& st) : buf(st.threads) {}
  void* alloc(worker& t, std::size_t) { return buf[t.tid].value.data(); }
  void free(worker&, void*, std::size_t) {}
  void shrink() {}
};

struct kprim_kmem_cache {
  static constexpr const char* name = "kprim_kmem_cache";
  static constexpr bool fixed_size = true, runs_ctor = true, remote_frees = true, baseline = false;
  kprim::kmem_cache_t* s;
  explicit kprim_kmem_cache(const setup& st) : s(kprim::kmem_cache_create("bench", st.size, 0, 0, st.ctor)) {}
  ~kprim_kmem_cache() { kprim::kmem_cache_destroy(s); }
  void* alloc(worker&, std::size_t) { return kprim::kmem_cache_alloc(s, kprim::GFP_KERNEL); }
  void free(worker&, void* p, std::size_t) { kprim::kmem_cache_free(s, p); }
  void shrink() { kprim::kmem_cache_shrink(s); }
};

/// The same cache with SLAB_PERCPU_MAGAZINES: per-CPU magazines on rseq (kprim/slab.hpp).
struct kprim_kmem_cache_pcpu {
  static constexpr const char* name = "kprim_kmem_cache_pcpu";
  static constexpr bool fixed_size = true, runs_ctor = true, remote_frees = true, baseline = false;
  kprim::kmem_cache_t* s;
  explicit kprim_kmem_cache_pcpu(const setup& st)
      : s(kprim::kmem_cache_create("bench_pcpu", st.size, 0, kprim::SLAB_PERCPU_MAGAZINES, st.ctor)) {}
  ~kprim_kmem_cache_pcpu() { kprim::kmem_cache_destroy(s); }
  void* alloc(worker&, std::size_t) { return kprim::kmem_cache_alloc(s, kprim::GFP_KERNEL); }
  void free(worker&, void* p, std::size_t) { kprim::kmem_cache_free(s, p); }
  void shrink() { kprim::kmem_cache_shrink(s); }
};

struct kprim_kmalloc {
  static constexpr const char* name = "kprim_kmalloc";
  static constexpr bool fixed_size = false, runs_ctor = false, remote_frees = true, baseline = false;
  explicit kprim_kmalloc(const setup&) {}
  void* alloc(worker&, std::size_t n) { return kprim::kmalloc(n, kprim::GFP_KERNEL); }
  void free(worker&, void* p, std::size_t) { kprim::kfree(p); }
  void shrink() { kprim::kmalloc_shrink(); }
};

/// The process's malloc, whichever LD_PRELOAD made it: malloc_impls[I], named malloc_<label>.
template <std::size_t I>
struct process_malloc {
  static constexpr const malloc_impl* impl = &malloc_impls[I];
  static constexpr std::string_view label = malloc_impls[I].label;
  static constexpr auto name =
      kprim::bench::fixed_string("malloc_") + kprim::bench::fixed_string<label.size() + 1>::of(label);
  static constexpr bool fixed_size = false, runs_ctor = false, remote_frees = true, baseline = false;
  explicit process_malloc(const setup&) {}
  void* alloc(worker&, std::size_t n) { return std::malloc(n); }
  void free(worker&, void* p, std::size_t) { std::free(p); }
  void shrink() { release_free_memory(); }
};

struct new_delete {
  static constexpr const char* name = "new_delete";
  static constexpr bool fixed_size = false, runs_ctor = false, remote_frees = true, baseline = false;
  explicit new_delete(const setup&) {}
  void* alloc(worker&, std::size_t n) { return ::operator new(n); }
  void free(worker&, void* p, std::size_t n) { ::operator delete(p, n); }
  void shrink() { release_free_memory(); }
};

/// std::pmr::synchronized_pool_resource shared by all threads (upstream: new/delete).
struct pmr_sync {
  static constexpr const char* name = "pmr_sync";
  static constexpr bool fixed_size = false, runs_ctor = false, remote_frees = true, baseline = false;
  std::pmr::synchronized_pool_resource r;
  explicit pmr_sync(const setup&) {}
  void* alloc(worker&, std::size_t n) { return r.allocate(n, 16); }
  void free(worker&, void* p, std::size_t n) { r.deallocate(p, n, 16); }
  void shrink() {}
};

/// std::pmr::unsynchronized_pool_resource, one per thread (it is not thread-safe), so it
/// takes no part in workloads that free on another thread.
struct pmr_unsync {
  static constexpr const char* name = "pmr_unsync";
  static constexpr bool fixed_size = false, runs_ctor = false, remote_frees = false, baseline = false;
  std::vector<std::unique_ptr<kprim::cacheline_padded<std::pmr::unsynchronized_pool_resource>>> r;
  explicit pmr_unsync(const setup& st) {
    for (unsigned i = 0; i < st.threads; ++i)
      r.push_back(std::make_unique<kprim::cacheline_padded<std::pmr::unsynchronized_pool_resource>>());
  }
  void* alloc(worker& t, std::size_t n) { return r[t.tid]->value.allocate(n, 16); }
  void free(worker& t, void* p, std::size_t n) { r[t.tid]->value.deallocate(p, n, 16); }
  void shrink() {}
};

/// In the glibc process every contender runs (and the baseline); a preloaded process runs only
/// its malloc, the row of preload_rows whose allocator it is.
using kprim_table = kprim::bench::contender_table<noalloc, kprim_kmem_cache, kprim_kmem_cache_pcpu, kprim_kmalloc, process_malloc<0>,
                                                  new_delete, pmr_sync, pmr_unsync>;
using preload_rows =
    kprim::bench::contender_table<process_malloc<1>, process_malloc<2>, process_malloc<3>, process_malloc<4>>;
static_assert(preload_rows::size + 1 == std::size(malloc_impls), "one preload row per allocator but glibc");

// ---- Generic bodies --------------------------------------------------------------------------

/// live_arrays - every worker's array of live-object pointers, each starting on its own pair
/// of cache lines (a std::vector per worker would put small arrays of two threads on one line,
/// and every store would bounce it between cores).
class live_arrays {
 public:
  live_arrays(unsigned threads, unsigned live)
      : stride_((live + per_pair - 1) / per_pair * per_pair),
        base_(static_cast<void**>(::operator new(threads* stride_ * sizeof(void*), align))) {}
  ~live_arrays() { ::operator delete(base_, align); }
  live_arrays(const live_arrays&) = delete;
  live_arrays& operator=(const live_arrays&) = delete;
  void** of(unsigned tid) noexcept { return base_ + tid * stride_; }

 private:
  static constexpr std::size_t per_pair = kprim::cacheline_pair_size / sizeof(void*);
  static constexpr std::align_val_t align{kprim::cacheline_pair_size};
  std::size_t stride_;
  void** base_;
};

/// batch_body<C> - each operation allocates `live` objects (touching each), then frees them
/// in allocation order. live:1 is the alloc+free pair. With a ctor (the `ctor` workload),
/// contenders that cannot keep constructed objects run it on every allocation.
template <class C>
class batch_body {
 public:
  batch_body(const setup& st, unsigned live) : c_(st), st_(st), live_(live), slots_(st.threads, live) {}
  void acquire(worker& t) {
    void** v = slots_.of(t.tid);
    for (unsigned i = 0; i < live_; ++i) {
      void* p = c_.alloc(t, st_.size);
      if (st_.ctor && !C::runs_ctor) st_.ctor(p);
      static_cast<volatile unsigned char*>(p)[0];  // use it: one read of its first line
      v[i] = p;
    }
  }
  void release(worker& t) {
    void** v = slots_.of(t.tid);
    for (unsigned i = 0; i < live_; ++i) c_.free(t, v[i], st_.size);
  }

 private:
  C c_;
  setup st_;
  unsigned live_;
  live_arrays slots_;
};

/// batch_ring - a single-producer single-consumer ring of batches of object pointers (thread t
/// -> thread t+1). The producer fills the batch at `tail` in place and publishes it whole with
/// one release store, the consumer frees a published batch and hands its slot back with one:
/// two atomic stores and two cache-line transfers of the indices per `batch` objects, so the
/// hand-off costs little next to the allocator's remote frees it carries.
struct batch_ring {
  static constexpr std::uint32_t batch = 32;
  static constexpr std::uint32_t capacity = 32;                       ///< batches: 1024 objects in flight at most
  alignas(kprim::cacheline_size) std::atomic<std::uint32_t> head{0};  ///< consumer's
  alignas(kprim::cacheline_size) std::atomic<std::uint32_t> tail{0};  ///< producer's
  std::uint32_t fill = 0;                                             ///< producer: objects in the batch at tail (not yet published)
  std::uint32_t credit = 0;                                           ///< producer: remote_body's percent accumulator
  alignas(kprim::cacheline_size) std::array<void*, batch> slot[capacity];
  /// push() - producer: add p to the batch being filled; false when the ring is full.
  bool push(void* p) {
    const std::uint32_t t = tail.load(std::memory_order_relaxed);
    if (fill == 0 && t - head.load(std::memory_order_acquire) == capacity) return false;
    slot[t % capacity][fill++] = p;
    if (fill == batch) {
      fill = 0;
      tail.store(t + 1, std::memory_order_release);  // pairs with pop()'s acquire of tail
    }
    return true;
  }
  /// pop() - consumer: the next published batch (batch pointers), or nullptr; give it back
  /// with done() once its objects are freed.
  void** pop() {
    const std::uint32_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return nullptr;
    return slot[h % capacity].data();
  }
  void done() { head.store(head.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
};

/// remote_body<C> - producer-to-consumer frees: each operation allocates one object; `remote`
/// percent of them go to the next thread (in batches of batch_ring::batch, freed there), the
/// rest are freed at once. Which ones is decided by an accumulator, not a random draw: every
/// second object at 50% (a random 50% branch mispredicts on half the operations, a cost of
/// the harness that the noalloc row showed at about twice its 100% figure). Each operation also frees one whole batch that arrived from the
/// previous thread, if one has: the consumer drains up to `batch` objects per operation, so
/// it keeps up with any producer.
template <class C>
class remote_body {
 public:
  remote_body(const setup& st, unsigned remote) : c_(st), st_(st), remote_(remote), rings_(st.threads) {}
  ~remote_body() {
    worker t;  // the trial is over: the driver frees what is still in flight
    for (auto& r : rings_) {
      batch_ring& b = r.value;
      while (void** v = b.pop()) {
        for (std::uint32_t i = 0; i < batch_ring::batch; ++i) c_.free(t, v[i], st_.size);
        b.done();
      }
      void** partial = b.slot[b.tail.load() % batch_ring::capacity].data();
      for (std::uint32_t i = 0; i < b.fill; ++i) c_.free(t, partial[i], st_.size);
    }
  }
  void acquire(worker& t) {
    void* p = c_.alloc(t, st_.size);
    static_cast<volatile unsigned char*>(p)[0] = 1;
    batch_ring& out = rings_[(t.tid + 1) % t.nthreads].value;  // t is its only producer
    out.credit += remote_;
    if (out.credit >= 100) {
      out.credit -= 100;
      if (out.push(p)) return;
    }
    c_.free(t, p, st_.size);
  }
  void release(worker& t) {
    batch_ring& in = rings_[t.tid].value;
    if (void** v = in.pop()) {
      for (std::uint32_t i = 0; i < batch_ring::batch; ++i) c_.free(t, v[i], st_.size);
      in.done();
    }
  }

 private:
  C c_;
  setup st_;
  unsigned remote_;
  std::vector<kprim::cacheline_padded<batch_ring>> rings_;
};

/// larson_body<C> - Larson's server pattern: a shared array of slots, each thread replacing
/// random ones (its own part 90% of the time, anyone's otherwise, so frees cross threads);
/// sizes uniform in [16, 256] (kmem_cache serves all from one 256-byte cache). Each object
/// records its size in its first word, for the allocators whose free needs it (pmr).
template <class C>
class larson_body {
 public:
  static constexpr unsigned slots_per_thread = 1000;
  explicit larson_body(const setup& st)
      : c_(st), n_(st.threads * slots_per_thread), slots_(std::make_unique<std::atomic<void*>[]>(n_)) {}
  ~larson_body() {
    worker t;
    for (std::size_t i = 0; i < n_; ++i)
      if (void* p = slots_[i].load()) c_.free(t, p, recorded_size(p));
  }
  void acquire(worker& t) {
    const std::uint64_t r = t.next_random();
    const std::size_t i = (r % 10 != 0) ? t.tid * slots_per_thread + (r >> 8) % slots_per_thread : (r >> 8) % n_;
    const std::size_t size = 16 + (r >> 40) % 241;
    void* p = c_.alloc(t, size);
    if constexpr (!C::baseline) *static_cast<std::uint32_t*>(p) = static_cast<std::uint32_t>(size);
    if (void* old = slots_[i].exchange(p, std::memory_order_acq_rel)) c_.free(t, old, recorded_size(old));
  }
  void release(worker&) {}

 private:
  /// The size written at allocation (the baseline's buffers are shared: not read there).
  static std::size_t recorded_size(void* p) {
    if constexpr (C::baseline) return 0;
    else return *static_cast<std::uint32_t*>(p);
  }

  C c_;
  std::size_t n_;
  std::unique_ptr<std::atomic<void*>[]> slots_;
};

// ---- Registration ----------------------------------------------------------------------------

/// per_object<Body> - Body (held, forwarded to) plus this family's counters: objects per
/// operation and ns per object.
template <class Body>
struct per_object {
  std::unique_ptr<Body> body;
  unsigned objects_per_op;
  void acquire(kprim::bench::worker& t) { body->acquire(t); }
  void release(kprim::bench::worker& t) { body->release(t); }
  std::string check(std::uint64_t total_ops) requires kprim::bench::checked_workload<Body> {
    return body->check(total_ops);
  }
  void publish(benchmark::State& state, const kprim::bench::trial_result& r) const {
    const double ops = static_cast<double>(r.total());
    state.counters["objects_per_op"] = objects_per_op;
    state.counters["ns_per_object"] = ops > 0 ? r.trial_s * 1e9 / (ops * objects_per_op) : 0;
  }
};

/// register_slab_trial() - register_trial() of the body make() builds, with per_object counters;
/// register_control() for the family's A/A control row (`control`).
template <class Make>
void register_slab_trial(const kprim::bench::case_id& id, const kprim::bench::trial_config& cfg,
                         unsigned objects_per_op, Make make, bool control = false) {
  using Body = typename decltype(make())::element_type;
  kprim::bench::register_trial_or_control(control, id, cfg, [make, objects_per_op] {
    return std::make_unique<per_object<Body>>(per_object<Body>{make(), objects_per_op});
  });
}

kprim::bench::case_id make_id(const char* workload, std::string contender, unsigned threads,
                              std::vector<std::pair<std::string, std::string>> params) {
  return {"slab", workload, std::move(contender), threads, std::move(params)};
}

template <class C>
void register_time_workloads() {
  using namespace kprim::bench;
  for (unsigned n : current_options().threads) {
    trial_config cfg = base_config(n);
    cfg.cs = cfg.gap = 0;
    for (std::size_t size : {64u, 256u}) {
      for (unsigned live : {1u, 64u, 1000u}) {
        const setup st{size, nullptr, n};
        register_slab_trial(
            make_id("batch", C::name, n, {{"size", std::to_string(size)}, {"live", std::to_string(live)}}),
            cfg, live, [st, live] { return std::make_unique<batch_body<C>>(st, live); },
            // The family's A/A control (SCHEMA.md): kprim_kmem_cache, size:64 live:64.
            std::is_same_v<C, kprim_kmem_cache> && size == 64 && live == 64);
      }
    }
    const setup heavy_st{sizeof(heavy), heavy_ctor, n};
    register_slab_trial(make_id("ctor", C::name, n, {{"size", std::to_string(sizeof(heavy))}, {"live", "64"}}), cfg, 64,
                        [heavy_st] { return std::make_unique<batch_body<C>>(heavy_st, 64); });
    if constexpr (C::remote_frees) {
      if (n >= 2) {
        for (unsigned remote : {0u, 50u, 100u}) {
          const setup st{64, nullptr, n};
          register_slab_trial(make_id("remote", C::name, n, {{"size", "64"}, {"remote", std::to_string(remote)}}),
                              cfg, 1, [st, remote] { return std::make_unique<remote_body<C>>(st, remote); });
        }
      }
      const setup st{256, nullptr, n};
      register_slab_trial(make_id("larson", C::name, n, {{"size", "16-256"}, {"slots", std::to_string(larson_body<C>::slots_per_thread)}}),
                          cfg, 1, [st] { return std::make_unique<larson_body<C>>(st); });
    }
  }
}

// ---- Memory: overhead per live object and RSS through free, shrink and destroy ----------------
// Measured once per process: a second measurement would start from the memory the allocator
// kept from the first, so --benchmark_repetitions repeat the first measurement's figures.

std::size_t rss_kib() {
  std::ifstream f("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * 4;
}
std::size_t peak_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}
/// Reset VmHWM to the current RSS (Linux >= 4.0), so each contender's peak is its own.
void reset_peak_rss() {
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

constexpr std::size_t memory_objects = 1000000;
constexpr std::size_t memory_size = 64;

template <class C>
void register_memory() {
  if constexpr (C::baseline) return;
  const std::string name = make_id("memory", C::name, 1, {{"size", std::to_string(memory_size)}, {"objects", std::to_string(memory_objects)}}).name();
  benchmark::RegisterBenchmark(name.c_str(), [](benchmark::State& state) {
    static std::optional<std::pair<double, benchmark::UserCounters>> first;
    for (auto _ : state) {
      if (first) {
        state.SetIterationTime(first->first);
        state.counters = first->second;
        continue;
      }
      std::vector<void*> v(memory_objects, nullptr);  // allocated and touched before the baseline
      worker t;
      auto c = std::make_unique<C>(setup{memory_size, nullptr, 1});
      c->shrink();  // what earlier benchmarks left cached (the kmalloc caches persist)
      release_free_memory();
      reset_peak_rss();
      const std::size_t start = rss_kib();
      const auto t0 = kprim::bench::clock::now();
      for (auto& p : v) {
        p = c->alloc(t, memory_size);
        std::memset(p, 0x5a, memory_size);
      }
      const double alloc_s = std::chrono::duration<double>(kprim::bench::clock::now() - t0).count();
      const std::size_t full = rss_kib(), peak = peak_rss_kib();
      for (void* p : v) c->free(t, p, memory_size);
      const std::size_t after_free = rss_kib();
      c->shrink();
      const std::size_t after_shrink = rss_kib();
      c.reset();  // destroy: kmem_cache_destroy, the pmr resource's release; malloc: nothing more
      release_free_memory();
      const std::size_t after_destroy = rss_kib();
      const double n = memory_objects;
      kprim::bench::report_loop(state, {n, alloc_s, 1});
      state.SetIterationTime(alloc_s);  // manual time: the whole allocation pass, not per object
      auto& k = state.counters;
      k["trial_s"] = alloc_s;
      k["fairness"] = k["share_min"] = k["share_max"] = 1;  // one thread
      k["overhead_bytes_per_object"] = (static_cast<double>(full) - static_cast<double>(start)) * 1024.0 / n - memory_size;
      k["overhead_pct"] = 100.0 * k["overhead_bytes_per_object"] / memory_size;
      k["rss_start_kib"] = static_cast<double>(start);
      k["rss_full_kib"] = static_cast<double>(full);
      k["rss_peak_kib"] = static_cast<double>(peak);
      k["rss_after_free_kib"] = static_cast<double>(after_free);
      k["rss_after_shrink_kib"] = static_cast<double>(after_shrink);
      k["rss_after_destroy_kib"] = static_cast<double>(after_destroy);
      k["rss_after_destroy_delta_kib"] = static_cast<double>(after_destroy) - static_cast<double>(start);
      first.emplace(alloc_s, k);
    }
  })->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

/// Memory first: its RSS baselines are cleanest before the timed trials have run.
template <class Table>
void register_table() {
  Table::for_each([]<class C>() { register_memory<C>(); });
  Table::for_each([]<class C>() { register_time_workloads<C>(); });
}

void register_all() {
  benchmark::AddCustomContext("kprim_malloc", g_malloc->label);
  if (g_malloc == &malloc_impls[0]) {
    register_table<kprim_table>();
    return;
  }
  preload_rows::for_each([]<class C>() {
    if (C::impl == g_malloc) register_table<kprim::bench::contender_table<C>>();
  });
}

/// --kprim_malloc=<label> (glibc when absent): selects g_malloc and verifies that malloc really
/// is that allocator.
std::string parse_malloc(std::string_view label) {
  g_malloc = nullptr;
  for (const auto& m : malloc_impls)
    if (label == m.label) g_malloc = &m;
  if (g_malloc == nullptr)
    return "--kprim_malloc expects glibc, jemalloc, tcmalloc, mimalloc or tbbmalloc (got '" + std::string(label) + "')";
  return verify_malloc(*g_malloc);
}
constexpr kprim::bench::family_flag slab_flags[] = {{"--kprim_malloc", "glibc", parse_malloc}};

}  // namespace

int main(int argc, char** argv) { return kprim::bench::main(argc, argv, register_all, slab_flags); }
