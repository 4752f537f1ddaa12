// The mutex slow paths (kernel/locking/mutex.c: __mutex_lock_common(), mutex_optimistic_spin(),
// __mutex_unlock_slowpath(), __mutex_handoff()), with futex sleeps for schedule().
//
// Ordering. The owner word is the lock: every transition that takes the lock is an acquire
// RMW and every one that gives it up a release RMW, pairing with each other (the critical
// sections' accesses happen-before the next owner's). Flag-only updates (WAITERS set and
// cleared under wait_lock) are relaxed: they publish nothing but the flag, and whoever acts on
// a flag re-reads the word with an RMW or under wait_lock. wait_list_ is only touched under
// wait_lock_ (its acquire/release orders list updates). Which side wakes whom is decided
// under wait_lock too: an unlocker that leaves the wake to a spinner, and a spinner that gives
// up, both look at the other's state inside wait_lock, so one of them always sees the other.
//
// Policy, and where it departs from the kernel's, each measured with bench_locks'
// kprim_mutex counters (mutex_stat):
//  - spinners poll the owner word rarely: after a spinner's first look, its polls come
//    spin_backoff_min pauses apart, the gap doubling up to spin_backoff_max (the kernel polls
//    without pause; kprim's gap used to start at one pause). Each poll pulls the lock's line (and the data beside it) away from the running
//    owner, and a poll that finds the lock free between the owner's unlock and its next lock
//    changes the owner: two more transfers, and the old owner starts spinning in turn. A
//    spinner that starts polling at once therefore ping-pongs the lock every few operations
//    under heavy contention; one that waits lets the owner re-take its lock from its own cache
//    for a run of operations before a hand-over (glibc gets the same runs by putting the
//    waiter to sleep). The cost is hand-over latency when the owner does not come back: up to
//    one poll gap. bench_locks' owner_changes_per_op and locks/handover rows show both sides;
//  - unlock does not wake the first waiter while an OSQ spinner is queued on the lock (the
//    spinner will take it, and its own unlock sees WAITERS again), at most max_wake_skips
//    times per waiter: then the waiter is woken and, losing once more, asks for HANDOFF,
//    which keeps the kernel's starvation bound;
//  - unlock clears WAITERS when it wakes the first waiter (glibc clears its "contended" state
//    the same way): until the woken waiter runs, the owner locks and unlocks on the fast path
//    instead of taking wait_lock at every unlock to wake a task that is already woken. The
//    woken waiter puts WAITERS back (under wait_lock, before its last try) if it sleeps again,
//    and when it takes the lock with others still queued;
//  - a woken first waiter that loses asks for HANDOFF only once it has waited handoff_after
//    (the kernel asks at the first loss; its rw_semaphore waits RWSEM_WAIT_TIMEOUT first): a
//    hand-off leaves the lock idle until the named waiter runs, a wake-up away when it sleeps;
//  - a wake-up of a waiter that is still on its CPU (spinning as the first waiter, or between
//    set_current_state() and its sleep) costs no futex system call.
#include <kprim/mutex.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <vector>

