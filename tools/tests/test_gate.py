"""Tests of ``kbench gate``: verdicts, exit status, thresholds, bounded re-runs, report."""

import json
import os
import shlex
import tempfile
import unittest

from kprim_tools import KbenchError
from kprim_tools.gate import load_thresholds, settings_for
from tests import fixtures as fx

QSPIN = "locks/contended/kprim_qspinlock/threads:{}/cs:1/gap:0"


def verdict_of(report, benchmark):
    """The verdict cell of ``benchmark``'s row in a Markdown gate report."""
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[1] == benchmark:
            return cells[0]
    return None


class GateTest(unittest.TestCase, fx.ErrorAssertions):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.thresholds = self.write_thresholds({"tolerance": 0.10})
        self.base5 = self.doc("base5.json", repetitions=5)

    def tearDown(self):
        self.tmp.cleanup()

    def doc(self, name, ctx=None, **kwargs):
        return fx.write(self.dir, name, fx.document(ctx=ctx, benches=fx.benchmarks(**kwargs)))

    def write_thresholds(self, default, rules=(), version=1, max_reruns=2):
        return fx.write(self.dir, "thresholds.json", {
            "thresholds_version": version, "reference": "std_mutex", "alpha": 0.05,
            "max_reruns": max_reruns, "default": default, "rules": list(rules)})

    def gate(self, baseline, current, *extra):
        return fx.cli("gate", "--baseline", baseline, "--current", current, "--thresholds",
                      self.thresholds, *extra)

    def test_slowed_contender_is_slower(self):
        slowed = self.doc("slowed.json", repetitions=5, slow={"kprim_qspinlock": 0.7},
                          wobble_offset=1)
        proc = self.gate(self.base5, slowed)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("FAIL", proc.stdout.splitlines()[0])
        for threads in (1, 2, 4):
            self.assertEqual(verdict_of(proc.stdout, QSPIN.format(threads)), "SLOWER")
        self.assertEqual(verdict_of(proc.stdout, QSPIN.replace("kprim_qspinlock", "nolock")
                                    .format(2)), "SAME")

    def test_unchanged_passes(self):
        again = self.doc("again.json", repetitions=5, wobble_offset=3)
        proc = self.gate(self.base5, again)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("PASS", proc.stdout.splitlines()[0])
        self.assertNotIn("SLOWER |", proc.stdout)

    def test_faster_passes(self):
        faster = self.doc("fast.json", repetitions=5, slow={"kprim_qspinlock": 1.5})
        proc = self.gate(self.base5, faster)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(2)), "FASTER")

    def test_unknown_resolved_by_rerun(self):
        base3 = self.doc("base3.json", repetitions=3)
        cur3 = self.doc("cur3.json", repetitions=3, slow={"kprim_qspinlock": 0.7},
                        wobble_offset=5)
        more = self.doc("more.json", repetitions=3, slow={"kprim_qspinlock": 0.7},
                        wobble_offset=2)
        proc = self.gate(base3, cur3)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(1)), "UNKNOWN")
        self.assertEqual(proc.returncode, 0, "UNKNOWN alone does not fail without --strict")
        self.assertEqual(self.gate(base3, cur3, "--strict").returncode, 1)
        log = os.path.join(self.dir, "filters.log")
        rerun = f"echo \"$KBENCH_GATE_FILTER\" >> {shlex.quote(log)} && cp {more} {{out}}"
        proc = self.gate(base3, cur3, "--rerun", rerun)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(1)), "SLOWER")
        self.assertIn("pooled with 1 re-run", proc.stdout)
        with open(log, encoding="utf-8") as handle:
            filters = handle.read().splitlines()
        self.assertEqual(len(filters), 1)
        self.assertIn("kprim_qspinlock", filters[0])
        self.assertIn("std_mutex", filters[0], "the reference is re-measured with it")

    def test_reruns_are_bounded(self):
        base3 = self.doc("base3.json", repetitions=3)
        cur3 = self.doc("cur3.json", repetitions=3, slow={"kprim_qspinlock": 0.7},
                        wobble_offset=5)
        useless = self.doc("useless.json", speeds={"std_mutex": 40e6})
        count = os.path.join(self.dir, "count")
        rerun = f"echo x >> {shlex.quote(count)}; cp {useless} {{out}}"
        proc = self.gate(base3, cur3, "--rerun", rerun, "--max-reruns", "3")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(1)), "UNKNOWN")
        with open(count, encoding="utf-8") as handle:
            self.assertEqual(len(handle.read().split()), 3)

    def test_failing_rerun_is_unusable(self):
        base3 = self.doc("base3.json", repetitions=3)
        cur3 = self.doc("cur3.json", repetitions=3, slow={"kprim_qspinlock": 0.7},
                        wobble_offset=5)
        noisy = "echo noisy; echo oops >&2; exit 3"
        self.assertOneLineError(self.gate(base3, cur3, "--rerun", noisy), "status 3 (oops)")
        self.assertOneLineError(self.gate(base3, cur3, "--rerun", "true"), "cannot read")

    def test_thresholds_rules(self):
        self.thresholds = self.write_thresholds({"tolerance": 0.10}, rules=[
            {"match": "kprim_qspinlock/threads:1/", "tolerance": 0.5},
            {"match": "kprim_qspinlock/threads:2/", "ignore": True}])
        slowed = self.doc("slowed.json", repetitions=5, slow={"kprim_qspinlock": 0.7})
        proc = self.gate(self.base5, slowed)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(1)), "SAME")
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(2)), "SKIPPED")
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(4)), "SLOWER")
        self.assertEqual(proc.returncode, 1)

    def test_settings_first_rule_wins(self):
        path = self.write_thresholds({"tolerance": 0.1}, rules=[
            {"match": "a", "tolerance": 0.2}, {"match": "ab", "tolerance": 0.3}])
        thresholds = load_thresholds(path)
        self.assertEqual(settings_for(thresholds, "xab")[0], 0.2)
        self.assertEqual(settings_for(thresholds, "zzz")[0], 0.1)

    def test_bad_thresholds(self):
        self.thresholds = self.write_thresholds({"tolerance": 0.1}, version=2)
        self.assertOneLineError(self.gate(self.base5, self.base5), "newer than")
        for bad_default in ({"tolerance": "x"}, {"metric": "speed"}):
            path = self.write_thresholds(bad_default)
            with self.assertRaises(KbenchError):
                load_thresholds(path)
        path = self.write_thresholds({}, rules=[{"match": "("}])
        with self.assertRaises(KbenchError):
            load_thresholds(path)

    def test_repository_thresholds_file_is_valid(self):
        thresholds = load_thresholds(os.path.join(fx.ROOT, "results", "thresholds.json"))
        self.assertEqual(thresholds["version"], 1)

    def test_new_missing_and_other_machine(self):
        grown = self.doc("grown.json", repetitions=5, speeds={"std_mutex": 40e6,
                                                              "kprim_ticket": 50e6})
        proc = self.gate(self.base5, grown)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(2)), "MISSING")
        self.assertEqual(verdict_of(proc.stdout, QSPIN.replace("qspinlock", "ticket")
                                    .format(2)), "NEW")
        self.assertEqual(proc.returncode, 0)
        other = self.doc("other.json", ctx=fx.context(fingerprint="ffff0000"), repetitions=5)
        proc = self.gate(self.base5, other)
        self.assertIn("different machines", proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.replace("kprim_qspinlock", "std_mutex")
                                    .format(2)), "SKIPPED", "the reference has no ratio")
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(2)), "SAME")

    def test_abandoned_trials_fail_the_gate(self):
        benches = fx.benchmarks(repetitions=5)
        for entry in benches:
            if entry["name"].startswith(QSPIN.format(2) + "/") and \
                    entry["run_type"] == "iteration":
                entry["abandoned"] = 1
        broken = fx.write(self.dir, "abandoned.json", fx.document(benches=benches))
        proc = self.gate(self.base5, broken)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(2)), "NO_DATA")
        self.assertEqual(self.gate(broken, self.base5).returncode, 0, "baseline without data")
        proc = fx.cli("compare", self.base5, broken)
        self.assertIn("no valid trial in B", proc.stdout)

    def test_report_file_and_bad_input(self):
        report = os.path.join(self.dir, "comment.md")
        proc = self.gate(self.base5, self.base5, "--report", report)
        self.assertEqual(proc.returncode, 0)
        with open(report, encoding="utf-8") as handle:
            self.assertTrue(handle.read().startswith("## kbench gate: PASS"))
        self.assertOneLineError(self.gate(self.base5, os.path.join(self.dir, "no.json")),
                                "cannot read")
        self.assertOneLineError(fx.cli("gate", "--baseline", self.base5), "--current")
        broken = os.path.join(self.dir, "broken.json")
        with open(broken, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(fx.document())[:100])
        self.assertOneLineError(self.gate(self.base5, broken), "truncated")


if __name__ == "__main__":
    unittest.main()
