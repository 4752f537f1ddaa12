// lockdep's slow paths (kprim/lockdep.hpp): class registration, the dependency graph and its
// cycle search, usage marking, and the reports. Everything that changes shared state runs under
// one mutex (the kernel's graph lock), entered only when a lock, a dependency or a usage is new;
// the fast path reads the tables lock-free. Nothing here allocates: the tables are fixed arrays,
// and reports are formatted into stack buffers and written with write(2), so a report from a
// signal handler (kprim's interrupt context) is safe.
#include <kprim/lockdep.hpp>

#if KPRIM_DEBUG_LOCKING
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace kprim::debug {

std::atomic<std::uint64_t> addr_table[addr_slots];
std::atomic<unsigned> addr_table_seq{0};
std::atomic<std::uint64_t> dependency[max_lock_classes][class_words];
std::atomic<unsigned> class_usage[max_lock_classes];

namespace {

/// One lock class. Anonymous classes (a lock never given a site or key) are keyed by the
/// lock's address and retired with the lock; site and key classes live forever.
struct lock_class {
  const char* kind;
  const char* name;  // a lock_class_key's or DEFINE_*'s name, else nullptr
  const char* file;  // init site, or the first acquisition for an anonymous class
  unsigned line;
  const void* addr;  // anonymous: the lock
  unsigned base;     // a subclass: its base class; 0 otherwise
  unsigned subclass;
  bool anonymous;
  bool live;
  bool has_edges;
  unsigned gen;  // bumped at retirement: edge records of the old class go stale
  std::atomic<unsigned> sub[max_subclasses];
  const char* usage_file[4];
  unsigned usage_line[4];
};
lock_class classes[max_lock_classes];
unsigned class_high = 1;  // ids [1, class_high) have been handed out
unsigned free_ids[max_lock_classes];
unsigned free_count = 0;
bool out_of_classes = false;

/// Classes by init site or key (never retired).
struct site_entry {
  const char* file;
  unsigned line;
  const lock_class_key* key;
  unsigned cls;
};
constexpr unsigned site_slots = 8192;
site_entry sites[site_slots];

/// Where each recorded dependency was first seen, for the chain in a circular report.
/// An entry is stale (reusable) once either class was retired since (generation mismatch).
struct edge_entry {
  unsigned a, b;  // 0/0 empty
  unsigned gen_a, gen_b;
  const char* file;
  unsigned line;
  long tid;
};
constexpr unsigned edge_slots = 1u << 16;
edge_entry edges[edge_slots];

std::mutex graph_lock;

/// Holds the graph mutex, with this thread's recursion count up first: a handler that
/// interrupts the slow path sees it and skips its checks instead of deadlocking on the mutex.
class graph_guard {
 public:
  graph_guard() noexcept {
    ++tls_context.lockdep_recursion;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    graph_lock.lock();
  }
  ~graph_guard() {
    graph_lock.unlock();
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --tls_context.lockdep_recursion;
  }
  graph_guard(const graph_guard&) = delete;
  graph_guard& operator=(const graph_guard&) = delete;
};

[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) noexcept {
  char buf[768];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (static_cast<std::size_t>(n) >= sizeof buf) n = sizeof buf - 1;
  (void)!write(2, buf, static_cast<std::size_t>(n));
}

/// short_name() - the class in a scenario line: its name, or "kind#id".
const char* short_name(unsigned cls, char* buf, std::size_t size) noexcept {
  const lock_class& k = classes[cls];
  const lock_class& b = k.base != 0 ? classes[k.base] : k;
  if (b.name != nullptr) std::snprintf(buf, size, "%s%s", b.name, k.base != 0 ? "/nested" : "");
  else std::snprintf(buf, size, "%s#%u%s", b.kind, k.base != 0 ? k.base : cls, k.base != 0 ? "/nested" : "");
  return buf;
}

/// describe() - a class as the reports name it: "&name", "spinlock_t at init site" or
/// "spinlock_t 0x... (first locked at ...)", with "/subclass".
const char* describe(unsigned cls, char* buf, std::size_t size) noexcept {
  if (cls == 0 || cls >= max_lock_classes) {
    std::snprintf(buf, size, "(untracked)");
    return buf;
  }
  const lock_class& k = classes[cls];
  const lock_class& b = k.base != 0 ? classes[k.base] : k;
  int n;
  if (b.name != nullptr)
    n = std::snprintf(buf, size, "%s (%s, class at %s:%u)", b.name, b.kind, b.file, b.line);
  else if (b.anonymous)
    n = std::snprintf(buf, size, "%s#%u (first locked at %s:%u)", b.kind, k.base != 0 ? k.base : cls, b.file, b.line);
  else
    n = std::snprintf(buf, size, "%s (initialised at %s:%u)", b.kind, b.file, b.line);
  if (k.base != 0 && n > 0 && static_cast<std::size_t>(n) < size) std::snprintf(buf + n, size - n, "/%u", k.subclass);
  return buf;
}

unsigned alloc_class() noexcept {
  if (free_count != 0) return free_ids[--free_count];
  if (class_high < max_lock_classes) return class_high++;
  if (!out_of_classes) {
    out_of_classes = true;
    say("BUG: MAX_LOCKDEP_KEYS too low!\nturning off the locking correctness validator for new locks.\n");
  }
  return 0;
}

unsigned new_class(const char* kind, const char* name, const char* file, unsigned line, const void* addr,
                   bool anonymous) noexcept {
  const unsigned id = alloc_class();
  if (id == 0) return 0;
  lock_class& k = classes[id];
  k.kind = kind;
  k.name = name;
  k.file = file;
  k.line = line;
  k.addr = addr;
  k.base = 0;
  k.subclass = 0;
  k.anonymous = anonymous;
  k.live = true;
  k.has_edges = false;
  for (auto& s : k.sub) s.store(0, std::memory_order_relaxed);
  for (unsigned i = 0; i < 4; ++i) k.usage_file[i] = nullptr;
  class_usage[id].store(0, std::memory_order_relaxed);
  return id;
}

// ---- the address table (linear probing, backward-shift deletion) ----

unsigned find_slot(const void* lock) noexcept {
  const std::uint64_t want = reinterpret_cast<std::uintptr_t>(lock) & addr_bits;
  for (unsigned i = addr_hash(lock), n = 0; n < addr_slots; ++n, i = (i + 1) & (addr_slots - 1)) {
    const std::uint64_t e = addr_table[i].load(std::memory_order_relaxed);
    if (e == 0) return addr_slots;
    if ((e & addr_bits) == want) return i;
  }
  return addr_slots;
}

bool insert_addr(const void* lock, unsigned cls) noexcept {
  const std::uint64_t e = (reinterpret_cast<std::uintptr_t>(lock) & addr_bits) | (static_cast<std::uint64_t>(cls) << 48);
  for (unsigned i = addr_hash(lock), n = 0; n < addr_slots - 1; ++n, i = (i + 1) & (addr_slots - 1)) {
    if (addr_table[i].load(std::memory_order_relaxed) == 0) {
      addr_table[i].store(e, std::memory_order_release);
      return true;
    }
  }
  return false;
}

void erase_slot(unsigned i) noexcept {
  addr_table_seq.fetch_add(1, std::memory_order_acq_rel);  // odd: lock-free misses are not trusted
  for (unsigned j = i;;) {
    j = (j + 1) & (addr_slots - 1);
    const std::uint64_t e = addr_table[j].load(std::memory_order_relaxed);
    if (e == 0) break;
    const unsigned home = addr_hash(reinterpret_cast<const void*>(e & addr_bits));
    // The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    addr_table[i].store(e, std::memory_order_release);
    i = j;
  }
  addr_table[i].store(0, std::memory_order_release);
  addr_table_seq.fetch_add(1, std::memory_order_acq_rel);
}

// ---- the graph ----

bool has_edge(unsigned a, unsigned b) noexcept {
  return (dependency[a][b / 64].load(std::memory_order_relaxed) >> (b % 64)) & 1;
}

unsigned edge_hash(unsigned a, unsigned b) noexcept { return (a * 0x9E3779B1u ^ b * 0x85EBCA77u) & (edge_slots - 1); }

const edge_entry* find_edge(unsigned a, unsigned b) noexcept {
  for (unsigned i = edge_hash(a, b), n = 0; n < edge_slots; ++n, i = (i + 1) & (edge_slots - 1)) {
    const edge_entry& e = edges[i];
    if (e.a == 0) return nullptr;
    if (e.a == a && e.b == b && e.gen_a == classes[a].gen && e.gen_b == classes[b].gen) return &e;
  }
  return nullptr;
}

void record_edge(unsigned a, unsigned b, const char* file, unsigned line) noexcept {
  for (unsigned i = edge_hash(a, b), n = 0; n < edge_slots; ++n, i = (i + 1) & (edge_slots - 1)) {
    edge_entry& e = edges[i];
    if (e.a == 0 || e.gen_a != classes[e.a].gen || e.gen_b != classes[e.b].gen) {
      e = {a, b, classes[a].gen, classes[b].gen, file, line, static_cast<long>(gettid())};
      return;
    }
  }
}

/// retire() - an anonymous class's lock is gone: drop its dependencies (both directions),
/// usage and subclasses, and free the id.
void retire(unsigned cls) noexcept {
  lock_class& k = classes[cls];
  for (auto& s : k.sub) {
    const unsigned sc = s.exchange(0, std::memory_order_relaxed);
    if (sc != 0) retire(sc);
  }
  if (k.has_edges) {  // a class that never ordered against another has no bits to clear
    for (unsigned w = 0; w < class_words; ++w) dependency[cls][w].store(0, std::memory_order_relaxed);
    const std::uint64_t mask = ~(1ull << (cls % 64));
    for (unsigned a = 1; a < class_high; ++a)
      if (dependency[a][cls / 64].load(std::memory_order_relaxed) & ~mask)
        dependency[a][cls / 64].fetch_and(mask, std::memory_order_relaxed);
  }
  ++k.gen;
  class_usage[cls].store(0, std::memory_order_relaxed);
  k.live = false;
  free_ids[free_count++] = cls;
}

/// find_path() - breadth-first search for from -> ... -> to; fills path[0..len) with the
/// classes on it (from first). Under graph_lock.
unsigned find_path(unsigned from, unsigned to, unsigned* path, unsigned max_len) noexcept {
  static std::uint64_t visited[class_words];
  static unsigned queue[max_lock_classes];
  static unsigned parent[max_lock_classes];
  std::memset(visited, 0, sizeof visited);
  unsigned head = 0, tail = 0;
  queue[tail++] = from;
  visited[from / 64] |= 1ull << (from % 64);
  parent[from] = 0;
  const unsigned words = (class_high + 63) / 64;
  while (head < tail) {
    const unsigned u = queue[head++];
    for (unsigned w = 0; w < words; ++w) {
      std::uint64_t bits = dependency[u][w].load(std::memory_order_relaxed) & ~visited[w];
      while (bits != 0) {
        const unsigned v = w * 64 + static_cast<unsigned>(__builtin_ctzll(bits));
        bits &= bits - 1;
        visited[w] |= 1ull << (v % 64);
        parent[v] = u;
        if (v == to) {
          unsigned len = 0;
          for (unsigned x = v; x != 0 && len < max_len; x = parent[x]) path[len++] = x;
          for (unsigned i = 0; i < len / 2; ++i) std::swap(path[i], path[len - 1 - i]);
          return len;
        }
        queue[tail++] = v;
      }
    }
  }
  return 0;
}

const char* usage_name(unsigned bit) noexcept {
  switch (bit) {
    case usage_in_irq_w:
      return "IN-HARDIRQ-W";
    case usage_in_irq_r:
      return "IN-HARDIRQ-R";
    case usage_irq_on_w:
      return "HARDIRQ-ON-W";
    default:
      return "HARDIRQ-ON-R";
  }
}
unsigned usage_index(unsigned bit) noexcept { return static_cast<unsigned>(__builtin_ctz(bit)); }

/// The usages a new one is inconsistent with (a write taken in a handler against any use with
/// interrupts on; a read in a handler against writes with interrupts on).
unsigned conflicts_of(unsigned bit) noexcept {
  switch (bit) {
    case usage_in_irq_w:
      return usage_irq_on_w | usage_irq_on_r;
    case usage_in_irq_r:
      return usage_irq_on_w;
    case usage_irq_on_w:
      return usage_in_irq_w | usage_in_irq_r;
    default:
      return usage_in_irq_w;
  }
}

void banner(const char* headline) noexcept {
  const std::size_t n = std::strlen(headline);
  char rule[128];
  const std::size_t r = n < sizeof rule - 1 ? n : sizeof rule - 1;
  std::memset(rule, '=', r);
  rule[r] = '\0';
  say("\n%s\n%s\n", rule, headline);
  std::memset(rule, '-', r);
  say("%s\n", rule);
}

void set_addr_class(const void* lock, unsigned cls) noexcept {
  const unsigned slot = find_slot(lock);
  if (slot != addr_slots) {
    const unsigned old = static_cast<unsigned>(addr_table[slot].load(std::memory_order_relaxed) >> 48);
    erase_slot(slot);
    if (old != 0 && classes[old].anonymous && classes[old].live) retire(old);
  }
  if (cls != 0 && !insert_addr(lock, cls)) say("BUG: lockdep's lock table is full; %p stays untracked\n", lock);
}

unsigned site_class(const char* file, unsigned line, const lock_class_key* key, const char* kind) noexcept {
  unsigned h = key != nullptr ? static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(key) >> 3) * 2654435761u
                              : line * 2654435761u;
  if (key == nullptr)
    for (const char* p = file; *p != '\0'; ++p) h = h * 31 + static_cast<unsigned char>(*p);
  for (unsigned n = 0; n < site_slots; ++n) {
    site_entry& s = sites[(h + n) % site_slots];
    if (s.cls == 0) {
      const unsigned cls = new_class(kind, key != nullptr ? key->name : nullptr, file, line, nullptr, false);
      if (cls != 0) s = {file, line, key, cls};
      return cls;
    }
    if (key != nullptr ? s.key == key : (s.key == nullptr && s.line == line && std::strcmp(s.file, file) == 0))
      return s.cls;
  }
  return 0;
}

}  // namespace

