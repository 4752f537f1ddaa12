// kprim/percpu/rseq.hpp: internal - the x86-64 restartable-sequence critical sections behind
// kprim/percpu.hpp, on glibc's own rseq registration. Include kprim/percpu.hpp, not this.
//
// How one critical section works (kernel Documentation: rseq(2), include/uapi/linux/rseq.h):
//   - a descriptor `struct rseq_cs {version 0, flags 0, start_ip, post_commit_offset,
//     abort_ip}` is emitted into section __rseq_cs, one per inlined copy of the asm;
//   - the asm stores the descriptor's address into rseq->rseq_cs (arming it), then, from
//     start_ip, checks that rseq->cpu_id still equals the CPU the caller read before the
//     sequence (and so indexed its slot with), does its work, and commits with one store;
//   - if the thread is preempted, migrated or signalled while its instruction pointer is in
//     [start_ip, start_ip + post_commit_offset), the kernel moves it to abort_ip on the way
//     back to user space; the four bytes before abort_ip must be the signature glibc
//     registered (RSEQ_SIG, 0x53053053 on x86-64), so the kernel never jumps to arbitrary code;
//   - the abort handler jumps to a C++ label; the caller counts the abort and retries.
// Every statement is `asm volatile goto`: with outputs, a plain asm goto is not implicitly
// volatile in g++ 12 and is deleted when its scratch outputs are unused.
// Because nothing else can run on this CPU between the check and the commit without
// restarting us, the commit needs no `lock` prefix: an interrupt lands before or after the
// committing instruction, never inside it.
//
// Not available under ThreadSanitizer (TSan cannot see memory accesses made by inline asm, so
// it could neither check nor trust them): KPRIM_PERCPU_RSEQ is 0 there and kprim/percpu.hpp
// uses its atomic fallback, which TSan does check.
#pragma once

#include <kprim/compiler.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__) && !KPRIM_TSAN && __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define KPRIM_PERCPU_RSEQ 1
#else
#define KPRIM_PERCPU_RSEQ 0
#endif

namespace kprim {
/// percpu_scalar - the types this_cpu_* read-modify-writes work on: 4- or 8-byte integers,
/// which one x86-64 instruction loads or stores whole (single-copy atomic).
template <class T>
concept percpu_scalar = std::is_integral_v<T> &&(sizeof(T) == 4 || sizeof(T) == 8);
}  // namespace kprim