namespace kprim {

namespace {

/// Per-thread event counters behind mutex_stat_read(). Relaxed: each block has one writer
/// (its thread); readers sum approximate snapshots, nothing is ordered by them.
enum stat_event : unsigned { ev_slowpath,
                             ev_spins,
                             ev_spin_acquired,
                             ev_sleeps,
                             ev_unlock_slowpath,
                             ev_wakeups,
                             ev_wakeups_skipped,
                             ev_handoffs,
                             nr_events };

struct stat_block {
  std::atomic<std::uint64_t> v[nr_events] = {};
};

struct stat_registry {
  std::mutex lock;  // guards live and retired (registration and reads only: never on a lock path)
  std::vector<const stat_block*> live;
  std::uint64_t retired[nr_events] = {};
};
stat_registry& registry() noexcept {
  static stat_registry* r = new stat_registry;  // never destroyed: threads may exit after main
  return *r;
}

struct thread_stats {
  stat_block block;
  thread_stats() {
    stat_registry& r = registry();
    std::lock_guard g(r.lock);
    r.live.push_back(&block);
  }
  ~thread_stats() {
    stat_registry& r = registry();
    std::lock_guard g(r.lock);
    for (unsigned i = 0; i < nr_events; ++i) r.retired[i] += block.v[i].load(std::memory_order_relaxed);
    std::erase(r.live, &block);
  }
};

thread_stats& stats() noexcept {
  thread_local thread_stats s;
  return s;
}

inline void count(stat_event e) noexcept {
#if KPRIM_TSAN
  // count() runs in the slow paths, inside mutex::lock()/unlock()'s TSan annotations
  // (kprim/lockdep.hpp), where TSan ignores synchronisation: the first call registers this
  // thread's block under the registry's std::mutex outside that region, so mutex_stat_read()'s
  // reads are ordered after it for TSan.
  static thread_local bool registered = false;
  if (unlikely(!registered)) {
    tsan::divert_begin();
    (void)stats();
    tsan::divert_end();
    registered = true;
  }
#endif
  auto& c = stats().block.v[e];
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

/// Pauses before a spinner's first poll of the owner word, and the longest gap between two
/// polls (spin_on_owner(); the policy above). About the time of a futex wake-up each: short
/// beside a time slice, long beside one uncontended lock+unlock.
constexpr unsigned spin_backoff_min = 64;
constexpr unsigned spin_backoff_max = 128;
/// Pauses one optimistic spin on the owner may take before the spinner sleeps (the kernel
/// stops at need_resched(); kprim/osq_lock.hpp). Several poll gaps, so that a spinner
/// waiting out a run of the owner's operations does not give up and sleep instead.
constexpr unsigned spin_budget = 16 * spin_backoff_max;
static_assert(spin_backoff_min <= spin_backoff_max && spin_budget >= 4 * spin_backoff_max);
/// Unlocks that may leave a sleeping first waiter to a queued spinner before waking it.
constexpr unsigned max_wake_skips = 16;
/// How long the first waiter waits before a lost race makes it ask for HANDOFF (the
/// starvation bound: after it, the next unlock gives the lock to this waiter).
constexpr auto handoff_after = std::chrono::milliseconds(1);

}  // namespace

mutex_stat mutex_stat_read() noexcept {
  std::uint64_t sum[nr_events];
  stat_registry& r = registry();
  {
    std::lock_guard g(r.lock);
    for (unsigned i = 0; i < nr_events; ++i) sum[i] = r.retired[i];
    for (const stat_block* b : r.live)
      for (unsigned i = 0; i < nr_events; ++i) sum[i] += b->v[i].load(std::memory_order_relaxed);
  }
  mutex_stat s;
  s.slowpath = sum[ev_slowpath];
  s.spins = sum[ev_spins];
  s.spin_acquired = sum[ev_spin_acquired];
  s.sleeps = sum[ev_sleeps];
  s.unlock_slowpath = sum[ev_unlock_slowpath];
  s.wakeups = sum[ev_wakeups];
  s.wakeups_skipped = sum[ev_wakeups_skipped];
  s.handoffs = sum[ev_handoffs];
  return s;
}

struct mutex_slowpath {
  using word = std::uintptr_t;
  static constexpr word waiters = mutex::flag_waiters, handoff = mutex::flag_handoff,
                        pickup = mutex::flag_pickup, flags = mutex::flags_mask;

  /// mutex_waiter - on the sleeper's stack, linked into wait_list_ while it waits.
  struct waiter {
    detail::wait_node list;
    task_struct* task;
    unsigned wake_skips = 0;                      ///< unlocks that left this (first) waiter asleep; under wait_lock
    std::chrono::steady_clock::time_point since;  ///< when it queued; only its thread reads it
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
    // Relaxed: only a guess for the cmpxchg below, which re-reads the word atomically.
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
      // Acquire pairs with the release cmpxchg of unlock() / handoff_to() that freed the lock
      // or named us in PICKUP. (Setting HANDOFF needs no acquire, but a failed-then-retried
      // take does; one order for both.) Failure is relaxed: the loop only re-decides.
      if (m.owner_.compare_exchange_weak(owner, task | f, std::memory_order_acquire, std::memory_order_relaxed)) {
        if (task == curr) return nullptr;
        break;
      }
    }
    return owner_task(owner);
  }

  static bool waiter_is_first(const mutex& m, const waiter* w) noexcept { return m.wait_list_.first() == &w->list; }

