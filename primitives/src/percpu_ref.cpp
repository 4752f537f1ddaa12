// percpu_ref.cpp: the cold paths of kprim/percpu_ref.hpp - construction (choosing the mode),
// the per-CPU -> atomic switch with its membarrier fence, kill and release.
#include <kprim/percpu_ref.hpp>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace kprim {
namespace {

#if KPRIM_PERCPU_RSEQ
long membarrier(int cmd) noexcept { return syscall(__NR_membarrier, cmd, 0u, 0); }
#endif

bool register_rseq_fence() noexcept {
#if KPRIM_PERCPU_RSEQ
  const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
  if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ)) return false;
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0;
#else
  return false;
#endif
}

/// Every thread of this process that is inside an rseq critical section right now either
/// has committed or will restart it; a full barrier on each CPU running one of our threads.
void rseq_fence() noexcept {
#if KPRIM_PERCPU_RSEQ
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) != 0) {
    std::perror("kprim: membarrier(PRIVATE_EXPEDITED_RSEQ) failed after registration");
    std::abort();
  }
#endif
}

}  // namespace

bool percpu_ref_percpu_available() noexcept {
  static const bool fence = register_rseq_fence();
  return fence && percpu_live_path() == percpu_path::rseq;
}

percpu_ref::percpu_ref(percpu_ref_func_t release, unsigned flags) noexcept
    : mode_(mode_atomic), release_(release), count_(1) {
  if (!(flags & PERCPU_REF_INIT_ATOMIC) && percpu_ref_percpu_available()) {
    count_.store(1 + bias, std::memory_order_relaxed);
    mode_ = 0;
  }
}

void percpu_ref::release_now() noexcept {
  if (release_ != nullptr) release_(this);
}

void percpu_ref::switch_to_atomic_locked(std::uintptr_t new_mode) noexcept {
  const bool was_percpu = mode() == 0;
  std::atomic_ref<std::uintptr_t>(mode_).store(new_mode, std::memory_order_seq_cst);
  if (!was_percpu) return;
  rseq_fence();
  // No per-CPU update can commit any more: fold the slots into count and clear them.
  std::int64_t sum = 0;
  for_each_possible_cpu([&](unsigned cpu) {
    sum += std::atomic_ref<std::int64_t>(*pcpu_.slot(cpu)).exchange(0, std::memory_order_relaxed);
  });
  count_.fetch_add(sum - bias, std::memory_order_acq_rel);
}

void percpu_ref_switch_to_atomic_sync(percpu_ref& ref) noexcept {
  std::lock_guard<std::mutex> g(ref.switch_lock_);
  ref.switch_to_atomic_locked(ref.mode() | percpu_ref::mode_atomic);
}

void percpu_ref_switch_to_percpu(percpu_ref& ref) noexcept {
  std::lock_guard<std::mutex> g(ref.switch_lock_);
  if (ref.mode() != percpu_ref::mode_atomic || !percpu_ref_percpu_available()) return;
  // Slots are all zero (cleared by the last switch, untouched in atomic mode since).
  ref.count_.fetch_add(percpu_ref::bias, std::memory_order_relaxed);
  std::atomic_ref<std::uintptr_t>(ref.mode_).store(0, std::memory_order_release);
}

void percpu_ref_kill(percpu_ref& ref) noexcept {
  {
    std::lock_guard<std::mutex> g(ref.switch_lock_);
    if (ref.mode() & percpu_ref::mode_dead) {
      std::fputs("kprim: percpu_ref_kill() called more than once\n", stderr);
      std::abort();
    }
    ref.switch_to_atomic_locked(percpu_ref::mode_atomic | percpu_ref::mode_dead);
  }
  percpu_ref_put(ref);  // the initial reference
}

}  // namespace kprim
