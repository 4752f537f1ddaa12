// The rw_semaphore slow paths (kernel/locking/rwsem.c: rwsem_down_read_slowpath(),
// rwsem_down_write_slowpath(), rwsem_mark_wake(), rwsem_try_write_lock(),
// rwsem_optimistic_spin()), with futex sleeps and a steady clock in place of jiffies.
#include <kprim/rwsem.hpp>

#include <chrono>
#include <cstddef>

namespace kprim {

struct rwsem_slowpath {
  using rwsem = rw_semaphore;
  using clock = std::chrono::steady_clock;

  /// How long a waiter waits before it may set HANDOFF (RWSEM_WAIT_TIMEOUT, about 4 ms).
  static constexpr auto wait_timeout = std::chrono::milliseconds(4);
  /// At most this many readers are woken per wake-up call (MAX_READERS_WAKEUP).
  static constexpr long max_readers_wakeup = 0x100;

  enum class waiter_type { read,
                           write };
  enum class wake_type { any,
                         readers,
                         read_owned };
  enum class owner_state { null,
                           writer,
                           reader,
                           nonspinnable };

  /// rwsem_waiter - on the sleeper's stack while queued. A reader's `task` is cleared by its
  /// waker (release) when the read lock has been granted to it.
  struct waiter {
    detail::wait_node list;
    std::atomic<task_struct*> task;
    waiter_type type;
    clock::time_point timeout;
    bool handoff_set = false;
  };
  static waiter* to_waiter(detail::wait_node* n) noexcept {
    return reinterpret_cast<waiter*>(reinterpret_cast<char*>(n) - offsetof(waiter, list));
  }
  static waiter* first_waiter(rwsem& s) noexcept { return to_waiter(s.wait_list_.first()); }

  // ---- owner word ----
  static void set_owner(rwsem& s) noexcept {
    s.owner_.store(reinterpret_cast<std::uintptr_t>(current()), std::memory_order_relaxed);
  }
  static void set_nonspinnable(rwsem& s) noexcept {
    std::uintptr_t o = s.owner_.load(std::memory_order_relaxed);
    while ((o & rwsem::owner_reader_owned) && !(o & rwsem::owner_nonspinnable) &&
           !s.owner_.compare_exchange_weak(o, o | rwsem::owner_nonspinnable, std::memory_order_relaxed)) {
    }
  }
  static void clear_nonspinnable(rwsem& s) noexcept {
    if (s.owner_.load(std::memory_order_relaxed) & rwsem::owner_nonspinnable)
      s.owner_.fetch_and(~rwsem::owner_nonspinnable, std::memory_order_relaxed);
  }
  static owner_state state_of(std::uintptr_t o) noexcept {
    if (o & rwsem::owner_nonspinnable) return owner_state::nonspinnable;
    if (o & rwsem::owner_reader_owned) return owner_state::reader;
    return (o & ~rwsem::owner_flags_mask) ? owner_state::writer : owner_state::null;
  }
  static task_struct* owner_task(std::uintptr_t o) noexcept {
    return reinterpret_cast<task_struct*>(o & ~rwsem::owner_flags_mask);
  }

  // ---- wait list (all under wait_lock) ----
  static void add_waiter(rwsem& s, waiter* w) noexcept { s.wait_list_.add_tail(&w->list); }

  /// rwsem_del_waiter(): unlink; the last one out clears WAITERS and HANDOFF.
  static void del_waiter(rwsem& s, waiter* w) noexcept {
    w->list.del();
    if (s.wait_list_.empty()) s.count_.fetch_and(~(rwsem::flag_handoff | rwsem::flag_waiters), std::memory_order_relaxed);
  }

  /// rwsem_mark_wake(): pick who to wake; readers are granted the lock here (their bias added
  /// and task cleared), a writer at the head is only woken to try for itself. Returns up to
  /// max_readers_wakeup tasks to wake in `out` after wait_lock is dropped.
  struct wake_q {
    task_struct* tasks[max_readers_wakeup];
    long n = 0;
    void add(task_struct* t) noexcept { tasks[n++] = t; }
    void wake_all() noexcept {
      for (long i = 0; i < n; ++i) wake_up_process(tasks[i]);
      n = 0;
    }
  };