#if KPRIM_PERCPU_RSEQ
namespace kprim::detail::rseq_x86 {

// Layout of the glibc-registered area that the asm below addresses by offset.
inline constexpr int cpu_id_start_off = 0;  // u32, always a valid CPU number
inline constexpr int cpu_id_off = 4;        // u32, current CPU, or negative if unregistered
inline constexpr int rseq_cs_off = 8;       // u64, armed critical-section descriptor
static_assert(offsetof(struct rseq, cpu_id_start) == cpu_id_start_off);
static_assert(offsetof(struct rseq, cpu_id) == cpu_id_off);
static_assert(offsetof(struct rseq, rseq_cs) == rseq_cs_off);
static_assert(RSEQ_SIG == 0x53053053, "the abort signature below is spelled out");

/// area() - the calling thread's struct rseq, at thread pointer + __rseq_offset.
/// Valid only when __rseq_size != 0 (glibc registered rseq). Cost: two loads and an add.
[[gnu::always_inline]] inline struct rseq* area() noexcept {
  return reinterpret_cast<struct rseq*>(static_cast<char*>(__builtin_thread_pointer()) +
                                        __rseq_offset);
}

/// cpu_start() - the CPU number to index a slot with before entering a critical section.
[[gnu::always_inline]] inline unsigned cpu_start(struct rseq* rs) noexcept {
  return __atomic_load_n(&rs->cpu_id_start, __ATOMIC_RELAXED);
}

// The pieces every critical section shares. %[rs] is the rseq area, %[cpu] the CPU the slot
// was chosen for, %[cs] a scratch register. Labels: 1 start_ip, 2 post-commit, 3 descriptor,
// 4 abort_ip (after the signature, in its own section so the fast path stays straight).
// The `?` section flag puts the descriptor and the abort stub in the COMDAT group of the
// function around them: an inline function emitted out of line in several objects keeps one
// copy, and the linker must drop that copy's descriptor and stub with it (without `?`, -O0
// builds fail to link: __rseq_cs referencing a discarded section).
#define KPRIM_RSEQ_ENTER                \
  ".pushsection __rseq_cs, \"aw?\"\n\t" \
  ".balign 32\n\t"                      \
  "3:\n\t"                              \
  ".long 0x0, 0x0\n\t"                  \
  ".quad 1f, (2f - 1f), 4f\n\t"         \
  ".popsection\n\t"                     \
  "leaq 3b(%%rip), %[cs]\n\t"           \
  "movq %[cs], 8(%[rs])\n\t"            \
  "1:\n\t"                              \
  "cmpl %[cpu], 4(%[rs])\n\t"           \
  "jnz 4f\n\t"
// ud1 opcode bytes before the signature make the signature disassemble as one (trapping)
// instruction instead of garbage, as the kernel's selftests do.
#define KPRIM_RSEQ_EXIT                      \
  "2:\n\t"                                   \
  ".pushsection __rseq_failure, \"ax?\"\n\t" \
  ".byte 0x0f, 0xb9, 0x3d\n\t"               \
  ".long 0x53053053\n\t"                     \
  "4:\n\t"                                   \
  "jmp %l[abort]\n\t"                        \
  ".popsection\n\t"

/// add() - *slot += n if still on `cpu`; false if the sequence aborted (nothing written).
/// Commit: the store of one unlocked `add` to memory.
template <percpu_scalar T>
[[gnu::always_inline]] inline bool add(struct rseq* rs, unsigned cpu, T* slot, T n) noexcept {
  std::uintptr_t cs;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "add %[n], (%[slot])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [n] "r"(n)
                    : "memory", "cc"
                    : abort);
  return true;
abort:
  return false;
}

/// store() - *slot = v if still on `cpu`; false if aborted. Commit: one `mov` to memory.
template <percpu_scalar T>
[[gnu::always_inline]] inline bool store(struct rseq* rs, unsigned cpu, T* slot, T v) noexcept {
  std::uintptr_t cs;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "mov %[v], (%[slot])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [v] "r"(v)
                    : "memory", "cc"
                    : abort);
  return true;
abort:
  return false;
}

/// xchg() - *prev = *slot, *slot = v if still on `cpu`; false if aborted.
template <percpu_scalar T>
[[gnu::always_inline]] inline bool xchg(struct rseq* rs, unsigned cpu, T* slot, T v,
                                        T* prev) noexcept {
  std::uintptr_t cs;
  T p;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "mov (%[slot]), %[p]\n\t"
                    "mov %[v], (%[slot])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs), [p] "=&r"(p)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [v] "r"(v)
                    : "memory", "cc"
                    : abort);
  *prev = p;
  return true;
abort:
  return false;
}

/// cmpxchg() - *prev = *slot; if it equals `old`, *slot = v; all if still on `cpu`; false if
/// aborted. A mismatch leaves the sequence at the post-commit label without storing.
template <percpu_scalar T>
[[gnu::always_inline]] inline bool cmpxchg(struct rseq* rs, unsigned cpu, T* slot, T old, T v,
                                           T* prev) noexcept {
  std::uintptr_t cs;
  T p;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "mov (%[slot]), %[p]\n\t"
                    "cmp %[old], %[p]\n\t"
                    "jne 2f\n\t"
                    "mov %[v], (%[slot])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs), [p] "=&r"(p)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [old] "r"(old), [v] "r"(v)
                    : "memory", "cc"
                    : abort);
  *prev = p;
  return true;
abort:
  return false;
}

