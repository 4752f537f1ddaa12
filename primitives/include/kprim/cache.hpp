// kprim/cache.hpp: cache-aligned layouts (the kernel's ____cacheline_aligned_in_smp).
// Use cacheline_padded<T> for per-thread slots and hot shared words; never pad read-mostly data.
#pragma once

#include <cstddef>
#include <cstdint>
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

// ---- layout helpers, for static_assert()s on hot structures ------------------------------
// The kernel checks its hot structures with CACHELINE_ASSERT_GROUP_*() (include/linux/cache.h);
// these are the C++ equivalents, evaluated on offsetof()/sizeof() at compile time:
//     static_assert(kprim::is_cacheline_padded_v<per_cpu_slot>);
//     KPRIM_ASSERT_SAME_CACHELINE(rq, lock, nr_running);       // read together: share a line
//     KPRIM_ASSERT_DIFFERENT_CACHELINES(rq, lock, clock);      // written by others: apart
//     KPRIM_ASSERT_CACHELINE_ALIGNED_MEMBER(rq, lock);         // starts a line
//     KPRIM_ASSERT_FITS_CACHELINES(rq_hot, 1);                 // whole type in one line

/// True when every object of T starts on a cache-line boundary.
template <class T>
inline constexpr bool is_cacheline_aligned_v = alignof(T) % cacheline_size == 0;
/// True when T is aligned and a whole number of lines: array elements never share a line.
template <class T>
inline constexpr bool is_cacheline_padded_v = is_cacheline_aligned_v<T> && sizeof(T) % cacheline_size == 0;

/// Index of the cache line holding byte `offset` of an object that starts on a line boundary.
constexpr std::size_t cacheline_of(std::size_t offset) noexcept { return offset / cacheline_size; }
/// Lines touched by `size` bytes at `offset` (from a line-aligned base).
constexpr std::size_t cachelines_spanned(std::size_t offset, std::size_t size) noexcept {
  return size == 0 ? 0 : cacheline_of(offset + size - 1) - cacheline_of(offset) + 1;
}
/// True when [off_a, off_a+size_a) and [off_b, off_b+size_b) share no cache line.
constexpr bool cachelines_disjoint(std::size_t off_a, std::size_t size_a, std::size_t off_b,
                                   std::size_t size_b) noexcept {
  return cacheline_of(off_a + size_a - 1) < cacheline_of(off_b) ||
         cacheline_of(off_b + size_b - 1) < cacheline_of(off_a);
}
/// Round n up to a whole number of cache lines.
constexpr std::size_t cacheline_roundup(std::size_t n) noexcept {
  return (n + cacheline_size - 1) / cacheline_size * cacheline_size;
}

/// Whether p is cache-line aligned (run-time check, e.g. for allocator results).
inline bool is_cacheline_aligned(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) % cacheline_size == 0;
}

}  // namespace kprim

#define KPRIM_MEMBER_SIZE(T, m) sizeof(static_cast<T*>(nullptr)->m)

/// Both members lie entirely within one cache line (T must be cache-line aligned for the
/// line numbers to be the real ones: checked too).
#define KPRIM_ASSERT_SAME_CACHELINE(T, a, b)                                                        \
  static_assert(::kprim::is_cacheline_aligned_v<T> &&                                               \
                    ::kprim::cacheline_of(offsetof(T, a)) ==                                        \
                        ::kprim::cacheline_of(offsetof(T, a) + KPRIM_MEMBER_SIZE(T, a) - 1) &&      \
                    ::kprim::cacheline_of(offsetof(T, b)) ==                                        \
                        ::kprim::cacheline_of(offsetof(T, b) + KPRIM_MEMBER_SIZE(T, b) - 1) &&      \
                    ::kprim::cacheline_of(offsetof(T, a)) == ::kprim::cacheline_of(offsetof(T, b)), \
                #T "::" #a " and " #T "::" #b " must share one cache line")

/// The two members share no cache line (no false sharing between them).
#define KPRIM_ASSERT_DIFFERENT_CACHELINES(T, a, b)                                         \
  static_assert(::kprim::is_cacheline_aligned_v<T> &&                                      \
                    ::kprim::cachelines_disjoint(offsetof(T, a), KPRIM_MEMBER_SIZE(T, a),  \
                                                 offsetof(T, b), KPRIM_MEMBER_SIZE(T, b)), \
                #T "::" #a " and " #T "::" #b " must not share a cache line")

/// The member starts a cache line.
#define KPRIM_ASSERT_CACHELINE_ALIGNED_MEMBER(T, m)                                                  \
  static_assert(::kprim::is_cacheline_aligned_v<T> && offsetof(T, m) % ::kprim::cacheline_size == 0, \
                #T "::" #m " must start a cache line")

/// The whole type fits in n cache lines.
#define KPRIM_ASSERT_FITS_CACHELINES(T, n) \
  static_assert(sizeof(T) <= (n) * ::kprim::cacheline_size, #T " must fit in " #n " cache line(s)")

/// The kernel's CACHELINE_ASSERT_GROUP_SIZE spirit: members first..last (inclusive, declared
/// in that order) span at most `bytes` bytes.
#define KPRIM_ASSERT_GROUP_SIZE(T, first, last, bytes)                                          \
  static_assert(offsetof(T, last) + KPRIM_MEMBER_SIZE(T, last) - offsetof(T, first) <= (bytes), \
                #T ": group " #first ".." #last " exceeds " #bytes " bytes")

/// The kernel's ____cacheline_aligned_in_smp, for struct members and variables.
#define ____cacheline_aligned_in_smp alignas(::kprim::cacheline_size)
#define ____cacheline_aligned alignas(::kprim::cacheline_size)
/// L1_CACHE_BYTES / SMP_CACHE_BYTES - the kernel's names for the line size.
#define L1_CACHE_BYTES (::kprim::cacheline_size)
#define SMP_CACHE_BYTES (::kprim::cacheline_size)
/// __read_mostly - the kernel puts these in their own section; here a marker only.
#define __read_mostly
