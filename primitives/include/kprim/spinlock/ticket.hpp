// kprim/spinlock/ticket.hpp: the asm-generic ticket spinlock (include/asm-generic/spinlock.h):
// strict FIFO in one word, every waiter polls the same line. Prefer kprim::qspinlock, which
// hands over on a private line; use this where strict FIFO with a tiny fast path is the point.
#pragma once

#include <kprim/spinlock/spin_wait.hpp>
#include <kprim/lockdep.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace kprim {

/// basic_ticket_spinlock<P> - lock word layout (little-endian):
///   bits  0-15  owner: the ticket now being served
///   bits 16-31  next:  the next ticket to hand out
/// Invariant: next - owner (mod 2^16) = holders (0 or 1) + waiters; at most 65535 waiters.
/// Fairness: strict FIFO. P: spin (the kernel's loop) or yield (the preemption remedy; it
/// cannot fix FIFO hand-over to a descheduled waiter, only shorten it).
template <spin_policy P>
class basic_ticket_spinlock : public detail::annotated_spinlock<basic_ticket_spinlock<P>> {
  static_assert(P != spin_policy::virt, "the virt fallback belongs to qspinlock");

 public:
  static constexpr std::uint32_t ticket_shift = 16;
  static constexpr std::uint32_t ticket_one = 1u << ticket_shift;

  basic_ticket_spinlock() = default;

  // lock()/try_lock()/unlock() with the ThreadSanitizer annotations, and the checkers'
  // destructor, come from detail::annotated_spinlock (kprim/lockdep.hpp); raw_*() below are
  // the bare algorithm.
  basic_ticket_spinlock(const basic_ticket_spinlock&) = delete;
  basic_ticket_spinlock& operator=(const basic_ticket_spinlock&) = delete;

  /// lock() - arch_spin_lock(): take a ticket, wait until it is served.
  /// Ordering: acquire. Context: spins, never sleeps. Cost: one fetch_add uncontended.
  void raw_lock() noexcept {
    const std::uint32_t val = word().fetch_add(ticket_one, std::memory_order_acquire);
    const std::uint16_t ticket = static_cast<std::uint16_t>(val >> ticket_shift);
    if (likely(ticket == static_cast<std::uint16_t>(val))) return;
    // The kernel's smp_cond_load_acquire() on the owner half (WFE on arm64) under P == spin.
    spin_cond_load_acquire<P>(&w_.t.owner, [ticket](std::uint16_t served) { return served == ticket; });
  }

  /// try_lock() - arch_spin_trylock(): take a ticket only if it would be served at once.
  /// Ordering: acquire on success, relaxed on failure. Context: never waits.
  [[nodiscard]] bool raw_try_lock() noexcept {
    std::uint32_t old = word().load(std::memory_order_relaxed);
    if ((old >> ticket_shift) != (old & 0xffff)) return false;
    return word().compare_exchange_strong(old, old + ticket_one, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  /// unlock() - arch_spin_unlock(): serve the next ticket (only the holder changes `owner`).
  /// Requires: held by the caller. Ordering: release. The kernel stores the 16-bit half; here
  /// a 32-bit fetch_add that wraps `owner` without carrying into `next`, for the same reason
  /// as qspinlock's unlock (a narrow store before the next wide locked op stalls on AMD).
  void raw_unlock() noexcept {
    const std::uint16_t served = owner().load(std::memory_order_relaxed);
    word().fetch_add(served == 0xffff ? 1u - ticket_one : 1u, std::memory_order_release);
  }

  /// is_locked() - held or waited for. Ordering: relaxed snapshot.
  [[nodiscard]] bool is_locked() const noexcept {
    const std::uint32_t v = std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(w_.val)).load(std::memory_order_relaxed);
    return (v >> ticket_shift) != (v & 0xffff);
  }

 private:
  union ticket_word {
    std::uint32_t val = 0;
    struct {
      std::uint16_t owner, next;
    } t;
  };
  static_assert(std::endian::native == std::endian::little, "owner is the low half");
  static_assert(sizeof(ticket_word) == 4 && offsetof(ticket_word, t.next) == ticket_shift / 8);

  std::atomic_ref<std::uint32_t> word() noexcept { return std::atomic_ref<std::uint32_t>(w_.val); }
  std::atomic_ref<std::uint16_t> owner() noexcept { return std::atomic_ref<std::uint16_t>(w_.t.owner); }
  ticket_word w_;
};

using ticket_spinlock = basic_ticket_spinlock<spin_policy::yield>;
static_assert(sizeof(ticket_spinlock) == 4 && alignof(ticket_spinlock) == 4);

}  // namespace kprim