/// add_return() - *slot += n if still on `cpu`, and *result = the new value; false if
/// aborted. Commit: the final `mov` (load, add in a register, store).
template <percpu_scalar T>
[[gnu::always_inline]] inline bool add_return(struct rseq* rs, unsigned cpu, T* slot, T n,
                                              T* result) noexcept {
  std::uintptr_t cs;
  T r;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "mov (%[slot]), %[r]\n\t"
                    "add %[n], %[r]\n\t"
                    "mov %[r], (%[slot])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs), [r] "=&r"(r)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [n] "r"(n)
                    : "memory", "cc"
                    : abort);
  *result = r;
  return true;
abort:
  return false;
}

/// add_if_word_zero() - *slot += n only if *word == 0 when checked inside the sequence; false
/// in *gated otherwise (nothing written). percpu_ref's per-CPU get/put: the mode word is read
/// inside the critical section, so membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) after a
/// mode change guarantees every sequence that saw the old mode has committed or will restart.
template <percpu_scalar T>
[[gnu::always_inline]] inline bool add_if_word_zero(struct rseq* rs, unsigned cpu, T* slot, T n,
                                                    const std::uintptr_t* word,
                                                    bool* gated) noexcept {
  std::uintptr_t cs;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "cmpq $0, (%[word])\n\t"
                    "jne %l[closed]\n\t"
                    "add %[n], (%[slot])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [n] "r"(n), [word] "r"(word)
                    : "memory", "cc"
                    : abort, closed);
  *gated = false;
  return true;
closed:
  *gated = true;
  return true;
abort:
  return false;
}

/// stack_pop() - pop one pointer from the stack *slot points at, if still on `cpu`: a stack
/// is {u32 count; u32 capacity; 8 bytes; void* items[capacity]} (kprim::slab's magazine).
/// Returns 1 and *out = items[--count], 0 if the stack is empty (nothing written), -1 if the
/// sequence aborted. *slot is read inside the sequence, so a slow path that replaced it (an
/// xchg() on the same CPU) is never raced. Commit: the store of the new count.
[[gnu::always_inline]] inline int stack_pop(struct rseq* rs, unsigned cpu, void* const* slot,
                                            void** out) noexcept {
  std::uintptr_t cs, m, r;
  void* p;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "movq (%[slot]), %[m]\n\t"
                    "movl (%[m]), %k[r]\n\t"
                    "testl %k[r], %k[r]\n\t"
                    "jz %l[empty]\n\t"
                    "subl $1, %k[r]\n\t"
                    "movq 16(%[m], %[r], 8), %[p]\n\t"
                    "movl %k[r], (%[m])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs), [m] "=&r"(m), [r] "=&r"(r), [p] "=&r"(p)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot)
                    : "memory", "cc"
                    : abort, empty);
  *out = p;
  return 1;
empty:
  return 0;
abort:
  return -1;
}

/// stack_push() - push v onto the stack *slot points at (layout as stack_pop()), if still on
/// `cpu`. Returns 1 when pushed, 0 if the stack is full (nothing committed), -1 if aborted.
/// The item store before the commit lands above count: an aborted push leaves a dead slot.
/// Commit: the store of the new count.
[[gnu::always_inline]] inline int stack_push(struct rseq* rs, unsigned cpu, void* const* slot,
                                             void* v) noexcept {
  std::uintptr_t cs, m, r;
  asm volatile goto(KPRIM_RSEQ_ENTER
                    "movq (%[slot]), %[m]\n\t"
                    "movl (%[m]), %k[r]\n\t"
                    "cmpl 4(%[m]), %k[r]\n\t"
                    "je %l[full]\n\t"
                    "movq %[v], 16(%[m], %[r], 8)\n\t"
                    "addl $1, %k[r]\n\t"
                    "movl %k[r], (%[m])\n\t" KPRIM_RSEQ_EXIT
                    : [cs] "=&r"(cs), [m] "=&r"(m), [r] "=&r"(r)
                    : [rs] "r"(rs), [cpu] "r"(cpu), [slot] "r"(slot), [v] "r"(v)
                    : "memory", "cc"
                    : abort, full);
  return 1;
full:
  return 0;
abort:
  return -1;
}

#undef KPRIM_RSEQ_ENTER
#undef KPRIM_RSEQ_EXIT

}  // namespace kprim::detail::rseq_x86
#endif  // KPRIM_PERCPU_RSEQ
