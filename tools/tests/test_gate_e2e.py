"""End-to-end gate test on the real bench_locks binary with ``--kprim_inject`` (ctest
``tools_gate_e2e``, label tools, release preset; it runs alone: RUN_SERIAL).

A baseline, an unchanged run and injected runs of two points, run the way ``./kbench run``
runs them (its default 5 repetitions x 100 ms, random interleaving) and merged by
``kbench_results.py write`` into temporary results directories, are gated with the repository's
``results/thresholds.json`` and ``--rerun`` of undecided points:

- unchanged: exit 0, no SLOWER row;
- ``--kprim_inject`` adding twice its time per operation to
  ``locks/contended/kprim_qspinlock/threads:2/cs:1000`` and its A/A twin ``kprim_qspinlock_aa`` (same
  code, so a real regression slows both): exit 1, the point's row SLOWER and the only SLOWER rows among those two (the twin's
  row is the noise control and never fails the gate on its own);
- the same for ``locks/uncontended/kprim_qspinlock/threads:1``;
- an injected file as the baseline is refused (exit 2).

The injection is the relative form ``--kprim_inject=REGEX:P%``: the binary probes the point
with and without the injected work, back to back, and sizes NS so that the point's time per
operation grows by P% (a NS computed from the baseline's time per operation added less than
asked: 4.5 ns of work made a point 1.85 ns slower). The NS it settled on (counter
``kprim_inject_ns`` of the injected entries) is what the injected build's re-runs use, so the
current run and its re-runs carry one injection. It is skipped unless ``KPRIM_BENCH_DIR``
names the build's bench/ directory (set by the ctest entry).

``python3 -m tests.test_gate_e2e --trials N [--pooled]`` (from tools/, with ``KPRIM_BENCH_DIR``
set) measures the same thing N times at the target sizes (20%, 10%), each trial with a fresh
baseline and started once the machine has been idle for 3 s (waiting at most a minute):
unchanged gates that raised an alarm, injected gates that caught it, and per injected gate the
slowdown asked and achieved: the per-operation time change the binary's probes measured, the
change of the median ns/op from the baseline to the current run (the first runs, drift
between them included), and the change the gate's own row measured (on the paired re-runs
when it made any, else on the first runs). A miss with the probes and the paired re-runs
near the asked size is the gate's; one with them short of it is the injection's. The gates use paired re-runs (``--rerun-baseline``: the same binary
without the injection), ``--pooled`` the current-only re-runs. ``--only unchanged|contended|
uncontended`` runs one batch; ``--budget S`` starts no trial after S seconds
(``bench/measure/gate_targets.sh`` runs the three batches).
"""

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import unittest

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TOOLS)
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
BENCH_DIR = os.environ.get("KPRIM_BENCH_DIR", "")

#: The contended target has a critical section (cs:1000, bench_locks' long-section variant):
#: with 2 threads on one lock the section is the serial part of every operation, so time
#: added inside it is a slowdown of the same size. At cs:0 it is not: the point is bimodal and
#: a delay inside an empty section can make the lock faster (fewer hand-overs of its line), so
#: the same 20% request read -10.7%..+32.3% in the probes and two injected trials came out
#: FASTER even in paired re-runs.
CONTENDED = "locks/contended/kprim_qspinlock/threads:2/cs:1000/gap:0/locks:1"
UNCONTENDED = "locks/uncontended/kprim_qspinlock/threads:1/cs:0/gap:0/locks:per_thread"
#: The points and their A/A twins (the gate's noise floor), nothing else.
FILTER = ("^locks/contended/kprim_qspinlock(_aa)?/threads:2/cs:1000/gap:0/locks:1/"
          "|^locks/uncontended/kprim_qspinlock(_aa)?/threads:1/cs:0/gap:0/locks:per_thread/")
#: Slowdowns injected by ``--trials`` (fraction of the point's time per operation): the issue's
#: targets, figures rather than assertions.
SLOWDOWN = {CONTENDED: 0.20, UNCONTENDED: 0.10}
#: What the ctest injects: twice the point's time per operation (throughput about a third),
#: far beyond what the load of a shared 2-core host does to an unchanged run, so the test is
#: not flaky; the target sizes are measured by ``--trials``.
TEST_SLOWDOWN = 2.0
#: ``--trials``: paired re-runs (``--rerun-baseline``), unless ``--pooled`` is given.
PAIRED = True
VERDICTS = ("SLOWER", "FASTER", "SAME", "UNKNOWN", "NEW", "MISSING", "SKIPPED", "NO_DATA")


