// The kernel's code generation per architecture, checked at test time (issue 20): one
// translation unit of barriers, acquire/release, atomics, cpu_relax and smp_cond_load_*() is
// compiled at -O2 -S for
//   x86-64          the project's compiler (on an x86-64 host)
//   arm64-lse       aarch64 g++ -march=armv8.1-a: LSE inline (asm/atomic_lse.h)
//   arm64-llsc      aarch64 g++ -march=armv8-a -mno-outline-atomics (asm/atomic_ll_sc.h)
//   arm64-outline   aarch64 g++ -march=armv8-a -moutline-atomics (g++'s default: libgcc
//                   helpers that pick LSE at run time)
// and each function's instructions are compared with what arch/x86 and arch/arm64 emit. No
// emulator: the cross compiler (g++-aarch64-linux-gnu, in kbench's DEB_PACKAGES) only compiles.
// The listings are printed, so the test log documents the code. Part of test_codegen.
#include "codegen.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace {

using kprim_test::listing;

const char* const kArchTu = R"(
#include <kprim/atomic.hpp>
#include <kprim/barrier.hpp>
#include <kprim/compiler.hpp>
#include <kprim/spinlock/ticket.hpp>
#include <atomic>
using namespace kprim;
extern "C" {
void kp_smp_mb() { smp_mb(); }
void kp_smp_rmb() { smp_rmb(); }
void kp_smp_wmb() { smp_wmb(); }
void kp_mb() { mb(); }
void kp_rmb() { rmb(); }
void kp_wmb() { wmb(); }
void kp_smp_mb__after_atomic() { smp_mb__after_atomic(); }
int kp_read_once(int* p) { return READ_ONCE(*p); }
int kp_smp_load_acquire(int* p) { return smp_load_acquire(p); }
unsigned char kp_smp_load_acquire_u8(unsigned char* p) { return smp_load_acquire(p); }
void kp_smp_store_release(int* p, int v) { smp_store_release(p, v); }
int kp_atomic_read(atomic_t* v) { return atomic_read(v); }
int kp_atomic_read_acquire(atomic_t* v) { return atomic_read_acquire(v); }
void kp_atomic_set(atomic_t* v, int i) { atomic_set(v, i); }
void kp_atomic_set_release(atomic_t* v, int i) { atomic_set_release(v, i); }
void kp_atomic_inc(atomic_t* v) { atomic_inc(v); }
void kp_atomic_and(int i, atomic_t* v) { atomic_and(i, v); }
void kp_atomic_or(int i, atomic_t* v) { atomic_or(i, v); }
void kp_atomic_xor(int i, atomic_t* v) { atomic_xor(i, v); }
void kp_atomic64_sub(long long i, atomic64_t* v) { atomic64_sub(i, v); }
int kp_atomic_inc_return(atomic_t* v) { return atomic_inc_return(v); }
int kp_atomic_fetch_add(int i, atomic_t* v) { return atomic_fetch_add(i, v); }
int kp_atomic_fetch_add_relaxed(int i, atomic_t* v) { return atomic_fetch_add_relaxed(i, v); }
int kp_atomic_fetch_add_acquire(int i, atomic_t* v) { return atomic_fetch_add_acquire(i, v); }
int kp_atomic_fetch_add_release(int i, atomic_t* v) { return atomic_fetch_add_release(i, v); }
int kp_atomic_fetch_and(int i, atomic_t* v) { return atomic_fetch_and(i, v); }
int kp_atomic_fetch_or(int i, atomic_t* v) { return atomic_fetch_or(i, v); }
long long kp_atomic64_add_return(long long i, atomic64_t* v) { return atomic64_add_return(i, v); }
int kp_atomic_cmpxchg(atomic_t* v, int o, int n) { return atomic_cmpxchg(v, o, n); }
int kp_atomic_cmpxchg_relaxed(atomic_t* v, int o, int n) { return atomic_cmpxchg_relaxed(v, o, n); }
bool kp_atomic_try_cmpxchg(atomic_t* v, int* o, int n) { return atomic_try_cmpxchg(v, o, n); }
int kp_atomic_xchg(atomic_t* v, int n) { return atomic_xchg(v, n); }
int kp_atomic_xchg_relaxed(atomic_t* v, int n) { return atomic_xchg_relaxed(v, n); }
void kp_cpu_relax() { cpu_relax(); }
int kp_smp_cond_load_acquire(int* p) { return smp_cond_load_acquire(p, [](int v) { return v != 0; }); }
unsigned char kp_smp_cond_load_acquire_u8(unsigned char* p) {
  return smp_cond_load_acquire(p, [](unsigned char v) { return v == 0; });
}
int kp_smp_cond_load_relaxed(int* p) { return smp_cond_load_relaxed(p, [](int v) { return v != 0; }); }
void* kp_smp_cond_load_acquire_atomic(std::atomic<void*>* p) {
  return smp_cond_load_acquire(p, [](void* v) { return v != nullptr; });
}
void kp_ticket_spin_lock(basic_ticket_spinlock<spin_policy::spin>* l) { l->lock(); }
void kp_ticket_yield_lock(ticket_spinlock* l) { l->lock(); }
}
)";

