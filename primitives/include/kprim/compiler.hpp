// kprim/compiler.hpp: the kernel's compiler idioms (barrier, likely/unlikely, cpu_relax,
// READ_ONCE/WRITE_ONCE, container_of). For ordering between CPUs use kprim/barrier.hpp, not
// these: they only constrain the compiler.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

// KPRIM_TSAN: 1 when built with -fsanitize=thread. ThreadSanitizer does not understand racing
// volatile accesses or inline-asm fences, so under it READ_ONCE/WRITE_ONCE become relaxed
// __atomic accesses (same single access, same code on x86-64 at -O2, but visible to TSan).
#if defined(__SANITIZE_THREAD__)
#define KPRIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KPRIM_TSAN 1
#endif
#endif
#ifndef KPRIM_TSAN
#define KPRIM_TSAN 0
#endif

namespace kprim {

/// barrier() - compiler barrier. Context: any. Cost: zero instructions.
/// Stops the compiler from moving memory accesses across it; the CPU may still reorder.
// clang-format 14 with ColumnLimit 0 splits the "::: " of asm one-liners apart: keep them.
// clang-format off
inline void barrier() noexcept { asm volatile("" ::: "memory"); }
// clang-format on

/// cpu_relax() - spin-wait hint (x86 `pause`, arm64 `yield`). Context: any; never sleeps.
/// Also a compiler barrier, so a relaxed re-read after it is not hoisted out of a loop.
inline void cpu_relax() noexcept {
  // clang-format off
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("pause" ::: "memory");
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
  // clang-format on
}

namespace detail {

/// Types READ_ONCE/WRITE_ONCE accept: trivially copyable, and the size of one machine access
/// (1, 2, 4 or 8 bytes), so the access is single and never torn (the kernel's
/// compiletime_assert_rwonce_type()).
template <class T>
inline constexpr bool rwonce_ok =
    std::is_trivially_copyable_v<T> &&
    (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);

template <class T>
inline constexpr bool rwonce_scalar = std::is_scalar_v<T> && !std::is_member_pointer_v<T>;

}  // namespace detail

/// read_once() - READ_ONCE(x): one untorn load the compiler may not merge, repeat, elide or
/// split. Context: any. Cost: one plain load (`mov` on x86-64). Orders nothing by itself.
template <class T>
[[nodiscard]] inline std::remove_cv_t<T> read_once(const T& x) noexcept {
  using U = std::remove_cv_t<T>;
  static_assert(detail::rwonce_ok<U>, "READ_ONCE: type must be trivially copyable, 1/2/4/8 bytes");
  if constexpr (detail::rwonce_scalar<U> && !KPRIM_TSAN) {
    return *static_cast<const volatile U*>(&x);
  } else {
    // Generic __atomic_load: still one access for these sizes, works for small structs.
    alignas(alignof(U)) unsigned char buf[sizeof(U)];
    __atomic_load(const_cast<U*>(&x), reinterpret_cast<U*>(buf), __ATOMIC_RELAXED);
    return std::bit_cast<U>(buf);
  }
}

/// write_once() - WRITE_ONCE(x, v): one untorn store the compiler may not merge, repeat, elide
/// or split. Context: any. Cost: one plain store. Orders nothing by itself.
template <class T>
inline void write_once(T& x, std::type_identity_t<T> v) noexcept {
  static_assert(!std::is_const_v<T>, "WRITE_ONCE to a const object");
  static_assert(detail::rwonce_ok<T>, "WRITE_ONCE: type must be trivially copyable, 1/2/4/8 bytes");
  if constexpr (detail::rwonce_scalar<T> && !KPRIM_TSAN) {
    *static_cast<volatile T*>(&x) = v;
  } else {
    __atomic_store(&x, &v, __ATOMIC_RELAXED);
  }
}

/// offset_of_member() - byte offset of a data member given as a pointer to member.
/// Context: any; folded to a constant at -O1 and above. Itanium C++ ABI (g++, clang on
/// Linux): a data member pointer is its offset as a ptrdiff_t.
template <class T, class M>
[[nodiscard]] inline std::size_t offset_of_member(M T::*member) noexcept {
  static_assert(sizeof(member) == sizeof(std::ptrdiff_t), "Itanium ABI data member pointer expected");
  return static_cast<std::size_t>(std::bit_cast<std::ptrdiff_t>(member));
}

namespace detail {
template <auto Member>
struct member_traits;
template <class T, class M, M T::*Member>
struct member_traits<Member> {
  using owner = T;
  using type = M;
};
}  // namespace detail

/// container_of<&T::member>(ptr) - the T that contains the member *ptr points to.
/// Type-checked: ptr must point to the member's exact type (cv-qualifiers aside); const is
/// preserved (a const member pointer yields a const T*). Context: any. Cost: one subtraction.
template <auto Member, class P>
[[nodiscard]] inline auto container_of(P* ptr) noexcept {
  using traits = detail::member_traits<Member>;
  using T = typename traits::owner;
  static_assert(std::is_same_v<std::remove_cv_t<P>, std::remove_cv_t<typename traits::type>>,
                "container_of: pointer type does not match the member's type");
  using R = std::conditional_t<std::is_const_v<P>, const T, T>;
  // Integer arithmetic: the kernel's list macros form a "fake" entry around the list head
  // (never dereferenced beyond the head), which pointer arithmetic would flag (-Warray-bounds).
  return reinterpret_cast<R*>(reinterpret_cast<std::uintptr_t>(ptr) - offset_of_member(Member));
}

}  // namespace kprim

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/// The kernel spellings. READ_ONCE(x) takes an lvalue; WRITE_ONCE(x, val) assigns it once.
#define READ_ONCE(x) (::kprim::read_once(x))
#define WRITE_ONCE(x, val) (::kprim::write_once((x), (val)))

/// container_of(ptr, type, member) - the kernel's macro, type-checked as in the kernel
/// (ptr must point to type::member's type). Works for any class with that data member.
#define container_of(ptr, type, member) (::kprim::container_of<&type::member>(ptr))

/// KPRIM_ENTRY_TYPE(pos) - the element type of an entry pointer (the kernel's typeof(*pos)),
/// used by the list_for_each_entry() family of macros.
#define KPRIM_ENTRY_TYPE(pos) std::remove_reference_t<decltype(*(pos))>
