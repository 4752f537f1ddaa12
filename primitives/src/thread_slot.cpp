// Thread slot ids (kprim/thread_slot.hpp): the lowest free id is claimed on first use and given
// back by a thread_local destructor at thread exit.
#include <kprim/thread_slot.hpp>

#include <bitset>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace kprim::detail {

namespace {

struct slot_table {
  std::mutex lock;
  std::bitset<max_thread_slots> used;
  unsigned hint = 0;  // no free slot below this index
};

slot_table& table() noexcept {
  static slot_table t;  // constructed on first use, never destroyed before the last thread
  return t;
}

/// Gives the slot back when its thread exits.
struct slot_release {
  ~slot_release() {
    if (this_slot == no_slot) return;
    slot_table& t = table();
    std::lock_guard g(t.lock);
    t.used.reset(this_slot);
    if (this_slot < t.hint) t.hint = this_slot;
    this_slot = no_slot;
  }
};

}  // namespace

unsigned thread_slot_acquire() noexcept {
  static thread_local slot_release releaser;
  (void)&releaser;  // odr-use: registers the destructor for this thread
  slot_table& t = table();
  std::lock_guard g(t.lock);
  unsigned s = t.hint;
  while (s < max_thread_slots && t.used.test(s)) ++s;
  if (s == max_thread_slots) {
    std::fputs("kprim: more than max_thread_slots threads use queued locks\n", stderr);
    std::abort();
  }
  t.used.set(s);
  t.hint = s + 1;
  this_slot = s;
  return s;
}

}  // namespace kprim::detail
