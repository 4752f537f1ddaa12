#!/usr/bin/env bash
# bench/measure/debug_layer_cost.sh (issue 14): spin_lock_irqsave vs spin_lock, and the debug layer's cost (layer on vs off in
# one bench_locks binary). Bounded: ~40 trials of 200 ms, well under 2 minutes.
# BENCH=path/to/bench_locks overrides; default build/release (./kbench build).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The first of BENCH, build/release whose bench_locks has the contenders (a
# release tree built before them would lack them).
has() { [[ -x $1 ]] && "$1" --benchmark_list_tests=true 2>/dev/null | grep -q kprim_spinlock_layer_on; }
B=
for c in ${BENCH:-} build/release/bench/bench_locks; do
  if [[ -z $B ]] && has "$c"; then B=$c; fi
done
[[ -n $B ]] || { echo "debug_layer_cost.sh: no bench_locks with the layer/irqsave contenders (ninja -C build/release bench_locks)"; exit 2; }
out=$(mktemp /tmp/h4-measure.XXXXXX.json)
trap 'rm -f "$out"' EXIT
echo "binary: $B  load: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 110 "$B" \
  --benchmark_filter='locks/(uncontended/(kprim_qspinlock|kprim_spin_irqsave|kprim_spinlock_layer_o[nf]f?|kprim_mutex_layer_o[nf]f?)/threads:1/|contended/(kprim_qspinlock|kprim_spin_irqsave|kprim_spinlock_layer_o[nf]f?|kprim_mutex_layer_o[nf]f?)/threads:2/cs:0/gap:0/)' \
  --kprim_trial_ms=200 --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
  --benchmark_out="$out" --benchmark_out_format=json >/dev/null 2>&1
rc=$?
[[ $rc -eq 0 ]] || echo "debug_layer_cost.sh: bench_locks exited $rc (figures below may be partial)"
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys, re
d = json.load(open(sys.argv[1]))
rows = {}
for b in d.get("benchmarks", []):
    if b.get("run_type") == "aggregate" or "ns_per_op" not in b: continue
    m = re.match(r"locks/(\w+)/([^/]+)/threads:(\d+)/", b["name"])
    if not m: continue
    key = (m.group(1), m.group(2), int(m.group(3)))
    cpu = b["worker_cpu_s"] * 1e9 / b["ops"] if b.get("ops") else float("nan")
    rows.setdefault(key, []).append((b["ns_per_op"], cpu, b.get("cpu_util", float("nan"))))
def med(k, i):
    v = rows.get(k)
    return statistics.median(x[i] for x in v) if v else float("nan")
print(f"{'workload':<12} {'contender':<26} {'thr':>3} {'ns/op p50':>10} {'cpu ns/op':>10} {'cpu_util':>8}  (median of 5)")
for k in sorted(rows):
    print(f"{k[0]:<12} {k[1]:<26} {k[2]:>3} {med(k,0):>10.2f} {med(k,1):>10.2f} {med(k,2):>8.2f}")
for w, t in (("uncontended", 1), ("contended", 2)):
    for i, what in ((0, "wall ns/op"), (1, "worker cpu ns/op")):
        base, irq = med((w, "kprim_qspinlock", t), i), med((w, "kprim_spin_irqsave", t), i)
        son, soff = med((w, "kprim_spinlock_layer_on", t), i), med((w, "kprim_spinlock_layer_off", t), i)
        mon, moff = med((w, "kprim_mutex_layer_on", t), i), med((w, "kprim_mutex_layer_off", t), i)
        print(f"{w} t={t} [{what}]: spin_lock_irqsave - spin_lock = {irq - base:+.2f}; "
              f"layer on - off: spin_lock {son - soff:+.2f} (on = {son:.2f}), mutex_lock {mon - moff:+.2f} (on = {mon:.2f})")
print("cpu_util well below 1 means the machine was loaded: wall ns/op then measures the scheduler; use worker cpu ns/op")
print("target: layer-on uncontended spin_lock+spin_unlock <= 25 ns (kprim_spinlock_layer_on, t=1; includes one out-of-line call each way)")
PY