struct target {
  const char* name;
  bool arm64;
  const char* flags;
};

void PrintTo(const target& t, std::ostream* os) { *os << t.name; }

enum variant : unsigned { X86 = 1,
                          LSE = 2,
                          LLSC = 4,
                          OUTLINE = 8,
                          ARM64 = LSE | LLSC | OUTLINE };

/// One expectation: in function fn, for the variants in mask, the `seq` needles appear in this
/// order, the `has` needles anywhere, none of the `not_` needles. With exact, the body is
/// seq and nothing else. A needle matches an instruction equal to it or starting with it
/// and a space: "ldadd" matches "ldadd w0, w0, [x1]", not "ldaddal ..."; "dmb ish" only
/// "dmb ish" itself; "dmb" every dmb.
struct expect {
  const char* fn;
  unsigned mask;
  std::vector<std::string> seq;
  std::vector<std::string> has = {};
  std::vector<std::string> not_ = {};
  bool exact = false;
};

bool matches(const std::string& ins, const std::string& needle) {
  return ins == needle || (ins.size() > needle.size() && ins.compare(0, needle.size(), needle) == 0 &&
                           ins[needle.size()] == ' ');
}

// The kernel's instructions for each operation (arch/x86/include/asm/{barrier,atomic,cmpxchg}.h,
// arch/arm64/include/asm/{barrier,atomic_lse,atomic_ll_sc,cmpxchg}.h, asm-generic/barrier.h).
const std::vector<expect>& expectations() {
  static const std::vector<expect> e = {
      // ---- barriers ---------------------------------------------------------------------
      {"kp_smp_mb", X86, {"lock; addl $0,-4(%rsp)", "ret"}, {}, {}, true},
      {"kp_smp_rmb", X86, {"ret"}, {}, {}, true},
      {"kp_smp_wmb", X86, {"ret"}, {}, {}, true},
      {"kp_mb", X86, {"mfence", "ret"}, {}, {}, true},
      {"kp_smp_mb__after_atomic", X86, {"ret"}, {}, {}, true},
      {"kp_smp_mb", ARM64, {"dmb ish", "ret"}, {}, {}, true},
      {"kp_smp_rmb", ARM64, {"dmb ishld", "ret"}, {}, {}, true},
      {"kp_smp_wmb", ARM64, {"dmb ishst", "ret"}, {}, {}, true},
      {"kp_mb", ARM64, {"dsb sy", "ret"}, {}, {}, true},
      {"kp_rmb", ARM64, {"dsb ld", "ret"}, {}, {}, true},
      {"kp_wmb", ARM64, {"dsb st", "ret"}, {}, {}, true},
      {"kp_smp_mb__after_atomic", ARM64, {"dmb ish", "ret"}, {}, {}, true},
      // ---- plain, acquire and release accesses --------------------------------------------
      {"kp_read_once", X86, {"movl (%rdi), %eax", "ret"}, {}, {}, true},
      {"kp_smp_load_acquire", X86, {"movl (%rdi), %eax", "ret"}, {}, {}, true},
      {"kp_smp_store_release", X86, {"movl %esi, (%rdi)", "ret"}, {}, {}, true},
      {"kp_read_once", ARM64, {"ldr w0, [x0]", "ret"}, {}, {}, true},
      {"kp_atomic_read", ARM64, {"ldr w0, [x0]", "ret"}, {}, {}, true},
      {"kp_atomic_set", ARM64, {"str w1, [x0]", "ret"}, {}, {}, true},
      {"kp_smp_load_acquire", ARM64, {"ldar w0, [x0]", "ret"}, {}, {}, true},
      {"kp_smp_load_acquire_u8", ARM64, {"ldarb w0, [x0]", "ret"}, {}, {}, true},
      {"kp_atomic_read_acquire", ARM64, {"ldar w0, [x0]", "ret"}, {}, {}, true},
      {"kp_smp_store_release", ARM64, {"stlr w1, [x0]", "ret"}, {}, {}, true},
      {"kp_atomic_set_release", ARM64, {"stlr w1, [x0]", "ret"}, {}, {}, true},
      // ---- non-value-returning RMW: relaxed -----------------------------------------------
      {"kp_atomic_inc", X86, {"lock addl $1, (%rdi)", "ret"}, {}, {}, true},
      {"kp_atomic_inc", LSE, {"stadd"}, {}, {"ldadd", "ldxr", "bl", "dmb"}},
      {"kp_atomic_and", LSE, {"mvn", "stclr"}, {}, {"ldclr", "dmb"}},
      {"kp_atomic_or", LSE, {"stset"}, {}, {"ldset", "dmb"}},
      {"kp_atomic_xor", LSE, {"steor"}, {}, {"ldeor", "dmb"}},
      {"kp_atomic64_sub", LSE, {"neg", "stadd x0, [x1]"}, {}, {"dmb"}},
      {"kp_atomic_inc", LLSC, {"ldxr", "add", "stxr", "cbnz"}, {}, {"stlxr", "ldaxr", "dmb"}},
      {"kp_atomic_inc", OUTLINE, {"bl __aarch64_ldadd4_relax"}, {}, {"dmb"}},
      // ---- value-returning RMW: fully ordered ---------------------------------------------
      {"kp_atomic_inc_return", X86, {"lock xaddl"}, {}, {"mfence"}},
      {"kp_atomic_fetch_add", X86, {"lock xaddl"}, {}, {"mfence"}},
      {"kp_atomic_cmpxchg", X86, {"lock cmpxchgl"}, {}, {"mfence"}},
      {"kp_atomic_xchg", X86, {"xchgl"}, {}, {"mfence"}},
      {"kp_atomic_inc_return", LSE, {"ldaddal"}, {}, {"dmb", "ldxr", "bl"}},
      {"kp_atomic_fetch_add", LSE, {"ldaddal w0, w0, [x1]", "ret"}, {}, {}, true},
      {"kp_atomic64_add_return", LSE, {"ldaddal"}, {}, {"dmb"}},
      {"kp_atomic_fetch_and", LSE, {"mvn", "ldclral"}, {}, {"dmb"}},
      {"kp_atomic_fetch_or", LSE, {"ldsetal"}, {}, {"dmb"}},
      {"kp_atomic_cmpxchg", LSE, {"casal"}, {}, {"dmb", "ldxr"}},
      {"kp_atomic_try_cmpxchg", LSE, {"casal"}, {}, {"dmb"}},
      {"kp_atomic_xchg", LSE, {"swpal w1, w0, [x0]", "ret"}, {}, {}, true},
      {"kp_atomic_inc_return", LLSC, {"ldxr", "stlxr", "cbnz", "dmb ish"}, {}, {"ldaxr", "bl"}},
      {"kp_atomic_fetch_add", LLSC, {"ldxr", "stlxr", "cbnz", "dmb ish"}, {}, {"ldaxr"}},
      {"kp_atomic_fetch_and", LLSC, {"ldxr", "and", "stlxr", "dmb ish"}, {}, {"ldaxr"}},
      {"kp_atomic_cmpxchg", LLSC, {"ldxr", "stlxr", "dmb ish"}, {}, {"ldaxr"}},
      {"kp_atomic_xchg", LLSC, {"ldxr", "stlxr", "dmb ish"}, {}, {"ldaxr"}},
      {"kp_atomic_inc_return", OUTLINE, {"bl __aarch64_ldadd4_rel", "dmb ish"}},
      {"kp_atomic_cmpxchg", OUTLINE, {"bl __aarch64_cas4_rel", "dmb ish"}},
      {"kp_atomic_xchg", OUTLINE, {"bl __aarch64_swp4_rel", "dmb ish"}},
      // ---- value-returning RMW: relaxed / acquire / release -------------------------------
      {"kp_atomic_fetch_add_relaxed", X86, {"lock xaddl"}},
      {"kp_atomic_fetch_add_relaxed", LSE, {"ldadd"}, {}, {"ldaddal", "dmb"}},
      {"kp_atomic_fetch_add_acquire", LSE, {"ldadda"}, {}, {"dmb"}},
      {"kp_atomic_fetch_add_release", LSE, {"ldaddl"}, {}, {"dmb"}},
      {"kp_atomic_cmpxchg_relaxed", LSE, {"cas"}, {}, {"casal", "dmb"}},
      {"kp_atomic_xchg_relaxed", LSE, {"swp"}, {}, {"swpal", "dmb"}},
      {"kp_atomic_fetch_add_relaxed", LLSC, {"ldxr", "stxr"}, {}, {"stlxr", "dmb"}},
      {"kp_atomic_fetch_add_acquire", LLSC, {"ldaxr", "stxr"}, {}, {"dmb"}},
      {"kp_atomic_fetch_add_relaxed", OUTLINE, {"bl __aarch64_ldadd4_relax"}, {}, {"dmb"}},
      // ---- spin-wait hint and conditional waits -------------------------------------------
      {"kp_cpu_relax", X86, {"pause", "ret"}, {}, {}, true},
      {"kp_cpu_relax", ARM64, {"yield", "ret"}, {}, {}, true},
      {"kp_smp_cond_load_acquire", X86, {"pause"}, {"movl (%rdi), %eax"}, {"lock", "mfence"}},
      {"kp_smp_cond_load_relaxed", X86, {"pause"}, {"movl (%rdi), %eax"}, {"lock", "mfence"}},
      {"kp_smp_cond_load_acquire", ARM64, {"sevl", "wfe", "ldxr", "eor", "cbnz", "wfe"}, {"ldar"}, {"dmb", "yield"}},
      {"kp_smp_cond_load_acquire_u8", ARM64, {"sevl", "wfe", "ldxrb", "eor", "cbnz", "wfe"}, {"ldarb"}, {"dmb"}},
      {"kp_smp_cond_load_relaxed", ARM64, {"sevl", "wfe", "ldxr", "eor", "cbnz", "wfe"}, {"ldr"}, {"ldar", "dmb"}},
      {"kp_smp_cond_load_acquire_atomic", ARM64, {"sevl", "wfe", "ldxr", "eor", "cbnz", "wfe"}, {"ldar"}, {"dmb"}},
      // The kernel's spin-wait in a lock: the pure-spin ticket lock waits in WFE; the yield
      // policy polls with cpu_relax() and reaches sched_yield() (a WFE wait could not).
      {"kp_ticket_spin_lock", X86, {"pause"}, {}, {"call"}},
      {"kp_ticket_spin_lock", ARM64, {"sevl", "wfe", "ldxrh", "eor", "cbnz", "wfe"}, {"ldarh"}, {"yield"}},
      {"kp_ticket_yield_lock", X86, {"pause"}, {"call sched_yield@PLT"}},
      {"kp_ticket_yield_lock", ARM64, {"yield"}, {"bl sched_yield"}, {"wfe"}},
  };
  return e;
}

