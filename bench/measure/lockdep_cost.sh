#!/usr/bin/env bash
# bench/measure/lockdep_cost.sh (issue 14, lockdep): cost of the debug layer on an uncontended spin_lock+spin_unlock and
# mutex_lock+mutex_unlock pair in one thread, layer off vs on (KPRIM_DEBUG_LOCKING=0/1), in
# thread CPU time (so other load on the machine does not count), 5 x 20M pairs each. Also a
# pair nested under one held spinlock (adds the dependency-bitmap test). Bounded: ~30 s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/cost.cpp" <<'CPP'
#include <kprim/mutex.hpp>
#include <kprim/spinlock.hpp>
#include <cstdio>
#include <ctime>
static double cpu_now() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main() {
  static kprim::spinlock_t s, outer;
  static kprim::mutex m;
  constexpr int N = 20'000'000;
  double best[3] = {1e9, 1e9, 1e9};
  for (int rep = 0; rep < 5; ++rep) {
    double t0 = cpu_now();
    for (int i = 0; i < N; ++i) { kprim::spin_lock(&s); kprim::spin_unlock(&s); }
    double t1 = cpu_now();
    kprim::spin_lock(&outer);
    for (int i = 0; i < N; ++i) { kprim::spin_lock(&s); kprim::spin_unlock(&s); }
    kprim::spin_unlock(&outer);
    double t2 = cpu_now();
    for (int i = 0; i < N; ++i) { kprim::mutex_lock(&m); kprim::mutex_unlock(&m); }
    double t3 = cpu_now();
    double v[3] = {(t1 - t0) / N, (t2 - t1) / N, (t3 - t2) / N};
    for (int k = 0; k < 3; ++k) best[k] = v[k] < best[k] ? v[k] : best[k];
  }
  std::printf("spin_lock+spin_unlock %.2f ns, nested under a held spinlock %.2f ns, mutex_lock+mutex_unlock %.2f ns\n",
              best[0], best[1], best[2]);
}
CPP
SRCS="primitives/src/lockdep.cpp primitives/src/thread_slot.cpp primitives/src/qspinlock.cpp primitives/src/mutex.cpp primitives/src/task.cpp primitives/src/osq_lock.cpp"
for on in 0 1; do
  g++ -std=c++20 -O2 -DNDEBUG -DKPRIM_DEBUG_LOCKING=$on -Iprimitives/include "$tmp/cost.cpp" $SRCS -o "$tmp/cost$on" -pthread
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg); best of 5 x 20M pairs, thread CPU time per pair"
echo -n "layer off: "; "$tmp/cost0"
echo -n "layer on:  "; "$tmp/cost1"
