// kprim/detail/irq_state.hpp: internal - the per-thread interrupt state behind kprim/irq.hpp
// (the soft interrupt mask, the pending word, the handler depth). Separate from irq.hpp so
// the slab allocator's inline fast paths can test "am I in a kprim handler" with one
// thread-local load and no <signal.h>. Include kprim/irq.hpp, not this.
#pragma once

#include <atomic>
#include <cstdint>

namespace kprim::detail {

/// One thread's interrupt state. Written by the thread itself and by kprim's signal trampoline
/// running on the same thread, never by another thread: relaxed atomics (plain moves on
/// x86-64 and arm64, and whole, so a signal lands before or after each access, never inside)
/// with std::atomic_signal_fence for the order against the code they bracket.
struct irq_state {
  /// The soft mask: 1 while local_irq_disable()/local_irq_save()/a handler is in effect.
  std::atomic<unsigned char> off;
  /// kprim handlers running on this thread (0 or 1: handlers do not nest, the trampoline runs
  /// with every signal blocked and replays run with the soft mask set).
  std::atomic<unsigned char> hardirq;
  /// Signals that arrived while `off` was set, bit (signo - 1); replayed by the restore that
  /// clears `off`. Set by the trampoline (fetch_or), cleared by the replay (exchange).
  std::atomic<std::uint64_t> pending;
};
static_assert(std::atomic<unsigned char>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "the signal trampoline may only touch lock-free atomics");

/// Zero-initialised static TLS: interrupts on, none pending, in process context; no init
/// guard on access (a guard would not be async-signal-safe).
inline constinit thread_local irq_state tls_irq{};

/// in_kprim_irq() - inside a kprim interrupt handler (delivered or replayed), in every build
/// (kprim::in_irq() is the debug layer's and answers false in release). Cost: one TLS load.
[[nodiscard]] inline bool in_kprim_irq() noexcept { return tls_irq.hardirq.load(std::memory_order_relaxed) != 0; }

}  // namespace kprim::detail