unsigned bit_of(const std::string& name) {
  return name == "x86-64" ? X86 : name == "arm64-lse" ? LSE
                              : name == "arm64-llsc"  ? LLSC
                                                      : OUTLINE;
}

class CodegenArch : public testing::TestWithParam<target> {
 protected:
  /// The target's listing, compiled once per target; "" or the reason it is missing.
  static const listing* get(const target& t, std::string& why) {
    static std::map<std::string, std::pair<std::string, listing>> cache;
    auto it = cache.find(t.name);
    if (it == cache.end()) {
      std::string cxx, err;
      listing fns;
      if (t.arm64) {
        cxx = KPRIM_AARCH64_CXX;
        if (cxx.empty())
          err =
              "no aarch64 C++ compiler found at configure time: apt-get install g++-aarch64-linux-gnu "
              "(./kbench deps installs it), then reconfigure";
      } else {
        cxx = KPRIM_CXX;
      }
      if (err.empty()) err = kprim_test::compile_listing(cxx, t.flags, kArchTu, fns);
      if (err.empty()) kprim_test::print_listing(std::string(t.name) + " at -O2 (" + cxx + " " + t.flags + ")", fns);
      it = cache.emplace(t.name, std::make_pair(err, std::move(fns))).first;
    }
    why = it->second.first;
    return why.empty() ? &it->second.second : nullptr;
  }
};

