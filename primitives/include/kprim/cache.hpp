// kprim/cache.hpp: cache-aligned layouts (the kernel's ____cacheline_aligned_in_smp).
// Use cacheline_padded<T> for per-thread slots and hot shared words; never pad read-mostly data.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace kprim {

/// Size of a cache line on the targets we build for (x86-64, arm64). A compile-time constant
/// on purpose: std::hardware_destructive_interference_size varies with -mtune and warns in g++ 12.
inline constexpr std::size_t cacheline_size = 64;

/// Alignment that also keeps the adjacent-line prefetcher (pairs of lines on x86) from
/// coupling two slots; use for per-thread counters that are written at high rates.
inline constexpr std::size_t cacheline_pair_size = 2 * cacheline_size;

/// cacheline_padded<T> - T alone on its own cache line(s): alignof == sizeof % 64 == 0.
/// Layout contract: value at offset 0; sizeof is a multiple of cacheline_size.
template <class T>
struct alignas(cacheline_size) cacheline_padded {
  T value{};

  cacheline_padded() = default;
  template <class... Args>
  explicit cacheline_padded(std::in_place_t, Args&&... args) : value(std::forward<Args>(args)...) {}

  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
  const T* operator->() const noexcept { return &value; }
};

}  // namespace kprim

/// The kernel's ____cacheline_aligned_in_smp, for struct members and variables.
#define ____cacheline_aligned_in_smp alignas(::kprim::cacheline_size)
#define ____cacheline_aligned alignas(::kprim::cacheline_size)