unsigned register_lock(const void* lock, const char* kind, const std::source_location& at) noexcept {
  graph_guard g;
  const unsigned slot = find_slot(lock);
  if (slot != addr_slots) return static_cast<unsigned>(addr_table[slot].load(std::memory_order_relaxed) >> 48);
  const unsigned cls = new_class(kind, nullptr, at.file_name(), at.line(), lock, true);
  if (cls != 0 && !insert_addr(lock, cls)) {
    say("BUG: lockdep's lock table is full; %p stays untracked\n", lock);
    retire(cls);
    return 0;
  }
  return cls;
}

unsigned subclass_of(unsigned cls, unsigned subclass) noexcept {
  if (subclass >= max_subclasses) {
    say("BUG: looking up invalid subclass: %u\n", subclass);
    subclass = max_subclasses - 1;
  }
  const unsigned base = classes[cls].base != 0 ? classes[cls].base : cls;
  const unsigned have = classes[base].sub[subclass].load(std::memory_order_acquire);
  if (have != 0) return have;
  graph_guard g;
  unsigned id = classes[base].sub[subclass].load(std::memory_order_relaxed);
  if (id != 0) return id;
  id = new_class(classes[base].kind, nullptr, classes[base].file, classes[base].line, nullptr, false);
  if (id == 0) return cls;
  classes[id].base = base;
  classes[id].subclass = subclass;
  classes[base].sub[subclass].store(id, std::memory_order_release);
  return id;
}