  static void mark_wake(rwsem& s, wake_type type, wake_q& q) noexcept {
    waiter* w = first_waiter(s);
    if (w->type == waiter_type::write) {
      // Until it runs, other writers may steal the lock; readers see it queued and block.
      if (type == wake_type::any) q.add(w->task.load(std::memory_order_relaxed));
      return;
    }
    if (s.count_.load(std::memory_order_relaxed) < 0) return;  // READ_FAIL: too many readers

    std::int64_t adjustment = 0;
    if (type != wake_type::read_owned) {
      // Grant the first reader before counting, so a writer that stole the lock is seen.
      adjustment = rwsem::reader_bias;
      // Fully ordered, as the kernel's value-returning atomics: the readers we grant the lock
      // to must see what the last writer wrote, through us (acquire here, release below).
      const std::int64_t old = s.count_.fetch_add(adjustment, std::memory_order_acq_rel);
      if (old & rwsem::writer_mask) {
        // A writer holds it; if we waited too long, force the issue with HANDOFF.
        if (clock::now() > w->timeout) {
          if (!(old & rwsem::flag_handoff)) adjustment -= rwsem::flag_handoff;
          w->handoff_set = true;
        }
        s.count_.fetch_add(-adjustment, std::memory_order_relaxed);
        return;
      }
      // Reader-owned from here on; a NONSPINNABLE left by earlier readers is cleared.
      s.owner_.store(reinterpret_cast<std::uintptr_t>(w->task.load(std::memory_order_relaxed)) |
                         rwsem::owner_reader_owned,
                     std::memory_order_relaxed);
    }

    // Move every queued reader (writers stay, in order) to a private list.
    detail::wait_node granted;
    long woken = 0;
    for (detail::wait_node* n = s.wait_list_.first(); n != &s.wait_list_;) {
      detail::wait_node* next = n->next.load(std::memory_order_relaxed);
      if (to_waiter(n)->type == waiter_type::read) {
        n->del();
        granted.add_tail(n);
        if (++woken >= max_readers_wakeup) break;
      }
      n = next;
    }

    adjustment = woken * rwsem::reader_bias - adjustment;
    const std::int64_t old = s.count_.load(std::memory_order_relaxed);
    if (s.wait_list_.empty()) {
      adjustment -= rwsem::flag_waiters;
      if (old & rwsem::flag_handoff) adjustment -= rwsem::flag_handoff;
    } else if (woken && (old & rwsem::flag_handoff)) {
      adjustment -= rwsem::flag_handoff;  // a reader got in: no need to force writers out
    }
    if (adjustment) s.count_.fetch_add(adjustment, std::memory_order_acq_rel);

    // Hand each reader its lock: task = nullptr (release) ends its wait.
    for (detail::wait_node* n = granted.first(); n != &granted;) {
      detail::wait_node* next = n->next.load(std::memory_order_relaxed);
      waiter* r = to_waiter(n);
      task_struct* t = r->task.load(std::memory_order_relaxed);
      n->del();
      r->task.store(nullptr, std::memory_order_release);  // r may vanish from here on
      q.add(t);
      n = next;
    }
  }

  /// rwsem_cond_wake_waiter(): after queueing, wake whoever can run now.
  static void cond_wake_waiter(rwsem& s, std::int64_t count, wake_q& q) noexcept {
    if (count & rwsem::writer_mask) return;
    wake_type t = wake_type::readers;
    if (!(count & rwsem::reader_mask)) {
      t = wake_type::any;
      clear_nonspinnable(s);
    }
    mark_wake(s, t, q);
  }

  static void wake(rwsem& s) noexcept {
    wake_q q;
    s.wait_lock_.lock();
    if (!s.wait_list_.empty()) mark_wake(s, wake_type::any, q);
    s.wait_lock_.unlock();
    q.wake_all();
  }

  // ---- readers ----
  static void down_read_slowpath(rwsem& s, std::int64_t count) noexcept {
    std::int64_t adjustment = -rwsem::reader_bias;
    const std::int64_t rcnt = count >> rwsem::reader_shift;
    wake_q q;

    // Do not steal from a queued writer while readers clearly own it (writer starvation).
    const bool reader_owned = s.owner_.load(std::memory_order_relaxed) & rwsem::owner_reader_owned;
    if (!(reader_owned && rcnt > 1 && !(count & rwsem::writer_locked)) &&
        !(count & (rwsem::writer_locked | rwsem::flag_handoff))) {
      // Reader lock stealing: our bias is in and no writer holds it.
      s.set_reader_owned();
      if (rcnt == 1 && (count & rwsem::flag_waiters)) {
        s.wait_lock_.lock();
        if (!s.wait_list_.empty()) mark_wake(s, wake_type::read_owned, q);
        s.wait_lock_.unlock();
        q.wake_all();
      }
      return;
    }

    waiter w{{}, {current()}, waiter_type::read, clock::now() + wait_timeout};
    s.wait_lock_.lock();
    if (s.wait_list_.empty()) {
      // Nobody queued and no writer: our bias already counts, we hold the read lock.
      if (!(s.count_.load(std::memory_order_acquire) & rwsem::writer_mask)) {
        s.wait_lock_.unlock();
        s.set_reader_owned();
        return;
      }
      adjustment += rwsem::flag_waiters;
    }
    add_waiter(s, &w);
    // Now waiting for the lock, no longer actively taking it.
    count = rwsem::wrapping_add(s.count_.fetch_add(adjustment, std::memory_order_acq_rel), adjustment);  // fully ordered
    cond_wake_waiter(s, count, q);
    s.wait_lock_.unlock();
    q.wake_all();

    for (;;) {
      set_current_state();
      if (!w.task.load(std::memory_order_acquire)) break;  // pairs with mark_wake's release
      schedule();
    }
  }

