#!/usr/bin/env bash
# bench/measure/locks_targets.sh (issue 15 items 4-5, locks): the kernel mutex contended at nproc and oversubscribed
# (2x, 4x nproc) against std::mutex, with its slow-path counters (mutex_* : spins and their
# success, sleeps, wake-ups, wake-ups left to a spinner, hand-offs per second) and the share of
# acquisitions that changed owner; spinlock_t (kprim_qspinlock) against pthread_spinlock and
# tbb::spin_mutex at 2 threads, throughput and Jain fairness together. The run's A/A control is
# bench_locks' own (kprim_qspinlock vs kprim_qspinlock_aa, same code twice) at each thread
# count. Random interleaving (the glibc mutex is bimodal; METHOD.md). About 40-60 s on a
# 2-vCPU machine, plus a build if the binary is stale.
# Run from anywhere: bash bench/measure/locks_targets.sh   (BIN=... another bench_locks; OUT=dir keeps JSON)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ -z "${BIN:-}" ]]; then
  cmake --build build/release --target bench_locks >/dev/null
  BIN=build/release/bench/bench_locks
fi
OUT=${OUT:-$(mktemp -d /tmp/h7-measure.XXXXXX)}; mkdir -p "$OUT"
N=$(nproc)
REPS=${REPS:-9}
echo "locks targets: $(date -u +%FT%TZ), nproc $N, load: $(cut -d' ' -f1-3 /proc/loadavg), $BIN, JSON in $OUT"
run() {  # name, extra flags...
  local name=$1; shift
  timeout 100 "$BIN" --kprim_trial_ms=200 --kprim_latency=off --benchmark_repetitions=$REPS \
    --benchmark_enable_random_interleaving=true \
    --benchmark_format=json --benchmark_out="$OUT/$name.json" "$@" >/dev/null 2>"$OUT/$name.err" ||
    { echo "bench_locks ($name) failed: see $OUT/$name.err"; exit 1; }
}
run mutex --kprim_threads=$N,$((2 * N)),$((4 * N)) \
  --benchmark_filter='^locks/contended/(kprim_mutex|std_mutex|kprim_qspinlock|kprim_qspinlock_aa)/threads:[0-9]+/cs:0/gap:0/'
run spin --kprim_threads=2 \
  --benchmark_filter='^locks/contended/(kprim_qspinlock|kprim_qspinlock_aa|pthread_spinlock|tbb_spin_mutex)/threads:2/cs:0/gap:0/'
/usr/bin/python3 - "$OUT" "$N" <<'PY'
import collections, json, statistics as st, sys
out, n = sys.argv[1], int(sys.argv[2])
def load(name):
    g = collections.defaultdict(list)
    for b in json.load(open(f"{out}/{name}.json"))["benchmarks"]:
        if b.get("run_type") != "iteration": continue
        if b.get("error_occurred"): print("ERROR", b["name"], b.get("error_message")); continue
        p = b["name"].split("/")
        g[(p[2], int(p[3].split(":")[1]))].append(b)
    return g
med = lambda v, k: st.median(x[k] for x in v if k in x) if any(k in x for x in v) else float("nan")
def aa(g, t):
    a, b = g.get(("kprim_qspinlock", t)), g.get(("kprim_qspinlock_aa", t))
    return abs(med(a, "ops_per_s") / med(b, "ops_per_s") - 1) * 100 if a and b else float("nan")
def row(g, c, t):
    v = g[(c, t)]
    cu = med(v, "cpu_util")
    print(f"  {c:20s} threads {t:3d}: {med(v,'ops_per_s')/1e6:8.1f} Mops/s  fairness {med(v,'fairness'):.3f}"
          f"  owner_changes/op {med(v,'owner_changes_per_op'):.3g}  cpu_util {cu:.2f}  (n={len(v)}, median)")
g = load("mutex")
print("kernel mutex, contended, cs=0 gap=0 (target: kprim_mutex >= 1.3x std_mutex at nproc)")
for t in (n, 2 * n, 4 * n):
    if ("kprim_mutex", t) not in g or ("std_mutex", t) not in g: continue
    row(g, "kprim_mutex", t); row(g, "std_mutex", t)
    k, s = g[("kprim_mutex", t)], g[("std_mutex", t)]
    ctr = " ".join(f"{c[6:]}={med(k, c):.3g}" for c in sorted(k[0]) if c.startswith("mutex_"))
    print(f"    kprim_mutex counters (median): {ctr}")
    print(f"    ratio kprim_mutex / std_mutex = {med(k,'ops_per_s')/med(s,'ops_per_s'):.2f}x   A/A noise (qspinlock vs _aa) {aa(g, t):.1f}%")
g = load("spin")
print("spinlock_t at 2 threads, contended, cs=0 gap=0 (target: >= best of pthread_spinlock, tbb_spin_mutex; fairness >= 0.9)")
for c in ("kprim_qspinlock", "kprim_qspinlock_aa", "pthread_spinlock", "tbb_spin_mutex"):
    if (c, 2) in g: row(g, c, 2)
if all((c, 2) in g for c in ("kprim_qspinlock", "pthread_spinlock", "tbb_spin_mutex")):
    best = max(med(g[(c, 2)], "ops_per_s") for c in ("pthread_spinlock", "tbb_spin_mutex"))
    print(f"    ratio spinlock_t / best peer = {med(g[('kprim_qspinlock', 2)], 'ops_per_s')/best:.2f}x"
          f"   fairness {med(g[('kprim_qspinlock', 2)], 'fairness'):.3f}   A/A noise {aa(g, 2):.1f}%")
PY