void init_at_site(const void* lock, const char* kind, const std::source_location& at) noexcept {
  graph_guard g;
  set_addr_class(lock, site_class(at.file_name(), at.line(), nullptr, kind));
}

void define_class(const void* lock, const char* name, const char* kind, const char* file, unsigned line) noexcept {
  graph_guard g;
  set_addr_class(lock, new_class(kind, name, file, line, nullptr, false));
}

void set_class(const void* lock, const lock_class_key* key, const char* kind, const std::source_location& at) noexcept {
  graph_guard g;
  set_addr_class(lock, site_class(at.file_name(), at.line(), key, kind));
}

void lock_destroyed_slow(const void* lock) noexcept {
  graph_guard g;
  const unsigned slot = find_slot(lock);
  if (slot == addr_slots) return;
  const unsigned cls = static_cast<unsigned>(addr_table[slot].load(std::memory_order_relaxed) >> 48);
  erase_slot(slot);
  if (cls != 0 && classes[cls].anonymous && classes[cls].live) retire(cls);
}

void report_recursive(const void* lock, unsigned cls, unsigned held_index, const char* kind,
                      const std::source_location& at) noexcept {
  if (class_usage[cls].fetch_or(recursion_reported, std::memory_order_relaxed) & recursion_reported) return;
  const held_lock& h = tls_context.held[held_index];
  char a[256], b[256];
  ++tls_context.lockdep_recursion;
  banner("WARNING: possible recursive locking detected");
  say("thread %ld is trying to acquire lock:\n %p (%s), at: %s:%u\n\nbut thread is already holding lock:\n"
      " %p (%s), at: %s:%u\n\nother info that might help us debug this:\n Possible unsafe locking scenario:\n\n"
      "       CPU0\n       ----\n  lock(%s);\n  lock(%s);\n\n *** DEADLOCK ***\n\n"
      " May be due to missing lock nesting notation (spin_lock_nested/mutex_lock_nested)\n\n",
      static_cast<long>(gettid()), lock, describe(cls, a, sizeof a), at.file_name(), at.line(), h.lock,
      describe(h.cls, b, sizeof b), h.file, h.line, kind, kind);
  --tls_context.lockdep_recursion;
  report_end();
}