TEST_P(CodegenArch, EachOperationEmitsTheKernelsInstructions) {
  const target& t = GetParam();
  std::string why;
  const listing* fns = get(t, why);
  ASSERT_NE(fns, nullptr) << why;
  const unsigned bit = bit_of(t.name);
  int checked = 0;
  for (const expect& e : expectations()) {
    if (!(e.mask & bit)) continue;
    ++checked;
    auto it = fns->find(e.fn);
    ASSERT_NE(it, fns->end()) << t.name << ": no function " << e.fn << " in the listing";
    const std::vector<std::string>& ins = it->second;
    std::string body;
    for (auto& i : ins) body += i + "; ";
    if (e.exact) {
      EXPECT_EQ(ins, e.seq) << t.name << " " << e.fn << ": " << body;
      continue;
    }
    std::size_t at = 0;
    for (const std::string& n : e.seq) {
      while (at < ins.size() && !matches(ins[at], n)) ++at;
      EXPECT_LT(at, ins.size()) << t.name << " " << e.fn << ": '" << n << "' missing or out of order in: " << body;
      if (at < ins.size()) ++at;
    }
    for (const std::string& n : e.has) {
      bool found = false;
      for (auto& i : ins) found = found || matches(i, n);
      EXPECT_TRUE(found) << t.name << " " << e.fn << ": no '" << n << "' in: " << body;
    }
    for (const std::string& n : e.not_)
      for (auto& i : ins) EXPECT_FALSE(matches(i, n)) << t.name << " " << e.fn << ": unexpected '" << i << "' in: " << body;
  }
  EXPECT_GT(checked, 10) << "expectation table lost its rows for " << t.name;
}

