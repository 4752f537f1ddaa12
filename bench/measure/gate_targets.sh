#!/bin/bash
# bench/measure/gate_targets.sh (issue 12, the regression gate): the gate's detection and
# false-alarm counts at the issue's target sizes, on the real bench_locks binary with the
# documented injection (--kprim_inject=REGEX:P%) and the default gate with paired re-runs:
# TRIALS unchanged gates (alarms), TRIALS gates with 20% injected on the contended threads:2
# cs:1000 qspinlock point and TRIALS with 10% on the uncontended threads:1 point (caught), each
# with a fresh baseline. Per injected trial it prints the asked slowdown, the change the
# binary's probes measured, the first runs' median ns/op change and the gate row's verdict and
# change (tools/tests/test_gate_e2e.py --trials). Bounded: no trial starts after BUDGET seconds
# (default 1100; 10 trials per batch take about 15 minutes on a quiet 2-vCPU machine).
# Run from anywhere: bash bench/measure/gate_targets.sh   (BIN_DIR=..., TRIALS=N, BUDGET=S)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
BIN_DIR=${BIN_DIR:-build/release/bench}
[ -x "$BIN_DIR/bench_locks" ] || { echo "missing $BIN_DIR/bench_locks (build first, or give BIN_DIR=...)"; exit 1; }
TRIALS=${TRIALS:-10}
BUDGET=${BUDGET:-1100}
BIN_DIR=$(cd "$BIN_DIR" && pwd)
echo "gate targets: $(date -u +%FT%TZ), nproc $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg), $BIN_DIR, $TRIALS trials per batch"
cd tools && KPRIM_BENCH_DIR="$BIN_DIR" /usr/bin/python3 -m tests.test_gate_e2e --trials "$TRIALS" --budget "$BUDGET"