  /// mutex_spin_on_owner(): spin while `owner` holds the lock and looks like it is running,
  /// polling with exponential backoff (see the policy above). False when spinning should stop
  /// (owner asleep, budget spent, no longer first waiter).
  static bool spin_on_owner(mutex& m, task_struct* owner, const waiter* w, unsigned& budget) noexcept {
    unsigned delay = spin_backoff_min;
    // Relaxed: a change only sends us back to trylock_common(), whose cmpxchg acquires.
    while (owner_task(m.owner_.load(std::memory_order_relaxed)) == owner) {
      // Relaxed: on_cpu is a heuristic; a stale value costs one more poll or one early sleep.
      if (!owner->on_cpu.load(std::memory_order_relaxed) || budget == 0) return false;
      // wait_list_.first() unlocked: a racy hint (the kernel reads it the same way); a wrong
      // answer ends this spin early or late, never breaks exclusion.
      if (w && !waiter_is_first(m, w)) return false;
      const unsigned n = delay < budget ? delay : budget;
      for (unsigned i = 0; i < n; ++i) cpu_relax();
      budget -= n;
      if (delay < spin_backoff_max) delay *= 2;
    }
    return true;
  }

  /// mutex_can_spin_on_owner(): worth spinning when there is no owner or it runs.
  static bool can_spin_on_owner(const mutex& m) noexcept {
    // Both relaxed: a heuristic snapshot (the kernel reads them under rcu_read_lock only).
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
    count(ev_spins);
    unsigned budget = spin_budget;
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
    // osq_unlock() releases the OSQ (pairs with the next spinner's osq_lock() acquire); a
    // spinner that gives up then takes wait_lock and tries the lock once more before sleeping
    // (lock() below), which is what lets unlock() leave a wake-up to a queued spinner.
    if (!w)
      osq_unlock(&m.osq_);
    else
      spinner_leave();
    if (got) count(ev_spin_acquired);
    return got;
  }

  /// set_waiters() - WAITERS on, before the caller's last try and sleep. Requires wait_lock.
  /// Relaxed RMW: WAITERS only diverts the next unlock() into the slow path, which reads the
  /// list under wait_lock (that lock orders the list, not this flag). Being an RMW, it sits in
  /// the word's modification order: an unlock cmpxchg after it sees the flag (and wakes us),
  /// one before it freed the lock, which the caller's trylock_common() right after then sees.
  static void set_waiters(mutex& m) noexcept { m.owner_.fetch_or(waiters, std::memory_order_relaxed); }

  /// __mutex_add_waiter(): append and set WAITERS (every waiter, not only the first as in
  /// the kernel: a woken first waiter may have it cleared, see unlock()). Requires wait_lock.
  static void add_waiter(mutex& m, waiter* w) noexcept {
    m.wait_list_.add_tail(&w->list);
    set_waiters(m);
  }

  /// __mutex_remove_waiter(): unlink; the last one out clears all flags, otherwise WAITERS
  /// stays (or is put back) for the ones behind. Requires wait_lock; the caller owns the lock.
  static void remove_waiter(mutex& m, waiter* w) noexcept {
    w->list.del();
    // Relaxed RMWs: the caller owns the lock, and its own release unlock orders these before
    // whoever looks at the flags next.
    if (m.wait_list_.empty())
      m.owner_.fetch_and(~flags, std::memory_order_relaxed);
    else
      set_waiters(m);
  }

  /// Sleep until woken (schedule()), telling wakers whether a futex_wake() is needed: on_cpu
  /// goes to 0 before the last look at the wake flag. seq_cst on on_cpu's store and the wake
  /// load here, and on the waker's exchange and on_cpu load (wake()), so at least one side
  /// sees the other: the sleeper sees the wake-up and does not sleep, or the waker sees
  /// on_cpu == 0 and makes the system call. (futex_wait() re-checks wake == 0 atomically in
  /// the kernel, so a wake-up between our load and the sleep is not lost either.)
  static void sleep() noexcept {
    task_struct* t = current();
    count(ev_sleeps);
    t->on_cpu.store(0, std::memory_order_seq_cst);
    if (t->wake.load(std::memory_order_seq_cst) == 0) futex_wait(t->wake, 0);
    t->on_cpu.store(1, std::memory_order_relaxed);  // heuristic for spinners only
  }

