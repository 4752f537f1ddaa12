// percpu.cpp: the out-of-line, cold parts of kprim/percpu.hpp: counting CPUs, choosing the
// process-wide path, and counting rseq aborts. The fast paths live in the header.
#include <kprim/percpu.hpp>

#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace kprim {
namespace {

// Parses a kernel CPU list ("0-3,8-11") and returns one past its highest CPU, or 0.
unsigned highest_in_cpulist(const char* s) noexcept {
  unsigned best = 0, cur = 0;
  bool digits = false;
  for (;; ++s) {
    if (*s >= '0' && *s <= '9') {
      cur = cur * 10 + static_cast<unsigned>(*s - '0');
      digits = true;
      continue;
    }
    if (digits && cur + 1 > best) best = cur + 1;
    cur = 0;
    digits = false;
    if (*s == '\0' || *s == '\n') return best;
  }
}

unsigned count_possible_cpus() noexcept {
  unsigned n = 0;
  if (std::FILE* f = std::fopen("/sys/devices/system/cpu/possible", "re")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, f)) n = highest_in_cpulist(buf);
    std::fclose(f);
  }
  if (n == 0) {
    const long conf = sysconf(_SC_NPROCESSORS_CONF);
    n = conf > 0 ? static_cast<unsigned>(conf) : 1;
  }
  return n;
}

// Why the atomic path is live (or "rseq"); written once by detection, read by anyone.
std::atomic<const char*> path_reason{nullptr};
std::atomic<bool> forced{false};
std::atomic<std::uint64_t> aborts_total{0};
thread_local std::uint64_t aborts_thread = 0;

}  // namespace

namespace detail {

std::atomic<int> percpu_mode{percpu_mode_unknown};

bool percpu_mode_detect() noexcept {
  const char* reason;
  int mode = percpu_mode_atomic;
  if (forced.load(std::memory_order_relaxed)) {
    reason = "atomic: forced by percpu_force_atomic()";
  } else {
#if KPRIM_PERCPU_RSEQ
    if (__rseq_size < 20) {
      reason = "atomic: rseq not registered by glibc (GLIBC_TUNABLES=glibc.pthread.rseq=0?)";
    } else {
      reason = "rseq";
      mode = percpu_mode_rseq;
    }
#elif KPRIM_TSAN
    reason = "atomic: ThreadSanitizer build (TSan cannot see rseq asm)";
#else
    reason = "atomic: no rseq critical sections for this architecture";
#endif
  }
  path_reason.store(reason, std::memory_order_relaxed);
  percpu_mode.store(mode, std::memory_order_relaxed);
  return mode == percpu_mode_rseq;
}

void percpu_rseq_aborted() noexcept {
  ++aborts_thread;
  aborts_total.fetch_add(1, std::memory_order_relaxed);
#if KPRIM_PERCPU_RSEQ
  // glibc registers every thread it creates. A thread that is not registered (made with a raw
  // clone, or one that unregistered itself) would fail its CPU check forever; mixing it in on
  // the atomic path would lose other threads' unlocked commits. Neither is acceptable.
  if (static_cast<int>(__atomic_load_n(&rseq_x86::area()->cpu_id, __ATOMIC_RELAXED)) < 0) {
    std::fputs(
        "kprim: this_cpu_* on a thread without rseq registration while the rseq path "
        "is live\n",
        stderr);
    std::abort();
  }
#endif
}

unsigned percpu_getcpu_slow() noexcept {
  const int c = sched_getcpu();
  const unsigned n = nr_cpu_ids();
  if (c < 0) return 0;
  return static_cast<unsigned>(c) < n ? static_cast<unsigned>(c) : static_cast<unsigned>(c) % n;
}

}  // namespace detail

unsigned nr_cpu_ids() noexcept {
  static const unsigned n = count_possible_cpus();
  return n;
}

percpu_path percpu_live_path() noexcept {
  return detail::percpu_use_rseq() ? percpu_path::rseq : percpu_path::atomic;
}

const char* percpu_path_name() noexcept {
  const char* r = path_reason.load(std::memory_order_relaxed);
  if (r == nullptr) {
    detail::percpu_mode_detect();
    r = path_reason.load(std::memory_order_relaxed);
  }
  return r;
}

void percpu_force_atomic(bool on) noexcept {
  forced.store(on, std::memory_order_relaxed);
  detail::percpu_mode_detect();
}

std::uint64_t percpu_rseq_aborts() noexcept {
  return aborts_total.load(std::memory_order_relaxed);
}

std::uint64_t percpu_rseq_aborts_this_thread() noexcept { return aborts_thread; }

}  // namespace kprim
