// kprim/futex.hpp: thin wrappers over futex(2) FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE, the
// sleeping half of kprim's mutex and rw_semaphore. For portable waiting use
// std::atomic::wait(), which also spins first; use these only under a kernel-style protocol.
#pragma once

#include <atomic>
#include <cstdint>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kprim {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
              std::atomic<std::uint32_t>::is_always_lock_free);

/// futex_wait() - sleep while *word == expected (checked atomically by the kernel).
/// Context: may sleep; process-private futex. Returns on a wake-up, on a signal, or at once
/// when *word != expected: callers always re-check their condition (spurious returns are
/// normal). Ordering: none by itself; pair it with acquire loads of the protocol's state.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
            nullptr, nullptr, 0);
}

/// futex_wake() - wake up to n threads sleeping in futex_wait() on `word`.
/// Context: never sleeps (one system call). Ordering: the caller's earlier stores to `word`
/// must be visible first: store with release (or stronger) before calling.
inline void futex_wake(std::atomic<std::uint32_t>& word, int n = 1) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, n, nullptr,
            nullptr, 0);
}

}  // namespace kprim
