#!/bin/bash
# bench/measure/before_after.sh (issue 16's "figures unchanged"): a default run of an earlier
# commit and of this tree, measured now, one after the other, then judged by the default gate
# with paired re-runs, so every gated point is decided on the two builds measured back to back
# and never on two runs taken at different times (results/thresholds.json: remeasure).
#   1. `git worktree add` of BEFORE (a commit) in a temporary directory; its own release build.
#   2. BEFORE's `./kbench run` in its worktree, then this tree's `./kbench run` (defaults: 5
#      interleaved repetitions x 100 ms, threads 1..2x/4x nproc) into a results directory of
#      this script's own (results/ and plots/ of the repository stay untouched).
#   3. `./kbench gate --baseline BEFORE's --current this tree's --rerun ... --rerun-baseline ...`:
#      each side re-runs through its own `kbench_results.py bisect-bench` (./kbench bisect's
#      re-run: ./kbench run's flags, bench_<family>.runs processes, its own results writer).
# Prints the gate's verdict counts and its report's non-SAME rows; keeps everything in OUT.
# Bounded: each default run is about 18 minutes on the 2-vCPU machine, each paired re-run of
# the gated points (threads 1 and 2) about 2 x 8 minutes; MAX_RERUNS (default 1) bounds them.
# Run: bash bench/measure/before_after.sh BEFORE [OUT]   (FIRST_BEFORE=F FIRST_AFTER=F: take
# these results files as the first runs instead of measuring them; WORKTREE=DIR: BEFORE is
# already checked out and built there)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$(pwd)
[ $# -ge 1 ] || { echo "kbench: before_after.sh: usage: bench/measure/before_after.sh BEFORE [OUT]" >&2; exit 2; }
BEFORE=$(git rev-parse --verify --quiet "$1^{commit}") \
  || { echo "kbench: before_after.sh: $1 is not a commit" >&2; exit 2; }
OUT=${2:-$(mktemp -d /tmp/before_after.XXXXXX)}
mkdir -p "$OUT/results" "$OUT/plots" || { echo "kbench: before_after.sh: cannot write $OUT" >&2; exit 2; }
for f in "${FIRST_BEFORE:-}" "${FIRST_AFTER:-}"; do
  [ -z "$f" ] || [ -f "$f" ] || { echo "kbench: before_after.sh: no results file $f" >&2; exit 2; }
done
MAX_RERUNS=${MAX_RERUNS:-1}
WT=${WORKTREE:-$OUT/worktree}
[ -d "$WT" ] || git worktree add --detach "$WT" "$BEFORE" >/dev/null \
  || { echo "kbench: before_after.sh: git worktree add failed" >&2; exit 1; }
[ "$(git -C "$WT" rev-parse HEAD 2>/dev/null)" = "$BEFORE" ] \
  || { echo "kbench: before_after.sh: $WT is not a checkout of $BEFORE" >&2; exit 2; }
echo "before/after: $(date -u +%FT%TZ), nproc $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before: $(git log -1 --format='%h %s' "$BEFORE" | cut -c1-100)"
echo "after:  $(git rev-parse --short HEAD) (this tree$(git diff --quiet HEAD || echo ', dirty'))"

newest() { ls -t "$1"/*/*.json 2>/dev/null | head -1; }
if [ -n "${FIRST_BEFORE:-}" ]; then
  B=$FIRST_BEFORE
else
  # BEFORE's own ./kbench run (older ones know no KBENCH_RESULTS_DIR: its file lands in the
  # worktree's results/; some exit 1 after writing it, see 3b84053: the file decides).
  (cd "$WT" && ./kbench run) >"$OUT/run_before.log" 2>&1
  B=$(newest "$WT/results")
fi
[ -n "$B" ] && [ -f "$B" ] || { echo "kbench: before_after.sh: BEFORE's run wrote no results (see $OUT/run_before.log)" >&2; exit 1; }
if [ -n "${FIRST_AFTER:-}" ]; then
  A=$FIRST_AFTER
else
  KBENCH_RESULTS_DIR=$OUT/results KBENCH_PLOTS_DIR=$OUT/plots KBENCH_STORE=sqlite:$OUT/store.sqlite \
    ./kbench run >"$OUT/run_after.log" 2>&1 \
    || { echo "kbench: before_after.sh: this tree's run failed (see $OUT/run_after.log)" >&2; exit 1; }
  A=$(newest "$OUT/results")
fi
echo "first runs: $B, $A"

# The re-run of one side is that side's own `kbench_results.py bisect-bench` (the gate's
# re-run inside ./kbench bisect): its binaries with ./kbench run's default flags and
# bench_<family>.runs processes, filtered by the gate, written by its own results writer
# (the families of its build's families.txt, as ./kbench run).
state() {  # state() TREE NAME: the bisect-bench state file of TREE, in OUT/NAME
  local dir=$OUT/$2 families
  mkdir -p "$dir/logs"
  families=$(paste -sd, "$1/build/release/bench/families.txt")  # what ./kbench run runs
  /usr/bin/python3 -c 'import json, sys; t, d, f = sys.argv[1:4]; json.dump({"worktree": t, "dir": d, "tools": t + "/tools", "families": f.split(","), "trial_ms": 100, "repetitions": 5, "threads": ""}, open(d + "/state.json", "w"))' "$1" "$dir" "$families"
  printf '/usr/bin/python3 %q bisect-bench %q --filter {filter} --out {out}\n' "$1/tools/kbench_results.py" "$dir/state.json"
}
[ -x "$WT/build/release/bench/bench_locks" ] || (cd "$WT" && ./kbench build) >"$OUT/build_before.log" 2>&1
./kbench gate --baseline "$B" --current "$A" --max-reruns "$MAX_RERUNS" --report "$OUT/gate.md" \
  --rerun "$(state "$ROOT" rerun_after)" --rerun-baseline "$(state "$WT" rerun_before)" >"$OUT/gate.txt" 2>&1
status=$?
echo "gate exit $status: $(grep -m1 -E '^[0-9]+ [A-Z_]+' "$OUT/gate.md" 2>/dev/null || tail -1 "$OUT/gate.txt")"
grep -E '^\| (SLOWER|FASTER|UNKNOWN|NO_DATA) ' "$OUT/gate.md" 2>/dev/null | cut -c1-240
echo "report: $OUT/gate.md; worktree: $WT (git worktree remove --force $WT)"