/// The matcher itself: a needle is a whole instruction or a mnemonic (so `ldadd` does not
/// accept `ldaddal`, and `dmb ish` does not accept `dmb ishld`).
TEST(CodegenArchMatcher, NeedlesMatchWholeMnemonicsOnly) {
  EXPECT_TRUE(matches("ldadd w0, w0, [x1]", "ldadd"));
  EXPECT_FALSE(matches("ldaddal w0, w0, [x1]", "ldadd"));
  EXPECT_TRUE(matches("dmb ish", "dmb ish"));
  EXPECT_FALSE(matches("dmb ishld", "dmb ish"));
  EXPECT_TRUE(matches("dmb ishld", "dmb"));
  EXPECT_FALSE(matches("blr x3", "bl"));
  const listing l = kprim_test::parse_listing(
      "kp_f:\n//comment\n#APP\n\tsevl\n\twfe\n1:\n\tldar\tw0, [x1]\n\t.cfi_endproc\nother:\n\tnop\n");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l.at("kp_f"), (std::vector<std::string>{"sevl", "wfe", "ldar w0, [x1]"}));
}

const target kTargets[] = {
#if defined(__x86_64__)
    {"x86-64", false, "-fcf-protection=none"},
#endif
    {"arm64-lse", true, "-march=armv8.1-a -mbranch-protection=none"},
    {"arm64-llsc", true, "-march=armv8-a -mno-outline-atomics -mbranch-protection=none"},
    {"arm64-outline", true, "-march=armv8-a -moutline-atomics -mbranch-protection=none"},
};

INSTANTIATE_TEST_SUITE_P(Targets, CodegenArch, testing::ValuesIn(kTargets),
                         [](const testing::TestParamInfo<target>& i) {
                           std::string n;
                           for (const char* c = i.param.name; *c; ++c) n += (*c == '-') ? '_' : *c;
                           return n;
                         });

}  // namespace