def bench_argv(out, flt=FILTER, inject=None):
    """bench_locks' command line as ``./kbench run`` builds it (defaults: 5 x 100 ms)."""
    argv = [os.path.join(BENCH_DIR, "bench_locks"), "--kprim_trial_ms=100", "--kprim_pin=none",
            "--benchmark_repetitions=5", "--benchmark_enable_random_interleaving=true",
            f"--benchmark_out={out}", "--benchmark_out_format=json",
            f"--benchmark_filter={flt}", "--kprim_threads=1,2"]
    if inject:
        argv.append(f"--kprim_inject={inject}")
    return argv + ["--benchmark_display_aggregates_only=true"]


def run(tmp, label, inject=None, flt=FILTER):
    """One run into ``tmp/<label>/``: bench_locks, then ``kbench_results.py write``; its path."""
    raw = os.path.join(tmp, f"{label}.raw.json")
    subprocess.run(bench_argv(raw, flt=flt, inject=inject), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=120)
    done = subprocess.run([PYTHON, os.path.join(TOOLS, "kbench_results.py"), "write",
                           "--results-dir", os.path.join(tmp, label), "--run-args",
                           f"test_gate_e2e {label}", raw],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


def rerun_command(inject=None):
    """The gate's --rerun: the same binary and flags, filtered to the undecided points."""
    argv = bench_argv("OUT", flt="FLT", inject=inject)
    words = []
    for word in argv:
        if word == "--benchmark_out=OUT":
            words.append("--benchmark_out={out}")
        elif word == "--benchmark_filter=FLT":
            words.append("--benchmark_filter={filter}")
        else:
            words.append(shlex.quote(word))
    return " ".join(words) + " >/dev/null"


def gate(baseline, current, inject=None, paired=True):
    """``./kbench gate`` with the repository's thresholds, --rerun and (``paired``)
    --rerun-baseline: the baseline's build is the same binary without the injection, so the
    re-runs measure both sides back to back; CompletedProcess."""
    argv = [os.path.join(ROOT, "kbench"), "gate", "--baseline", baseline, "--current", current,
            "--rerun", rerun_command(inject)]
    if paired:
        argv += ["--rerun-baseline", rerun_command(None)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)


def cells_of(line):
    """The cells of one Markdown table row (a ``\\|`` inside a cell is not a separator)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def verdicts(report):
    """``{benchmark: verdict}`` from the rows of a gate report's Markdown tables."""
    out = {}
    for line in report.splitlines():
        cells = cells_of(line)
        if len(cells) > 2 and cells[0] in VERDICTS:
            out[cells[1]] = cells[0]
    return out


def row_of(report, point):
    """The cells after the benchmark name of ``point``'s row (figure, sides, change, p, why)."""
    for line in report.splitlines():
        cells = cells_of(line)
        if len(cells) > 2 and cells[0] in VERDICTS and cells[1] == point:
            return " | ".join(cells[2:])
    return "-"




def twin(point):
    """The A/A twin of a point (``kprim_qspinlock`` is bench_locks' control contender)."""
    return point.replace("/kprim_qspinlock/", "/kprim_qspinlock_aa/")


def injection(point, fraction):
    """``--kprim_inject`` value making ``point`` and its A/A twin, nothing else, ``fraction``
    slower per operation (the relative form, sized by the binary's probes).

    The twin runs the same code, so a real regression of the contender slows both; slowing
    only one would also widen the run's own A/A noise, the floor of SAME, by the slowdown.
    """
    return injected_regex(point) + f":{100 * fraction:.3f}%"


def injected_regex(point):
    """The REGEX part of :func:`injection`: the point and its twin."""
    return "^" + point.replace("/kprim_qspinlock/", "/kprim_qspinlock(_aa)?/") + "/"


def settled(path, point):
    """``(NS, probe change)`` the relative injection settled on for ``point`` in results file
    ``path`` (counters ``kprim_inject_ns``, ``kprim_inject_probe_change``)."""
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    for entry in doc["benchmarks"]:
        if entry["name"].startswith(point + "/") and "kprim_inject_ns" in entry:
            return float(entry["kprim_inject_ns"]), float(entry.get("kprim_inject_probe_change",
                                                                     0.0))
    raise AssertionError(f"{path}: {point} has no kprim_inject_ns counter")


def fixed_injection(path, point):
    """``--kprim_inject=REGEX:NS`` with the NS the current run at ``path`` settled on: the
    injected build of the re-runs (one injection for the current run and its re-runs)."""
    ns = max(0.001, round(settled(path, point)[0], 3))
    return injected_regex(point) + f":{ns:.3f}"


def median_change(baseline, current, point):
    """The change of ``point``'s median ns/op from results file ``baseline`` to ``current``
    (their repetitions' ``real_time``, ns per operation, which the file keeps where it
    leaves ``ns_per_op`` out): what the injection achieved between the two first runs, drift
    between them included; ``None`` when either lacks the point."""
    medians = []
    for path in (baseline, current):
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
        values = [float(e["real_time"]) for e in doc["benchmarks"]
                  if e["name"].startswith(point + "/") and e.get("run_type") != "aggregate"
                  and float(e.get("real_time") or 0) > 0]
        if not values:
            return None
        medians.append(statistics.median(values))
    return medians[1] / medians[0] - 1.0


def achieved(report, point):
    """The per-operation time change of ``point`` the gate's row measured (from its ops/s
    change c: 1 / (1 + c) - 1), and whether that came from paired re-runs; ``(None, False)``
    when the row has no change."""
    for line in report.splitlines():
        cells = cells_of(line)
        if len(cells) > 7 and cells[0] in VERDICTS and cells[1] == point:
            text = cells[5].rstrip("%").replace("\u2212", "-")
            try:
                change = float(text) / 100
            except ValueError:
                return None, False
            return 1.0 / (1.0 + change) - 1.0, "paired re-run" in cells[7]
    return None, False


class RunInjectFlagTest(unittest.TestCase):
    """``./kbench run --inject`` is validated before anything is built or run."""

    def test_bad_values(self):
        for value, needle in (("x", "REGEX:NS"), (":5", "empty REGEX"), ("a(:5", "bad regex"),
                              ("a:0", "1..1000000"), ("a:1000001", "1..1000000"),
                              ("a:5x", "1..1000000"), ("a:", "1..1000000"),
                              ("a:0.0001", "0.001..1000000"), ("a:1.", "at most 3 decimals"),
                              ("a:0.05%", "0.1..1000"), ("a:1001%", "0.1..1000"),
                              ("a:5%%", "P%"), ("a:x%", "percent")):
            proc = subprocess.run(["bash", os.path.join(ROOT, "kbench"), "run", "--inject",
                                   value], capture_output=True, text=True, timeout=60,
                                  check=False)
            self.assertEqual(proc.returncode, 2, value + ": " + proc.stderr)
            lines = proc.stderr.splitlines()
            self.assertEqual(len(lines), 1, proc.stderr)
            self.assertTrue(lines[0].startswith("kbench: --inject"), lines[0])
            self.assertIn(needle, lines[0])
            self.assertEqual(proc.stdout, "")
        proc = subprocess.run(["bash", os.path.join(ROOT, "kbench"), "run", "--inject"],
                              capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual((proc.returncode, proc.stderr.count("\n")), (2, 1), proc.stderr)


@unittest.skipUnless(BENCH_DIR, "needs KPRIM_BENCH_DIR (the ctest entry tools_gate_e2e sets it)")
class GateEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="kbench-gate-e2e-")
        cls.baseline = run(cls.tmp.name, "baseline")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_injected(self, point):
        inject = injection(point, TEST_SLOWDOWN)
        # The injected run measures only the injected point and its twin (the baseline's other
        # points are MISSING, which never fails the gate): this VM's state drifts between runs
        # seconds apart (the host moves its vCPUs), and an unrelated point measured in that
        # other state can come out SLOWER; the unchanged test below is where that is judged.
        only = "^" + point.replace("/kprim_qspinlock/", "/kprim_qspinlock(_aa)?/") + "/"
        current = run(self.tmp.name, "injected-" + point.split("/")[1], inject=inject, flt=only)
        # The injected entries record the NS the probes settled on (how close the probes came
        # to the asked slowdown is a measurement, printed by --trials, not asserted here).
        ns, probe = settled(current, point)
        self.assertGreater(ns, 0.0)
        proc = gate(self.baseline, current, inject=fixed_injection(current, point))
        self.assertEqual(proc.returncode, 1, f"--kprim_inject={inject} (NS {ns:.3f}, probes "
                                             f"{probe:+.0%})\n{proc.stdout}{proc.stderr}")
        slower = {b for b, v in verdicts(proc.stdout).items() if v == "SLOWER"}
        # The point is SLOWER (its twin's row never fails the gate alone, so the point's row
        # is what failed it), and only injected points are: the twin is injected too, and
        # may be SLOWER beside it or kept inside the band by a noisy run's own A/A floor.
        self.assertIn(point, slower, proc.stdout)
        self.assertLessEqual(slower, {point, twin(point)}, proc.stdout)
        self.assertIn("INJECTED", proc.stdout)
        return current

    def test_unchanged_passes(self):
        # Up to two fresh retries (new baseline and current): on this VM an unchanged pair of
        # runs taken seconds apart raised an alarm in 1 of 10 trials (the host moved the vCPUs
        # between them: a real change of the machine, not of the code, which no within-run A/A
        # control sees; `--trials` measures that rate). Three in a row fail the test.
        baseline = self.baseline
        current = run(self.tmp.name, "unchanged")
        proc = gate(baseline, current)
        for attempt in (1, 2):
            if proc.returncode == 0:
                break
            baseline = run(self.tmp.name, f"baseline-retry{attempt}")
            current = run(self.tmp.name, f"unchanged-retry{attempt}")
            proc = gate(baseline, current)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # No gated row is SLOWER. The A/A twins are the noise control, informational by
        # design: a twin may read SLOWER on a run the host disturbed (an unchanged CI run's
        # twin did, -9.8% at p=0.032, while its stem was SAME); the report says so, and
        # only the points' own rows gate the code.
        found = verdicts(proc.stdout)
        gated = {b: v for b, v in found.items() if b not in (twin(CONTENDED), twin(UNCONTENDED))}
        self.assertNotIn("SLOWER", gated.values(), proc.stdout)
        self.assertLessEqual({CONTENDED, UNCONTENDED}, set(found), proc.stdout)

    def test_contended_threads2_slowdown_fails(self):
        self.check_injected(CONTENDED)

    def test_uncontended_threads1_slowdown_fails_and_injected_baseline_refused(self):
        injected = self.check_injected(UNCONTENDED)
        proc = gate(injected, self.baseline)
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertTrue(proc.stderr.startswith("kbench: "), proc.stderr)


def busy_fraction(seconds=1.0):
    """Share of the machine's CPU time that was not idle over ``seconds`` (/proc/stat)."""
    import time

    def sample():
        with open("/proc/stat", encoding="utf-8") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)
    idle0, all0 = sample()
    time.sleep(seconds)
    idle1, all1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, all1 - all0)


