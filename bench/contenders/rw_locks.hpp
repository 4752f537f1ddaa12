// contenders/rw_locks.hpp: reader-writer lock adapters shared by the benchmark families that
// compare them (bench_rwlocks, bench_rcu). Each row: name, exclusive, read(t, f) (f under the
// read side; a seqlock retries until f saw a stable copy), write_lock(t)/write_unlock(t).
#pragma once

#include <kprim/bench/harness.hpp>
#include <kprim/bench/registry.hpp>
#include <kprim/rwlock.hpp>
#include <kprim/rwsem.hpp>
#include <kprim/seqlock.hpp>

#include <ck_rwlock.h>
#include <oneapi/tbb/queuing_rw_mutex.h>
#include <oneapi/tbb/rw_mutex.h>
#include <oneapi/tbb/spin_rw_mutex.h>
#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <shared_mutex>

namespace kprim::bench::rw {

/// Bytes at the start of worker::node_storage left to the benchmark body; adapters that need
/// per-thread queue nodes place them after.
inline constexpr std::size_t body_state_bytes = 64;

// Contender adapters. `exclusive`: writers exclude readers, so check() may verify. ----

/// Lock-based readers: run f between the adapter's read_lock and read_unlock.
template <class Self>
struct locked_reads {
  template <class F>
  auto read(worker& t, F f) {
    auto& self = static_cast<Self&>(*this);
    self.read_lock(t);
    auto r = f();
    self.read_unlock(t);
    return r;
  }
};

struct nolock : locked_reads<nolock> {
  static constexpr const char* name = "nolock";
  static constexpr bool exclusive = false;
  void read_lock(worker&) {}
  void read_unlock(worker&) {}
  void write_lock(worker&) {}
  void write_unlock(worker&) {}
};

/// Anything with the std::shared_mutex members: std::shared_mutex, tbb::spin_rw_mutex,
/// tbb::rw_mutex, and kprim's qrwlock and rw_semaphore (which offer the same adapters).
template <class M, fixed_string Name>
struct shared_style : locked_reads<shared_style<M, Name>> {
  static constexpr auto name = Name;
  static constexpr bool exclusive = true;
  M m;
  void read_lock(worker&) { m.lock_shared(); }
  void read_unlock(worker&) { m.unlock_shared(); }
  void write_lock(worker&) { m.lock(); }
  void write_unlock(worker&) { m.unlock(); }
};

/// kprim::qrwlock through the kernel verbs.
struct kprim_qrwlock : locked_reads<kprim_qrwlock> {
  static constexpr const char* name = "kprim_qrwlock";
  static constexpr bool exclusive = true;
  kprim::rwlock_t l;
  void read_lock(worker&) { kprim::read_lock(&l); }
  void read_unlock(worker&) { kprim::read_unlock(&l); }
  void write_lock(worker&) { kprim::write_lock(&l); }
  void write_unlock(worker&) { kprim::write_unlock(&l); }
};

/// kprim::rw_semaphore through the kernel verbs.
struct kprim_rwsem : locked_reads<kprim_rwsem> {
  static constexpr const char* name = "kprim_rwsem";
  static constexpr bool exclusive = true;
  kprim::rw_semaphore s;
  void read_lock(worker&) { kprim::down_read(&s); }
  void read_unlock(worker&) { kprim::up_read(&s); }
  void write_lock(worker&) { kprim::down_write(&s); }
  void write_unlock(worker&) { kprim::up_write(&s); }
};

/// kprim::seqlock_t: lockless readers retry until they copied a stable value.
struct kprim_seqlock {
  static constexpr const char* name = "kprim_seqlock";
  static constexpr bool exclusive = true;
  kprim::seqlock_t sl;
  template <class F>
  auto read(worker&, F f) {
    decltype(f()) r;
    std::uint32_t seq;
    do {
      seq = kprim::read_seqbegin(&sl);
      r = f();
    } while (kprim::read_seqretry(&sl, seq));
    return r;
  }
  void write_lock(worker&) { kprim::write_seqlock(&sl); }
  void write_unlock(worker&) { kprim::write_sequnlock(&sl); }
};

struct pthread_rwlock : locked_reads<pthread_rwlock> {
  static constexpr const char* name = "pthread_rwlock";
  static constexpr bool exclusive = true;
  pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
  ~pthread_rwlock() { pthread_rwlock_destroy(&l); }
  void read_lock(worker&) { pthread_rwlock_rdlock(&l); }
  void read_unlock(worker&) { pthread_rwlock_unlock(&l); }
  void write_lock(worker&) { pthread_rwlock_wrlock(&l); }
  void write_unlock(worker&) { pthread_rwlock_unlock(&l); }
};

/// tbb::queuing_rw_mutex is reached through its scoped_lock (the queue node), kept in the
/// worker's node storage between lock and unlock, past the first body_state_bytes (which a
/// body may use for per-thread state of its own, through worker::node<T>()).
struct tbb_queuing_rw : locked_reads<tbb_queuing_rw> {
  static constexpr const char* name = "tbb_queuing_rw_mutex";
  static constexpr bool exclusive = true;
  using guard = tbb::queuing_rw_mutex::scoped_lock;
  tbb::queuing_rw_mutex m;
  void lock(worker& t, bool write) { t.emplace_guard<guard, body_state_bytes>(m, write); }
  void unlock(worker& t) { t.release_guard<guard, body_state_bytes>(); }
  void read_lock(worker& t) { lock(t, false); }
  void read_unlock(worker& t) { unlock(t); }
  void write_lock(worker& t) { lock(t, true); }
  void write_unlock(worker& t) { unlock(t); }
};

struct ck_rw : locked_reads<ck_rw> {
  static constexpr const char* name = "ck_rwlock";
  static constexpr bool exclusive = true;
  ck_rwlock_t l = CK_RWLOCK_INITIALIZER;
  void read_lock(worker&) { ck_rwlock_read_lock(&l); }
  void read_unlock(worker&) { ck_rwlock_read_unlock(&l); }
  void write_lock(worker&) { ck_rwlock_write_lock(&l); }
  void write_unlock(worker&) { ck_rwlock_write_unlock(&l); }
};

}  // namespace kprim::bench::rw
