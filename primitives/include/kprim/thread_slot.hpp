// kprim/thread_slot.hpp: small dense per-thread ids, the user-space stand-in for the kernel's
// CPU number in lock words (qspinlock tail, OSQ tail) and the home of each thread's lock nodes.
// Not a CPU id: for per-CPU data use restartable sequences (kprim/percpu), not this.
#pragma once

#include <kprim/compiler.hpp>

#include <cstdint>

namespace kprim {

/// Slot ids fit in 14 bits so that (slot + 1) fits the qspinlock tail's CPU field.
/// At most this many threads may use kprim's queued locks at the same time.
inline constexpr unsigned max_thread_slots = (1u << 14) - 1;

namespace detail {
inline constexpr unsigned no_slot = ~0u;
// Defined here with a constant initialiser so every TU reads it directly (an extern
// thread_local defined elsewhere goes through GCC's TLS wrapper, which UBSan flags as null).
inline thread_local unsigned this_slot = no_slot;
[[gnu::cold]] unsigned thread_slot_acquire() noexcept;
}  // namespace detail

/// this_thread_slot() - the calling thread's slot id in [0, max_thread_slots).
/// Context: any thread; the first call in a thread claims the lowest free slot (takes a
/// process-wide mutex once); the slot is given back when the thread exits and may then be
/// reused by a later thread. Aborts the process if more than max_thread_slots threads hold one.
/// Cost: one thread-local load after the first call.
inline unsigned this_thread_slot() noexcept {
  const unsigned s = detail::this_slot;
  if (likely(s != detail::no_slot)) return s;
  return detail::thread_slot_acquire();
}

}  // namespace kprim