  // ---- writers ----
  static bool try_write_lock_unqueued(rwsem& s) noexcept {
    std::int64_t c = s.count_.load(std::memory_order_relaxed);
    while (!(c & (rwsem::lock_mask | rwsem::flag_handoff))) {
      if (s.count_.compare_exchange_weak(c, c | rwsem::writer_locked, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        set_owner(s);
        return true;
      }
    }
    return false;
  }

  /// rwsem_spin_on_owner(): spin while the same writer owns it and seems to run.
  static owner_state spin_on_owner(rwsem& s, unsigned& budget) noexcept {
    const std::uintptr_t o = s.owner_.load(std::memory_order_relaxed);
    owner_state st = state_of(o);
    if (st != owner_state::writer) return st;
    for (;;) {
      const std::uintptr_t n = s.owner_.load(std::memory_order_relaxed);
      if (n != o) return state_of(n);
      if (budget == 0 || !owner_task(o)->on_cpu.load(std::memory_order_relaxed)) return owner_state::nonspinnable;
      --budget;
      cpu_relax();
    }
  }

  static bool can_spin_on_owner(const rwsem& s) noexcept {
    const std::uintptr_t o = s.owner_.load(std::memory_order_relaxed);
    if (o & rwsem::owner_nonspinnable) return false;
    task_struct* t = owner_task(o);
    return (o & rwsem::owner_reader_owned) || !t || t->on_cpu.load(std::memory_order_relaxed);
  }

  /// rwsem_optimistic_spin(): one writer at a time (OSQ) spins on a running writer owner,
  /// or for a bounded time on reader owners (then marks the rwsem NONSPINNABLE).
  static bool optimistic_spin(rwsem& s) noexcept {
    if (!osq_lock(&s.osq_)) return false;
    unsigned budget = optimistic_spin_limit;
    bool taken = false;
    for (;;) {
      const owner_state st = spin_on_owner(s, budget);
      if (st == owner_state::nonspinnable) break;
      if ((taken = try_write_lock_unqueued(s))) break;
      if (budget == 0) {
        if (st == owner_state::reader) set_nonspinnable(s);
        break;
      }
      --budget;
      cpu_relax();
    }
    osq_unlock(&s.osq_);
    return taken;
  }

  /// rwsem_try_write_lock(): under wait_lock, take the lock or (first waiter, waited long
  /// enough) set HANDOFF. On success the waiter is dequeued.
  static bool try_write_lock(rwsem& s, waiter* w) noexcept {
    waiter* first = first_waiter(s);
    std::int64_t c = s.count_.load(std::memory_order_relaxed), n;
    do {
      const bool has_handoff = c & rwsem::flag_handoff;
      if (has_handoff && first->handoff_set && w != first) return false;
      n = c;
      if (c & rwsem::lock_mask) {
        if (has_handoff || clock::now() <= w->timeout) return false;
        n |= rwsem::flag_handoff;
      } else {
        n |= rwsem::writer_locked;
        n &= ~rwsem::flag_handoff;
        if (first == w && s.wait_list_.first()->next.load(std::memory_order_relaxed) == &s.wait_list_)
          n &= ~rwsem::flag_waiters;  // we are the only waiter
      }
    } while (!s.count_.compare_exchange_weak(c, n, std::memory_order_acquire, std::memory_order_relaxed));
    if (n & rwsem::flag_handoff) {
      first->handoff_set = true;
      return false;
    }
    del_waiter(s, w);
    set_owner(s);
    return true;
  }

  static void down_write_slowpath(rwsem& s) noexcept {
    if (can_spin_on_owner(s) && optimistic_spin(s)) return;

    waiter w{{}, {current()}, waiter_type::write, clock::now() + wait_timeout};
    wake_q q;
    s.wait_lock_.lock();
    add_waiter(s, &w);
    if (first_waiter(s) != &w) {
      cond_wake_waiter(s, s.count_.load(std::memory_order_relaxed), q);
      if (q.n) {
        s.wait_lock_.unlock();
        q.wake_all();
        s.wait_lock_.lock();
      }
    } else {
      s.count_.fetch_or(rwsem::flag_waiters, std::memory_order_relaxed);
    }

    set_current_state();
    for (;;) {
      if (try_write_lock(s, &w)) break;
      s.wait_lock_.unlock();
      // With HANDOFF set, spin on a running writer owner to take over without sleeping.
      unsigned budget = optimistic_spin_limit;
      if (!(w.handoff_set && spin_on_owner(s, budget) == owner_state::null)) {
        schedule();
        set_current_state();
      }
      s.wait_lock_.lock();
    }
    s.wait_lock_.unlock();
  }
};

void rw_semaphore::down_read_slowpath(std::int64_t count) noexcept { rwsem_slowpath::down_read_slowpath(*this, count); }
void rw_semaphore::down_write_slowpath() noexcept { rwsem_slowpath::down_write_slowpath(*this); }
void rw_semaphore::up_read_wake() noexcept {
  rwsem_slowpath::clear_nonspinnable(*this);
  rwsem_slowpath::wake(*this);
}
void rw_semaphore::wake() noexcept { rwsem_slowpath::wake(*this); }

}  // namespace kprim