def wait_quiet(limit_s=60, busy=0.15):
    """Wait (at most ``limit_s``) for 3 consecutive seconds under ``busy`` CPU use; return the
    seconds waited and whether it got quiet."""
    waited, quiet = 0, 0
    while waited < limit_s:
        waited += 1
        quiet = quiet + 1 if busy_fraction() < busy else 0
        if quiet >= 3:
            return waited, True
    return waited, False


BATCHES = ("unchanged", "contended", "uncontended")


def measure(trials, batches=BATCHES, budget_s=None):
    """The targets' figures: per trial one unchanged and two injected gates against a fresh
    baseline (or the ``batches`` named); prints each gate's outcome, the slowdown the gate
    measured (paired re-runs, else the first runs) and the probes' one, then the counts.
    With ``budget_s`` no trial starts once that many seconds have passed (the counts are then
    over the trials done)."""
    import time
    started = time.monotonic()
    alarms, caught = 0, {CONTENDED: 0, UNCONTENDED: 0}
    seen = {CONTENDED: [], UNCONTENDED: []}
    points = [p for p, b in ((CONTENDED, "contended"), (UNCONTENDED, "uncontended"))
              if b in batches]
    with tempfile.TemporaryDirectory(prefix="kbench-gate-e2e-") as tmp:
        done = 0
        for trial in range(1, trials + 1):
            if budget_s is not None and time.monotonic() - started > budget_s:
                print(f"time budget of {budget_s:g} s spent: {done} of {trials} trials done",
                      flush=True)
                break
            done = trial
            waited, quiet = wait_quiet(limit_s=60 if budget_s is None else 10)
            print(f"trial {trial}: waited {waited} s for a quiet machine"
                  + ("" if quiet else " (never quiet: measured anyway)"), flush=True)
            baseline = run(tmp, f"t{trial}-baseline")
            if "unchanged" in batches:
                current = run(tmp, f"t{trial}-unchanged")
                proc = gate(baseline, current, paired=PAIRED)
                got = verdicts(proc.stdout)
                alarms += proc.returncode != 0
                again = sorted(b for b in got if "re-measured (" in row_of(proc.stdout, b))
                print(f"trial {trial}: unchanged exit {proc.returncode}; not SAME: "
                      + ", ".join(f"{b} {v} ({row_of(proc.stdout, b)})"
                                  for b, v in sorted(got.items()) if v != "SAME")
                      + f"; re-measured in paired re-runs: {len(again)} row(s)"
                      + "".join(f"; {b}: {row_of(proc.stdout, b)}" for b in again
                                if got[b] == "SAME"), flush=True)
            for point in points:
                inject = injection(point, SLOWDOWN[point])
                only = injected_regex(point)
                current = run(tmp, f"t{trial}-inj-{point.split('/')[1]}", inject=inject,
                              flt=only)
                ns, probe = settled(current, point)
                proc = gate(baseline, current, inject=fixed_injection(current, point),
                            paired=PAIRED)
                got = verdicts(proc.stdout)
                hit = proc.returncode == 1 and got.get(point) == "SLOWER" and \
                    {b for b, v in got.items() if v == "SLOWER"} <= {point, twin(point)}
                caught[point] += hit
                slow, paired = achieved(proc.stdout, point)
                if slow is not None:
                    seen[point].append(slow)
                first = median_change(baseline, current, point)
                print(f"trial {trial}: --kprim_inject={inject} (asked {SLOWDOWN[point]:+.0%}, "
                      f"NS {ns:.3f}, probes {probe:+.1%}, first runs' medians ns/op "
                      + ("-" if first is None else f"{first:+.1%}")
                      + f"): exit {proc.returncode}, {point}: {got.get(point)}, "
                      f"gate row's ns/op change "
                      + ("-" if slow is None else f"{slow:+.1%}")
                      + (" (paired re-runs)" if paired else " (first runs)")
                      + f" ({row_of(proc.stdout, point)}); SLOWER: "
                      f"{sorted(b for b, v in got.items() if v == 'SLOWER')}", flush=True)
    trials = done
    print(f"re-runs: {'paired (--rerun-baseline)' if PAIRED else 'pooled (current only)'}; "
          f"{time.monotonic() - started:.0f} s")
    print("| batch | trials | alarms / caught | achieved ns/op slowdown (median, min..max) |")
    print("|---|---|---|---|")
    if "unchanged" in batches:
        print(f"| unchanged | {trials} | {alarms}/{trials} alarms | - |")
    for point in points:
        got = seen[point]
        spread = (f"{statistics.median(got):+.1%} ({min(got):+.1%}..{max(got):+.1%})"
                  if got else "-")
        print(f"| {SLOWDOWN[point]:.0%} on {short_point(point)} | {trials} | "
              f"{caught[point]}/{trials} caught | {spread} |")
    return 0


def short_point(point):
    """``contended t:2`` / ``uncontended t:1`` for the table."""
    return f"{point.split('/')[1]} t:{point.split('threads:')[1].split('/')[0]}"


if __name__ == "__main__":
    # --trials N [--pooled] [--only unchanged|contended|uncontended] [--budget SECONDS]
    argv = sys.argv[1:]
    if argv[:1] == ["--trials"] and len(argv) >= 2 and BENCH_DIR:
        rest = argv[2:]
        budget = None
        if "--budget" in rest and rest.index("--budget") + 1 < len(rest):
            at = rest.index("--budget")
            budget = float(rest[at + 1])
            del rest[at:at + 2]
        PAIRED = "--pooled" not in rest
        only = BATCHES
        if "--only" in rest:
            only = (rest[rest.index("--only") + 1],) if rest.index("--only") + 1 < len(rest) \
                else ()
        if not set(only) <= set(BATCHES) or not only or \
                set(rest) - {"--pooled", "--only", *BATCHES}:
            sys.exit("usage: python3 -m tests.test_gate_e2e --trials N [--pooled] "
                     "[--only unchanged|contended|uncontended] [--budget SECONDS]")
        sys.exit(measure(int(argv[1]), only, budget))
    unittest.main()