void add_dependency(unsigned prev_index, unsigned cls, const void* lock, const char* kind,
                    const std::source_location& at) noexcept {
  const held_lock prev = tls_context.held[prev_index];
  unsigned path[64];
  unsigned len = 0;
  {
    graph_guard g;
    if (has_edge(prev.cls, cls)) return;
    if (prev.cls != cls) len = find_path(cls, prev.cls, path, 64);
    dependency[prev.cls][cls / 64].fetch_or(1ull << (cls % 64), std::memory_order_relaxed);
    classes[prev.cls].has_edges = classes[cls].has_edges = true;
    record_edge(prev.cls, cls, at.file_name(), at.line());
    if (len == 0) return;
    // Report under the graph lock: the chain's records stay put while they print.
    char a[256], b[256];
    banner("WARNING: possible circular locking dependency detected");
    say("thread %ld is trying to acquire lock:\n %p (%s), at: %s:%u\n\nbut thread is already holding lock:\n"
        " %p (%s), at: %s:%u\n\nwhich lock already depends on the new lock.\n\n"
        "the existing dependency chain (in reverse order) is:\n",
        static_cast<long>(gettid()), lock, describe(cls, a, sizeof a), at.file_name(), at.line(), prev.lock,
        describe(prev.cls, b, sizeof b), prev.file, prev.line);
    for (unsigned i = len; i-- > 1;) {
      const edge_entry* e = find_edge(path[i - 1], path[i]);
      say("\n-> #%u (%s):\n       acquired at %s:%u by thread %ld while holding\n          %s\n", i - 1,
          describe(path[i], a, sizeof a), e != nullptr ? e->file : "?", e != nullptr ? e->line : 0,
          e != nullptr ? e->tid : 0L, describe(path[i - 1], b, sizeof b));
    }
    say("\nother info that might help us debug this:\n\n Possible unsafe locking scenario:\n\n"
        "       CPU0                    CPU1\n       ----                    ----\n"
        "  lock(%1$s);\n                               lock(%2$s);\n                               lock(%1$s);\n"
        "  lock(%2$s);\n\n *** DEADLOCK ***\n\n",
        short_name(prev.cls, a, sizeof a), short_name(cls, b, sizeof b));
    (void)kind;
  }
  report_end();
}

