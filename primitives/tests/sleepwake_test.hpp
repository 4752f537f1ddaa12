// Helpers shared by the sleep/wake tests (wait, semaphore, completion): signal interruption of
// a sleeping thread and polling for "a thread is now asleep" without timing assertions.
#pragma once

#include <kprim/wait.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <pthread.h>
#include <thread>

namespace kprim::test {

inline void noop_handler(int) {}

/// Installs a SIGUSR1 handler (the test program's own, as kprim expects), with or without
/// SA_RESTART, and restores the old one on destruction.
class sigusr1_handler {
 public:
  explicit sigusr1_handler(bool restart) {
    struct sigaction sa {};
    sa.sa_handler = noop_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, &old_);
  }
  ~sigusr1_handler() { sigaction(SIGUSR1, &old_, nullptr); }
  sigusr1_handler(const sigusr1_handler&) = delete;
  sigusr1_handler& operator=(const sigusr1_handler&) = delete;

 private:
  struct sigaction old_ {};
};

/// Runs `wait` (returns int) on a new thread and signals that thread with SIGUSR1 every
/// millisecond until it returns (a signal that lands before the thread sleeps is harmless).
/// Returns wait's result.
template <class Wait>
long interrupt_wait(Wait wait) {
  std::atomic<bool> finished{false};
  long result = 0;
  std::thread t([&] {
    result = wait();
    finished.store(true, std::memory_order_release);
  });
  const pthread_t h = t.native_handle();
  while (!finished.load(std::memory_order_acquire)) {
    pthread_kill(h, SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  t.join();
  return result;
}

/// Polls until pred() holds (no deadline: ctest's timeout is the bound).
template <class Pred>
void eventually(Pred pred) {
  while (!pred()) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

/// Runs a killable `wait` (returns int) on a new thread; once `sleeping()` says it sleeps, a
/// non-fatal SIGUSR1 must not end it (still running 5 ms later); then, with the fatal flag
/// set (kprim::set_fatal_signal_pending(), cleared afterwards), SIGUSR1 every millisecond
/// until it returns. Returns wait's result.
template <class Wait, class Sleeping>
int kill_wait(Wait wait, Sleeping sleeping) {
  std::atomic<int> r{1};  // no killable wait returns 1
  std::thread t([&] { r.store(wait()); });
  eventually(sleeping);
  pthread_kill(t.native_handle(), SIGUSR1);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(r.load(), 1) << "a non-fatal signal does not end a killable wait";
  kprim::set_fatal_signal_pending();
  while (r.load() == 1) {
    pthread_kill(t.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  t.join();
  kprim::clear_fatal_signal_pending();
  return r.load();
}

}  // namespace kprim::test
