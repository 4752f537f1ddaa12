// The mutex slow paths (kernel/locking/mutex.c: __mutex_lock_common(), mutex_optimistic_spin(),
// __mutex_unlock_slowpath(), __mutex_handoff()), with futex sleeps for schedule().
#include <kprim/mutex.hpp>

#include <cstddef>

namespace kprim {

struct mutex_slowpath {
  using word = std::uintptr_t;
  static constexpr word waiters = mutex::flag_waiters, handoff = mutex::flag_handoff,
                        pickup = mutex::flag_pickup, flags = mutex::flags_mask;

  /// mutex_waiter - on the sleeper's stack, linked into wait_list_ while it waits.
  struct waiter {
    detail::wait_node list;
    task_struct* task;
  };
  static waiter* to_waiter(detail::wait_node* n) noexcept {
    return reinterpret_cast<waiter*>(reinterpret_cast<char*>(n) - offsetof(waiter, list));
  }

  static task_struct* owner_task(word o) noexcept { return reinterpret_cast<task_struct*>(o & ~flags); }
  static word self() noexcept { return reinterpret_cast<word>(current()); }

  /// __mutex_trylock_common(): nullptr when the caller got the lock, else the owner seen.
  /// With `want_handoff` (the first waiter), an owned lock gets HANDOFF set instead.
  static task_struct* trylock_common(mutex& m, bool want_handoff) noexcept {
    const word curr = self();
    word owner = m.owner_.load(std::memory_order_relaxed);
    for (;;) {  // loop: a flag may change under us
      word f = owner & flags;
      word task = owner & ~flags;
      if (task) {
        if (f & pickup) {
          if (task != curr) break;  // handed to someone else
          f &= ~pickup;             // handed to us: pick it up
        } else if (want_handoff) {
          if (f & handoff) break;
          f |= handoff;  // ask the owner's unlock to hand the lock to us
        } else {
          break;
        }
      } else {
        task = curr;  // free (flags only): take it, keep WAITERS
      }
      if (m.owner_.compare_exchange_weak(owner, task | f, std::memory_order_acquire, std::memory_order_relaxed)) {
        if (task == curr) return nullptr;
        break;
      }
    }
    return owner_task(owner);
  }

  static bool waiter_is_first(const mutex& m, const waiter* w) noexcept { return m.wait_list_.first() == &w->list; }

  /// mutex_spin_on_owner(): spin while `owner` holds the lock and looks like it is running.
  /// False when spinning should stop (owner asleep, budget spent, no longer first waiter).
  static bool spin_on_owner(mutex& m, task_struct* owner, const waiter* w, unsigned& budget) noexcept {
    while (owner_task(m.owner_.load(std::memory_order_relaxed)) == owner) {
      if (!owner->on_cpu.load(std::memory_order_relaxed) || budget == 0) return false;
      if (w && !waiter_is_first(m, w)) return false;
      --budget;
      cpu_relax();
    }
    return true;
  }

  /// mutex_can_spin_on_owner(): worth spinning when there is no owner or it runs.
  static bool can_spin_on_owner(const mutex& m) noexcept {
    task_struct* owner = owner_task(m.owner_.load(std::memory_order_relaxed));
    return !owner || owner->on_cpu.load(std::memory_order_relaxed);
  }

  /// mutex_optimistic_spin(): true when the lock was taken by spinning. New arrivals spin
  /// one at a time through the OSQ; the first waiter (w != nullptr) spins without it.
  static bool optimistic_spin(mutex& m, const waiter* w) noexcept {
    if (!w) {
      if (!can_spin_on_owner(m)) return false;
      if (!osq_lock(&m.osq_)) return false;
    } else if (!spinner_enter()) {
      return false;  // the first waiter spins outside the OSQ, but also only on a spare CPU
    }
    unsigned budget = optimistic_spin_limit;
    bool got = false;
    for (;;) {
      task_struct* owner = trylock_common(m, false);
      if (!owner) {
        got = true;
        break;
      }
      if (!spin_on_owner(m, owner, w, budget)) break;
      if (budget == 0) break;
      cpu_relax();
    }
    if (!w)
      osq_unlock(&m.osq_);
    else
      spinner_leave();
    return got;
  }

  /// __mutex_add_waiter(): append; the first waiter sets WAITERS. Requires wait_lock.
  static void add_waiter(mutex& m, waiter* w) noexcept {
    m.wait_list_.add_tail(&w->list);
    if (waiter_is_first(m, w)) m.owner_.fetch_or(waiters, std::memory_order_relaxed);
  }

  /// __mutex_remove_waiter(): unlink; the last one out clears all flags. Requires wait_lock.
  static void remove_waiter(mutex& m, waiter* w) noexcept {
    w->list.del();
    if (m.wait_list_.empty()) m.owner_.fetch_and(~flags, std::memory_order_relaxed);
  }

  static void lock(mutex& m) noexcept {
    if (!trylock_common(m, false) || optimistic_spin(m, nullptr)) return;

    m.wait_lock_.lock();
    if (!trylock_common(m, false)) {  // the owner may have left while we queued for wait_lock
      m.wait_lock_.unlock();
      return;
    }
    waiter w{{}, current()};
    add_waiter(m, &w);
    set_current_state();
    for (;;) {
      if (!trylock_common(m, false)) break;  // holding wait_lock
      m.wait_lock_.unlock();
      schedule();
      // After a wake-up: the first waiter asks for hand-off if it loses once more.
      const bool first = waiter_is_first(m, &w);
      set_current_state();
      if (!trylock_common(m, first) || (first && optimistic_spin(m, &w))) {
        m.wait_lock_.lock();
        break;
      }
      m.wait_lock_.lock();
    }
    remove_waiter(m, &w);
    m.wait_lock_.unlock();
  }

  /// __mutex_handoff(): give the lock to `task` (PICKUP), or just release it if none.
  static void handoff_to(mutex& m, task_struct* task) noexcept {
    word owner = m.owner_.load(std::memory_order_relaxed);
    for (;;) {
      word next = (owner & waiters) | reinterpret_cast<word>(task);
      if (task) next |= pickup;
      if (m.owner_.compare_exchange_weak(owner, next, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }

  static void unlock(mutex& m) noexcept {
    // Release the lock unless a hand-off was asked for; keep the flags.
    word owner = m.owner_.load(std::memory_order_relaxed);
    for (;;) {
      if (owner & handoff) break;
      if (m.owner_.compare_exchange_weak(owner, owner & flags, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        if (owner & waiters) break;
        return;
      }
    }
    task_struct* next = nullptr;
    m.wait_lock_.lock();
    if (!m.wait_list_.empty()) next = to_waiter(m.wait_list_.first())->task;
    if (owner & handoff) handoff_to(m, next);
    m.wait_lock_.unlock();
    if (next) wake_up_process(next);
  }
};

void mutex::lock_slowpath() noexcept { mutex_slowpath::lock(*this); }
bool mutex::trylock_slowpath() noexcept { return mutex_slowpath::trylock_common(*this, false) == nullptr; }
void mutex::unlock_slowpath() noexcept { mutex_slowpath::unlock(*this); }

}  // namespace kprim