  /// wake_up_process() for a mutex waiter that sleeps in sleep(): the exchange (acq_rel, and
  /// seq_cst for the pairing above) publishes the wake-up; the system call is made only when
  /// the waiter is, or is about to be, off its CPU.
  static void wake(task_struct* t) noexcept {
    count(ev_wakeups);
    if (t->wake.exchange(1, std::memory_order_seq_cst) == 0 && t->on_cpu.load(std::memory_order_seq_cst) == 0)
      futex_wake(t->wake, 1);
  }

  static void lock(mutex& m) noexcept {
    count(ev_slowpath);
    if (!trylock_common(m, false) || optimistic_spin(m, nullptr)) return;

    m.wait_lock_.lock();
    if (!trylock_common(m, false)) {  // the owner may have left while we queued for wait_lock
      m.wait_lock_.unlock();
      return;
    }
    waiter w{{}, current(), 0, std::chrono::steady_clock::now()};
    add_waiter(m, &w);
    set_current_state();  // acq_rel exchange: a wake-up before it is seen by the checks after
    for (;;) {
      if (!trylock_common(m, false)) break;  // holding wait_lock
      m.wait_lock_.unlock();
      sleep();
      // After a wake-up: the first waiter spins, and asks for hand-off if it loses once more
      // after handoff_after.
      const bool first = waiter_is_first(m, &w);  // racy hint, as in spin_on_owner()
      set_current_state();
      const bool starved = first && std::chrono::steady_clock::now() - w.since >= handoff_after;
      if (!trylock_common(m, starved) || (first && optimistic_spin(m, &w))) {
        m.wait_lock_.lock();
        break;
      }
      m.wait_lock_.lock();
      set_waiters(m);  // unlock() may have cleared it when it woke us; the try above the sleep follows
    }
    remove_waiter(m, &w);
    m.wait_lock_.unlock();
  }

  /// __mutex_handoff(): give the lock to `task` (PICKUP), or just release it if none.
  static void handoff_to(mutex& m, task_struct* task) noexcept {
    if (task) count(ev_handoffs);
    word owner = m.owner_.load(std::memory_order_relaxed);  // a guess for the cmpxchg
    for (;;) {
      word next = (owner & waiters) | reinterpret_cast<word>(task);
      if (task) next |= pickup;
      // Release pairs with the acquire cmpxchg in trylock_common() of the task that picks up
      // (or, task == nullptr, of whoever takes the freed lock).
      if (m.owner_.compare_exchange_weak(owner, next, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }

  static void unlock(mutex& m) noexcept {
    count(ev_unlock_slowpath);
    // Release the lock unless a hand-off was asked for; keep the flags. Release pairs with the
    // next owner's acquire cmpxchg (trylock_common() or the lock() fast path).
    word owner = m.owner_.load(std::memory_order_relaxed);  // a guess for the cmpxchg
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
    if (!m.wait_list_.empty()) {
      waiter* first = to_waiter(m.wait_list_.first());
      next = first->task;
      // Leave the wake to a queued spinner (it takes the lock, and its unlock comes back
      // here), a bounded number of times. Safe: a spinner that gives up takes wait_lock and
      // tries the lock before it sleeps, so either it ran that try after this section (and
      // sees the lock free: we released it above) or it left the OSQ before (and the relaxed
      // load here, ordered by wait_lock, sees it gone or sees a newer spinner).
      if (!(owner & handoff) && first->wake_skips < max_wake_skips && osq_is_locked(&m.osq_)) {
        ++first->wake_skips;
        next = nullptr;
        count(ev_wakeups_skipped);
      } else {
        first->wake_skips = 0;
        // Clear WAITERS while `next` is woken but has not run: the owner's next unlocks take the
        // fast path. `next` sets it again under wait_lock before it sleeps or, taking the lock,
        // if others still wait (remove_waiter()). Relaxed RMW, under wait_lock: ordered
        // against those set_waiters() by the lock. A hand-off keeps the flags (handoff_to()).
        if (!(owner & handoff)) m.owner_.fetch_and(~waiters, std::memory_order_relaxed);
      }
    }
    if (owner & handoff) handoff_to(m, next);
    m.wait_lock_.unlock();
    if (next) wake(next);
  }
};

void mutex::lock_slowpath() noexcept { mutex_slowpath::lock(*this); }
bool mutex::trylock_slowpath() noexcept { return mutex_slowpath::trylock_common(*this, false) == nullptr; }
void mutex::unlock_slowpath() noexcept { mutex_slowpath::unlock(*this); }

}  // namespace kprim
