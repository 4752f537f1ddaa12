// The qrwlock slow paths (kernel/locking/qrwlock.c): contenders queue on wait_lock; the
// waiting loops spin then yield (kprim/spinlock/spin_wait.hpp) so oversubscription survives.
#include <kprim/rwlock.hpp>

namespace kprim {

struct qrwlock_slowpath {
  template <class Pred>
  static std::uint32_t cond_read(qrwlock& l, std::memory_order mo, Pred pred) noexcept {
    spin_wait<spin_policy::yield> w;
    for (;;) {
      const std::uint32_t v = l.cnts().load(mo);
      if (pred(v)) return v;
      w.relax();
    }
  }

  /// queued_read_lock_slowpath(): give our bias back, queue, re-add it at the head, and wait
  /// for the writer to leave. A waiting (not yet locked) writer at the head keeps later
  /// readers out only through the queue: we wait only on wlocked.
  static void read_lock(qrwlock& l) noexcept {
    l.cnts().fetch_sub(qrwlock::qr_bias, std::memory_order_relaxed);
    l.wait_lock_.lock();
    l.cnts().fetch_add(qrwlock::qr_bias, std::memory_order_relaxed);
    // Acquire pairs with the writer's release of wlocked.
    cond_read(l, std::memory_order_acquire, [](std::uint32_t v) { return !(v & qrwlock::qw_locked); });
    l.wait_lock_.unlock();  // the next queued reader follows us in at once
  }

  /// queued_write_lock_slowpath(): queue, announce WAITING, wait for readers to drain.
  static void write_lock(qrwlock& l) noexcept {
    l.wait_lock_.lock();
    std::uint32_t c = l.cnts().load(std::memory_order_relaxed);
    if (!c && l.cnts().compare_exchange_strong(c, qrwlock::qw_locked, std::memory_order_acquire,
                                               std::memory_order_relaxed)) {
      l.wait_lock_.unlock();
      return;
    }
    l.cnts().fetch_or(qrwlock::qw_waiting, std::memory_order_relaxed);  // new readers now queue
    do {
      c = cond_read(l, std::memory_order_relaxed, [](std::uint32_t v) { return v == qrwlock::qw_waiting; });
    } while (!l.cnts().compare_exchange_strong(c, qrwlock::qw_locked, std::memory_order_acquire,
                                               std::memory_order_relaxed));
    l.wait_lock_.unlock();
  }
};

void qrwlock::read_lock_slowpath() noexcept { qrwlock_slowpath::read_lock(*this); }
void qrwlock::write_lock_slowpath() noexcept { qrwlock_slowpath::write_lock(*this); }

}  // namespace kprim