void mark_usage(unsigned cls, unsigned bit, const void* lock, const char* kind, const std::source_location& at) noexcept {
  unsigned conflict = 0;
  unsigned old_usage = 0;
  const char* old_file = nullptr;
  unsigned old_line = 0;
  {
    graph_guard g;
    old_usage = class_usage[cls].load(std::memory_order_relaxed);
    if (old_usage & bit) return;
    lock_class& k = classes[cls];
    k.usage_file[usage_index(bit)] = at.file_name();
    k.usage_line[usage_index(bit)] = at.line();
    conflict = old_usage & conflicts_of(bit);
    unsigned next = old_usage | bit;
    if (conflict != 0) {
      if (old_usage & usage_reported) conflict = 0;
      next |= usage_reported;
      conflict &= -conflict;  // the first one
      if (conflict != 0) {
        old_file = k.usage_file[usage_index(conflict)];
        old_line = k.usage_line[usage_index(conflict)];
      }
    }
    class_usage[cls].store(next, std::memory_order_relaxed);
  }
  if (conflict == 0) return;
  char a[256], headline[128];
  ++tls_context.lockdep_recursion;
  banner("WARNING: inconsistent lock state");
  std::snprintf(headline, sizeof headline, "inconsistent {%s} -> {%s} usage.", usage_name(conflict), usage_name(bit));
  say("%s\nthread %ld [HC%u[%u]:SC0[0]:HE%d:SE1] takes:\n %p (%s), at: %s:%u\n{%s} state was registered at:\n"
      "  %s:%u\n\nother info that might help us debug this:\n Possible unsafe locking scenario:\n\n"
      "       CPU0\n       ----\n  lock(%s);\n  <Interrupt>\n    lock(%s);\n\n *** DEADLOCK ***\n\n",
      headline, static_cast<long>(gettid()), in_irq() ? 1u : 0u, (preempt_count() & HARDIRQ_MASK) >> 16,
      irqs_disabled() ? 0 : 1, lock, describe(cls, a, sizeof a), at.file_name(), at.line(), usage_name(conflict),
      old_file != nullptr ? old_file : "?", old_line, kind, kind);
  --tls_context.lockdep_recursion;
  report_end();
}

void report_bad_unlock(const void* lock, const std::source_location& at) noexcept {
  if (!first_report_at(at.file_name(), at.line())) return;
  banner("WARNING: bad unlock balance detected!");
  say("thread %ld is trying to release lock (%p) at:\n %s:%u\nbut there are no more locks to release!\n\n"
      "other info that might help us debug this:\n",
      static_cast<long>(gettid()), lock, at.file_name(), at.line());
  report_end();
}

void report_not_held(const void* lock, const char* expr, const char* file, unsigned line) noexcept {
  if (!first_report_at(file, line)) return;
  say("\nWARNING: at %s:%u lockdep_assert_held(%s): lock %p is not held by thread %ld\n", file, line, expr, lock,
      static_cast<long>(gettid()));
  report_end();
}

void report_rcu_suspicious(const char* what, const std::source_location& at) noexcept {
  if (!first_report_at(at.file_name(), at.line())) return;
  banner("WARNING: suspicious RCU usage");
  say("%s:%u %s!\n\nother info that might help us debug this:\n\nrcu_read_lock_held() = 0, RCU nest depth: %u\n",
      at.file_name(), at.line(), what, tls_context.rcu_depth);
  report_end();
}

}  // namespace kprim::debug
#endif
