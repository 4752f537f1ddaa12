"""Tests of ``kbench gate``: verdicts, exit status, thresholds, bounded re-runs, report."""

import json
import os
import re
import shlex
import tempfile
import unittest

from kprim_tools import KbenchError
from kprim_tools.thresholds import load_thresholds, settings_for
from tests import fixtures as fx

QSPIN = "locks/contended/kprim_qspinlock/threads:{}/cs:1/gap:0"


def cells_of(report, benchmark):
    """The cells of ``benchmark``'s row in a Markdown gate report (``None`` when absent)."""
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[1] == benchmark:
            return cells
    return None


def verdict_of(report, benchmark):
    """The verdict cell of ``benchmark``'s row in a Markdown gate report."""
    cells = cells_of(report, benchmark)
    return cells[0] if cells else None


def why_of(report, benchmark):
    """The ``why`` cell (the last) of ``benchmark``'s row."""
    cells = cells_of(report, benchmark)
    return cells[-1] if cells else None


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
        self.assertEqual(proc.returncode, 1, "an UNKNOWN left fails the gate")
        self.assertIn("undecided, no re-run (give --rerun CMD)", why_of(proc.stdout,
                                                                        QSPIN.format(1)))
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
        self.assertNotIn("std_mutex", filters[0], "same machine: absolute, no reference")

    def test_reruns_are_bounded(self):
        base3 = self.doc("base3.json", repetitions=3)
        cur3 = self.doc("cur3.json", repetitions=3, slow={"kprim_qspinlock": 0.7},
                        wobble_offset=5)
        useless = self.doc("useless.json", speeds={"std_mutex": 40e6})
        count = os.path.join(self.dir, "count")
        rerun = f"echo x >> {shlex.quote(count)}; cp {useless} {{out}}"
        proc = self.gate(base3, cur3, "--rerun", rerun, "--max-reruns", "3")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(1)), "UNKNOWN")
        self.assertIn("undecided after 3 re-run(s)", why_of(proc.stdout, QSPIN.format(1)))
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

    def test_informational_unknown_does_not_fail(self):
        self.thresholds = self.write_thresholds({"tolerance": 0.10}, version=2, rules=[
            {"match": "kprim_qspinlock/", "informational": True}])
        base3 = self.doc("base3.json", repetitions=3)
        cur3 = self.doc("cur3.json", repetitions=3, slow={"kprim_qspinlock": 0.7},
                        wobble_offset=5)
        proc = self.gate(base3, cur3)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QSPIN.format(1)), "UNKNOWN")
        self.assertIn("informational: does not fail the gate", why_of(proc.stdout,
                                                                      QSPIN.format(1)))
        self.assertEqual(self.gate(base3, cur3, "--strict").returncode, 1,
                         "--strict counts informational points")
        count = os.path.join(self.dir, "count")
        rerun = f"echo x >> {shlex.quote(count)}; cp {cur3} {{out}}"
        proc = self.gate(base3, cur3, "--rerun", rerun)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertFalse(os.path.exists(count), "informational points are not re-run")
        self.assertIn("not re-run (informational)", why_of(proc.stdout, QSPIN.format(1)))

    def test_version_1_thresholds_still_read(self):
        self.thresholds = self.write_thresholds({"tolerance": 0.10}, version=1)
        slowed = self.doc("slowed.json", repetitions=5, slow={"kprim_qspinlock": 0.7})
        self.assertEqual(self.gate(self.base5, slowed).returncode, 1)

    def test_why_column(self):
        slowed = self.doc("slowed.json", repetitions=5, slow={"kprim_qspinlock": 0.7},
                          wobble_offset=1)
        proc = self.gate(self.base5, slowed)
        self.assertIn("| verdict | benchmark | figure | baseline | current | change | p | why |",
                      proc.stdout)
        self.assertRegex(why_of(proc.stdout, QSPIN.format(2)), r"^-30% beyond ±10%, p=0\.\d+")
        self.assertEqual(why_of(proc.stdout, QSPIN.replace("kprim_qspinlock", "nolock")
                                .format(2)).split(" ")[1:], ["within", "±10%"])

    def test_injected_runs(self):
        injected = self.doc("injected.json", ctx=fx.context(kprim_inject="qspinlock:200"),
                            repetitions=5, slow={"kprim_qspinlock": 0.7})
        self.assertOneLineError(self.gate(injected, self.base5), "INJECTED",
                                "gate against a normal run")
        proc = self.gate(self.base5, injected)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("INJECTED", proc.stdout.splitlines()[0])
        self.assertIn("**INJECTED** run (kprim_inject `qspinlock:200`)", proc.stdout)
        proc = fx.cli("compare", self.base5, injected)
        self.assertIn("INJECTED (kprim_inject qspinlock:200)", proc.stdout)

    def test_same_machine_gates_absolute_throughput(self):
        slowed = self.doc("slowed.json", repetitions=5, slow={"kprim_qspinlock": 0.7,
                                                              "std_mutex": 0.7})
        proc = self.gate(self.base5, slowed)
        cells = cells_of(proc.stdout, QSPIN.format(2))
        self.assertEqual((cells[0], cells[2]), ("SLOWER", "ops_per_s"),
                         "a ratio to std_mutex would call this SAME")
        other = self.doc("other.json", ctx=fx.context(fingerprint="ffff0000"), repetitions=5,
                         slow={"kprim_qspinlock": 0.7, "std_mutex": 0.7})
        cells = cells_of(self.gate(self.base5, other).stdout, QSPIN.format(2))
        self.assertEqual((cells[0], cells[2]), ("SAME", "ratio_to_std_mutex"))

    def test_settings_first_rule_wins(self):
        path = self.write_thresholds({"tolerance": 0.1}, rules=[
            {"match": "a", "tolerance": 0.2}, {"match": "ab", "tolerance": 0.3}])
        thresholds = load_thresholds(path)
        self.assertEqual(settings_for(thresholds, "xab")[0], 0.2)
        self.assertEqual(settings_for(thresholds, "zzz")[0], 0.1)

    def test_bad_thresholds(self):
        self.thresholds = self.write_thresholds({"tolerance": 0.1}, version=3)
        self.assertOneLineError(self.gate(self.base5, self.base5), "newer than")
        self.thresholds = self.write_thresholds({"tolerance": 0.1, "informational": "yes"},
                                                version=2)
        self.assertOneLineError(self.gate(self.base5, self.base5),
                                "default.informational must be true/false")
        self.thresholds = self.write_thresholds({"tolerance": 0.1}, version=2,
                                                rules=[{"match": "x", "remeasure": 1}])
        self.assertOneLineError(self.gate(self.base5, self.base5),
                                "rules[0].remeasure must be true/false")
        for bad_default in ({"tolerance": "x"}, {"metric": "speed"}):
            path = self.write_thresholds(bad_default)
            with self.assertRaises(KbenchError):
                load_thresholds(path)
        path = self.write_thresholds({}, rules=[{"match": "("}])
        with self.assertRaises(KbenchError):
            load_thresholds(path)

    def test_repository_thresholds_file_is_valid(self):
        thresholds = load_thresholds(os.path.join(fx.ROOT, "results", "thresholds.json"))
        self.assertEqual(thresholds["version"], 2)
        self.assertTrue(any(rule.get("informational") for _, rule in thresholds["rules"]))

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


QS2 = "locks/contended/kprim_qspinlock/threads:2/cs:0/gap:0/locks:1"
QS1 = "locks/uncontended/kprim_qspinlock/threads:1/cs:0/gap:0/locks:per_thread"
MUTEX2 = "locks/contended/std_mutex/threads:2/cs:0/gap:0/locks:1"


class Schema2GateTest(unittest.TestCase, fx.ErrorAssertions):
    """The gate with the repository's thresholds on interleaved schema-2 files (seeded noise,
    no aggregates, ``kprim_threads``, an A/A pair ``kprim_qspinlock``/``kprim_qspinlock_aa``)."""

    THRESHOLDS = os.path.join(fx.ROOT, "results", "thresholds.json")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.base_doc = fx.schema2_document(seed=1)
        self.base = fx.write(self.dir, "base.json", self.base_doc)

    def tearDown(self):
        self.tmp.cleanup()

    def gate(self, current, *extra, baseline=None):
        return fx.cli("gate", "--baseline", baseline or self.base, "--current", current,
                      "--thresholds", self.THRESHOLDS, *extra)

    def gate_here(self, current, baseline=None):
        """The gate's command line run in this process (no interpreter start-up per call);
        returns an object with ``returncode`` and ``stdout`` like :meth:`gate`."""
        import contextlib
        import io
        import types
        from kprim_tools import cli
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = cli.main(["gate", "--baseline", baseline or self.base, "--current",
                               current, "--thresholds", self.THRESHOLDS])
        return types.SimpleNamespace(returncode=status, stdout=out.getvalue())

    def not_same(self, report):
        """``{benchmark: verdict}`` of every row that is not SAME."""
        out = {}
        for line in report.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 8 and cells[0] not in ("verdict", ":---", "SAME"):
                out[cells[1]] = cells[0]
        return out

    def test_twenty_percent_slower_point(self):
        current = fx.write(self.dir, "slow.json", fx.scaled(self.base_doc, {QS2 + "/": 0.8}))
        proc = self.gate(current)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(self.not_same(proc.stdout), {QS2: "SLOWER"})
        self.assertRegex(why_of(proc.stdout, QS2), r"^-20% beyond ±1[0-9]%")

    def test_aa_twin_alone_never_fails_the_gate(self):
        # Only the A/A twin slower (its stem, the same code, unchanged): the twin is the noise
        # control, reported with its verdict and why, and the stem's row is what gates; with
        # --strict it counts like any informational row.
        twin2 = QS2.replace("/kprim_qspinlock/", "/kprim_qspinlock_aa/")
        current = fx.write(self.dir, "twin.json", fx.scaled(self.base_doc, {twin2 + "/": 0.8}))
        proc = self.gate(current)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(self.not_same(proc.stdout), {twin2: "SLOWER"})
        self.assertIn("A/A twin of locks/contended/kprim_qspinlock/threads:2",
                      why_of(proc.stdout, twin2))
        self.assertIn("does not fail the gate", why_of(proc.stdout, twin2))
        self.assertEqual(self.gate(current, "--strict").returncode, 1)
        # A slowdown of the code slows stem and twin: the stem's row fails the gate.
        both = fx.write(self.dir, "both.json",
                        fx.scaled(self.base_doc, {QS2 + "/": 0.8, twin2 + "/": 0.8}))
        proc = self.gate(both)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QS2), "SLOWER", proc.stdout)

    def test_unknown_that_rules_out_a_slowdown_passes(self):
        # +4% on the uncontended point (band ±5%) is significant with an interval
        # (+2.1%..+6.0%) reaching past the band on the faster side only: UNKNOWN, and it cannot
        # be a slowdown beyond the band, so it does not fail the gate (--strict: it does). The
        # mirror image, -4%, could be a slowdown beyond the band: it fails.
        faster = fx.write(self.dir, "up4.json", fx.scaled(self.base_doc, {QS1 + "/": 1.04}))
        proc = self.gate_here(faster)
        self.assertEqual(verdict_of(proc.stdout, QS1), "UNKNOWN", proc.stdout)
        self.assertIn("rules out a slowdown", why_of(proc.stdout, QS1))
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(self.gate(faster, "--strict").returncode, 1)
        slower = fx.write(self.dir, "down4.json", fx.scaled(self.base_doc, {QS1 + "/": 0.96}))
        proc = self.gate_here(slower)
        self.assertEqual(verdict_of(proc.stdout, QS1), "UNKNOWN", proc.stdout)
        self.assertNotIn("rules out a slowdown", why_of(proc.stdout, QS1))
        self.assertEqual(proc.returncode, 1, proc.stdout)

    def test_unknown_at_the_band_edge_is_judged_by_its_one_sided_bound(self):
        # -3.5% on the uncontended point (band ±5%): significant, UNKNOWN, its 95% interval
        # -5.3%..-1.7% reaching just past the band's slower edge, its 90% interval's low end
        # -4.6% not: "no slowdown beyond the band" holds at level alpha (one-sided), so the
        # point does not fail the gate (--strict: it does). Tested on the 95% interval's end,
        # the claim would be tested at alpha / 2 and this unchanged-looking point would fail
        # (an unchanged gate's alarm: -2.3% within ±5%, interval -5.2%..-0.5%).
        edge = fx.write(self.dir, "down35.json", fx.scaled(self.base_doc, {QS1 + "/": 0.965}))
        proc = self.gate_here(edge)
        self.assertEqual(verdict_of(proc.stdout, QS1), "UNKNOWN", proc.stdout)
        why = why_of(proc.stdout, QS1)
        self.assertIn("interval -5.3%..-1.7%", why)
        self.assertIn("its one-sided 95% bound (-4.6%) rules out a slowdown", why)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(self.gate(edge, "--strict").returncode, 1)

    def test_rules_out_slowdown_reads_the_metric_direction(self):
        from kprim_tools.compare import INSTRUCTIONS, absolute
        from kprim_tools.gate import rules_out_slowdown
        up = {"low": 0.02, "high": 0.11, "bound": 0.10}
        down = {"low": -0.11, "high": -0.02, "bound": 0.10}
        self.assertTrue(rules_out_slowdown(absolute(), up))      # ops/s up: not slower
        self.assertFalse(rules_out_slowdown(absolute(), down))
        self.assertTrue(rules_out_slowdown(INSTRUCTIONS, down))  # instructions down: faster
        self.assertFalse(rules_out_slowdown(INSTRUCTIONS, up))
        self.assertFalse(rules_out_slowdown(absolute(), {"low": None, "high": 0.1, "bound": 0.1}))

    def test_ten_percent_slower_quiet_point(self):
        current = fx.write(self.dir, "slow.json", fx.scaled(self.base_doc, {QS1 + "/": 0.9}))
        proc = self.gate(current)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(self.not_same(proc.stdout), {QS1: "SLOWER"})

    def test_resampled_copy_passes(self):
        for seed in range(5):
            current = fx.write(self.dir, f"boot{seed}.json", fx.resampled(self.base_doc, seed))
            proc = self.gate_here(current)
            self.assertEqual(proc.returncode, 0, proc.stdout)

    def test_unchanged_reruns_pass(self):
        for seed in range(2, 12):
            current = fx.write(self.dir, f"again{seed}.json", fx.schema2_document(seed=seed))
            proc = self.gate_here(current)
            bad = {k: v for k, v in self.not_same(proc.stdout).items()
                   if "threads:4" not in k}
            self.assertEqual((proc.returncode, bad), (0, {}), proc.stdout)

    def test_fresh_slowdown_is_caught(self):
        for seed in range(2, 7):
            doc = fx.scaled(fx.schema2_document(seed=seed), {QS2 + "/": 0.8, QS1 + "/": 0.9})
            proc = self.gate_here(fx.write(self.dir, f"slow{seed}.json", doc))
            self.assertEqual(proc.returncode, 1, proc.stdout)
            found = self.not_same(proc.stdout)
            self.assertEqual((found.get(QS2), found.get(QS1)), ("SLOWER", "SLOWER"),
                             proc.stdout)

    def test_bimodal_point_with_the_same_mix(self):
        mix = {fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1"):
               (130e6, 23e6, 0.5)}
        base = fx.write(self.dir, "bi-base.json", fx.schema2_document(seed=1, bimodal=mix))
        for seed in range(2, 12):
            current = fx.write(self.dir, f"bi{seed}.json",
                               fx.schema2_document(seed=seed, bimodal=mix))
            proc = self.gate_here(current, baseline=base)
            cells = cells_of(proc.stdout, MUTEX2)
            self.assertNotEqual(cells[0], "SLOWER", proc.stdout)
            self.assertIn("bimodal", " ".join(cells[3:5] + [cells[-1]]), cells)

    def test_aa_noise_is_the_floor(self):
        proc = self.gate(self.base)
        self.assertIn("A/A noise, the smaller of the two runs' (floor of SAME): locks threads:1 ",
                      proc.stdout)
        noisy = fx.schema2_document(seed=3, sigma={2: 0.15})
        current = fx.write(self.dir, "noisy.json", noisy)
        # The floor is the smaller of the two runs': a noisy current run alone does not widen it.
        alone = self.gate(current).stdout
        line = [ln for ln in alone.splitlines() if ln.startswith("- A/A noise")][0]
        self.assertLess(float(re.search(r"locks threads:2 ([0-9.]+)%", line)[1]) / 100, 0.10)
        noisy_base = fx.write(self.dir, "noisy-base.json",
                              fx.schema2_document(seed=4, sigma={2: 0.15}))
        report = self.gate(current, baseline=noisy_base).stdout
        line = [ln for ln in report.splitlines() if ln.startswith("- A/A noise")][0]
        floor2 = float(re.search(r"locks threads:2 ([0-9.]+)%", line)[1]) / 100
        self.assertGreater(floor2, 0.10)
        band = float(re.search(r"within ±(\d+)% \(A/A noise; tolerance ±10%\)",
                               why_of(report, MUTEX2))[1]) / 100
        self.assertGreaterEqual(band, round(floor2, 2))

    def test_point_noise_never_widens_the_band(self):
        # A noisy point whose change lies beyond the band but is not significant is UNKNOWN
        # (re-measured, then failing if still undecided), never SAME: its own noise is named.
        noisy = {fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1"): 0.2}
        base = fx.write(self.dir, "pn-base.json", noisy_point(fx.schema2_document(seed=1), noisy,
                                                              seed=1))
        current = fx.write(self.dir, "pn-cur.json", noisy_point(fx.schema2_document(seed=2),
                                                                noisy, seed=2))
        proc = self.gate(current, baseline=base)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(cells_of(proc.stdout, MUTEX2)[0], "UNKNOWN", proc.stdout)
        self.assertIn("the point's own noise is ±", why_of(proc.stdout, MUTEX2))
        self.assertIn("undecided, no re-run", why_of(proc.stdout, MUTEX2))

    def test_slower_is_confirmed_by_reruns(self):
        slow_doc = fx.scaled(self.base_doc, {QS2 + "/": 0.8})
        slow = fx.write(self.dir, "slow.json", slow_doc)
        again = fx.write(self.dir, "again.json", fx.schema2_document(seed=5))
        proc = self.gate(slow, "--rerun", f"cp {shlex.quote(slow)} {{out}}")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(self.not_same(proc.stdout), {QS2: "SLOWER"})
        self.assertIn("confirmed with 1 re-run(s) pooled", why_of(proc.stdout, QS2))
        proc = self.gate(slow, "--rerun", f"cp {shlex.quote(again)} {{out}}")
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("SLOWER in the current run alone, not confirmed with 1 re-run(s) pooled",
                      why_of(proc.stdout, QS2))

    def test_paired_reruns_judge_baseline_and_current_measured_together(self):
        # A drifted current run (the whole machine 20% slower at threads:2 after the baseline
        # was taken): pooled re-runs taken in the same drifted state confirm the "slowdown";
        # paired re-runs, baseline and current measured together in that state, clear it.
        drift = {fx.point_name("contended", c, 2, "cs:0/gap:0/locks:1"): 0.8
                 for c in ("kprim_qspinlock", "kprim_qspinlock_aa", "std_mutex")}
        drifted = fx.write(self.dir, "drift.json", fx.scaled(fx.schema2_document(seed=6), drift))
        base_now = fx.write(self.dir, "base-now.json",
                            fx.scaled(fx.schema2_document(seed=7), drift))
        cur_now = fx.write(self.dir, "cur-now.json", fx.scaled(fx.schema2_document(seed=8), drift))
        log = os.path.join(self.dir, "order.log")
        pooled = self.gate(drifted, "--rerun", f"cp {shlex.quote(cur_now)} {{out}}")
        self.assertEqual(pooled.returncode, 1, pooled.stdout)
        self.assertEqual(verdict_of(pooled.stdout, QS2), "SLOWER", pooled.stdout)
        paired = self.gate(drifted,
                           "--rerun", f"echo current >> {shlex.quote(log)}; cp {shlex.quote(cur_now)} {{out}}",
                           "--rerun-baseline",
                           f"echo baseline >> {shlex.quote(log)}; cp {shlex.quote(base_now)} {{out}}")
        self.assertEqual(paired.returncode, 0, paired.stdout)
        # The A/A twin (the noise control, informational) is judged on the same paired re-runs
        # as its stem: both are cleared, and the report says so for each.
        self.assertNotIn("SLOWER", self.not_same(paired.stdout).values(), paired.stdout)
        twin2 = QS2.replace("/kprim_qspinlock/", "/kprim_qspinlock_aa/")
        for row in (QS2, twin2):
            self.assertIn("not confirmed with 1 paired re-run(s) of baseline and current",
                          why_of(paired.stdout, row))
        with open(log, encoding="utf-8") as handle:
            self.assertEqual(handle.read().split(), ["baseline", "current"])

    def test_paired_reruns_confirm_a_real_slowdown(self):
        slow = fx.write(self.dir, "slow.json", fx.scaled(self.base_doc, {QS2 + "/": 0.8}))
        slow_now = fx.write(self.dir, "slow-now.json",
                            fx.scaled(fx.schema2_document(seed=9), {QS2 + "/": 0.8}))
        base_now = fx.write(self.dir, "base-now.json", fx.schema2_document(seed=10))
        proc = self.gate(slow, "--rerun", f"cp {shlex.quote(slow_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}")
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(self.not_same(proc.stdout), {QS2: "SLOWER"})
        # The first paired re-run's interval reaches into the band; the second confirms it.
        self.assertIn("confirmed with 2 paired re-run(s) of baseline and current",
                      why_of(proc.stdout, QS2))

    def test_paired_reruns_remeasure_a_slowdown_hidden_by_a_wide_floor(self):
        # Both first runs noisy at threads:2 (a loaded machine): their A/A floor is wider than
        # the 10% tolerance and a -15% point is SAME by it alone. Paired re-runs measure it
        # again (with the A/A pair of its family and thread count, their own floor) and,
        # back to back on a quiet machine, find it SLOWER; without them it stays SAME.
        noisy = {2: 0.15}
        base = fx.write(self.dir, "nb.json", fx.schema2_document(seed=4, sigma=noisy))
        slow = fx.write(self.dir, "ns.json", fx.scaled(fx.schema2_document(seed=3, sigma=noisy),
                                                        {QS2 + "/": 0.85}))
        first = self.gate(slow, baseline=base)
        self.assertEqual(first.returncode, 0, first.stdout)
        self.assertEqual(verdict_of(first.stdout, QS2), "SAME", first.stdout)
        self.assertIn("(A/A noise; tolerance ±10%)", why_of(first.stdout, QS2))
        slow_now = fx.write(self.dir, "slow-now.json",
                            fx.scaled(fx.schema2_document(seed=9), {QS2 + "/": 0.85}))
        base_now = fx.write(self.dir, "base-now.json", fx.schema2_document(seed=10))
        log = os.path.join(self.dir, "filters.log")
        proc = self.gate(slow, "--rerun",
                         f'echo "$KBENCH_GATE_FILTER" >> {shlex.quote(log)}; '
                         f"cp {shlex.quote(slow_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=base)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QS2), "SLOWER", proc.stdout)
        self.assertIn("confirmed with 2 paired re-run(s)", why_of(proc.stdout, QS2))
        self.assertNotIn("(A/A noise; tolerance", why_of(proc.stdout, QS2).split(";")[0])
        with open(log, encoding="utf-8") as handle:
            filters = handle.read().split()
        # The first re-run measures the point with its A/A pair (the re-runs' own floor); it
        # is confirmed once a re-run's interval lies beyond the band (here the second).
        self.assertEqual(len(filters), 2, filters)
        self.assertIn("kprim_qspinlock_aa/threads:2", filters[0].replace("\\", ""))
        # The same re-run of an unchanged current run clears the SAME-by-floor rows it
        # re-measures: no alarm.
        same_now = fx.write(self.dir, "same-now.json", fx.schema2_document(seed=11))
        unchanged = fx.write(self.dir, "nu.json", fx.schema2_document(seed=3, sigma=noisy))
        proc = self.gate(unchanged, "--rerun", f"cp {shlex.quote(same_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=base)
        self.assertEqual(proc.returncode, 0, proc.stdout)

    def test_paired_reruns_remeasure_a_same_point_whose_interval_reaches_a_slowdown(self):
        # A 10% slowdown at threads:1 (tolerance 5%) whose current run was drawn in a faster
        # machine state than its baseline reads -3.1%: SAME, but its interval does not rule
        # out a 5% slowdown. Paired re-runs measure it again back to back and find it
        # SLOWER; an unchanged point re-measured the same way stays SAME (no alarm).
        quiet = {1: 0.02}
        base = fx.write(self.dir, "ob.json", fx.schema2_document(seed=1, sigma=quiet))
        masked = fx.write(self.dir, "os.json", fx.scaled(
            fx.schema2_document(seed=3, sigma=quiet), {QS1 + "/": 0.97}))
        first = self.gate(masked, baseline=base)
        self.assertEqual((first.returncode, verdict_of(first.stdout, QS1)), (0, "SAME"),
                         first.stdout)
        slow_now = fx.write(self.dir, "slow-now.json",
                            fx.scaled(fx.schema2_document(seed=9), {QS1 + "/": 0.9}))
        base_now = fx.write(self.dir, "base-now.json", fx.schema2_document(seed=10))
        proc = self.gate(masked, "--rerun", f"cp {shlex.quote(slow_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=base)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(self.not_same(proc.stdout), {QS1: "SLOWER"})
        self.assertIn("confirmed with 1 paired re-run(s)", why_of(proc.stdout, QS1))
        same_now = fx.write(self.dir, "same-now.json", fx.schema2_document(seed=11))
        proc = self.gate(masked, "--rerun", f"cp {shlex.quote(same_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=base)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QS1), "SAME", proc.stdout)
        self.assertIn("SAME in the first runs with an interval reaching a slowdown beyond the "
                      "tolerance", why_of(proc.stdout, QS1))
        # Pooled re-runs (no baseline command) leave a SAME row alone, as before.
        self.assertEqual(self.gate(masked, "--rerun", f"cp {shlex.quote(slow_now)} {{out}}",
                                   baseline=base).returncode, 0)

    def paired(self, current, now, baseline, log=None):
        """The gate of ``current`` against ``baseline`` whose paired re-runs read results file
        ``now`` (current side) and a fresh unchanged baseline; with ``log`` each current-side
        re-run appends its filter there (one line per re-run)."""
        base_now = fx.write(self.dir, "base-now.json", fx.schema2_document(seed=10))
        note = f'echo "$KBENCH_GATE_FILTER" >> {shlex.quote(log)}; ' if log else ""
        return self.gate(current, "--rerun", f"{note}cp {shlex.quote(now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=baseline)

    def reruns_logged(self, log):
        """How many re-runs wrote to ``log`` (0 when none did); removes it."""
        if not os.path.exists(log):
            return 0
        with open(log, encoding="utf-8") as handle:
            count = len(handle.read().split())
        os.remove(log)
        return count

    def test_paired_reruns_remeasure_once_a_same_point_leaning_towards_a_slowdown(self):
        # A 20% slowdown at contended threads:2 (tolerance 10%) whose baseline was drawn in a
        # slow machine state reads -7% between the first runs: SAME, its interval inside the
        # band, but past half of it towards a slowdown. Paired re-runs measure it once more and
        # find it SLOWER; an unchanged point re-measured the same way stays SAME, says why,
        # and is re-measured once only. (Thresholds without the repository's default
        # remeasure, which would re-measure the point whatever its change.)
        self.THRESHOLDS = self.without_remeasure()
        quiet = {2: 0.01}
        base = fx.write(self.dir, "lb.json", fx.schema2_document(seed=1, sigma=quiet))
        leaning = fx.write(self.dir, "ls.json", fx.scaled(
            fx.schema2_document(seed=3, sigma=quiet), {QS2 + "/": 0.93}))
        first = self.gate(leaning, baseline=base)
        self.assertEqual((first.returncode, verdict_of(first.stdout, QS2)), (0, "SAME"),
                         first.stdout)
        slow_now = fx.write(self.dir, "slow-now.json",
                            fx.scaled(fx.schema2_document(seed=9), {QS2 + "/": 0.8}))
        proc = self.paired(leaning, slow_now, base)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (1, "SLOWER"),
                         proc.stdout)
        same_now = fx.write(self.dir, "same-now.json", fx.schema2_document(seed=11))
        log = os.path.join(self.dir, "lean.log")
        proc = self.paired(leaning, same_now, base, log)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (0, "SAME"),
                         proc.stdout)
        self.assertIn("re-measured (1 paired re-run(s) of baseline and current): SAME in the "
                      "first runs with a change past half the band towards a slowdown",
                      why_of(proc.stdout, QS2))
        self.assertEqual(self.reruns_logged(log), 1)
        # A change inside half the band is not re-measured: the same gate of a -3% point
        # makes no re-run at all.
        near = fx.write(self.dir, "ln.json", fx.scaled(
            fx.schema2_document(seed=3, sigma=quiet), {QS2 + "/": 0.97}))
        proc = self.paired(near, same_now, base, log)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (0, "SAME"),
                         proc.stdout)
        self.assertEqual(self.reruns_logged(log), 0, proc.stdout)

    def without_remeasure(self):
        """A copy of the repository's thresholds file without its ``remeasure`` keys (the
        default's and the rules')."""
        with open(Schema2GateTest.THRESHOLDS, encoding="utf-8") as handle:
            doc = json.load(handle)
        for params in [doc["default"], *doc["rules"]]:
            params.pop("remeasure", None)
        return fx.write(self.dir, "no-remeasure.json", doc)

    def test_paired_reruns_remeasure_once_the_points_a_rule_says_remeasure(self):
        # The repository's thresholds say remeasure by default: with paired re-runs a point
        # SAME in the first runs (change near 0, interval inside the band) is judged on one
        # paired re-run. A 20% slowdown the first runs hid (a baseline drawn in a slow
        # machine state) is SLOWER on it; an unchanged point stays SAME and says why it was
        # re-measured. The same gate without remeasure makes no re-run.
        quiet = {2: 0.01}
        base = fx.write(self.dir, "rb.json", fx.scaled(
            fx.schema2_document(seed=1, sigma=quiet), {QS2 + "/": 0.8}))
        hidden = fx.write(self.dir, "rh.json", fx.scaled(
            fx.schema2_document(seed=3, sigma=quiet), {QS2 + "/": 0.8}))
        first = self.gate(hidden, baseline=base)
        self.assertEqual((first.returncode, verdict_of(first.stdout, QS2)), (0, "SAME"),
                         first.stdout)
        slow_now = fx.write(self.dir, "slow-now.json",
                            fx.scaled(fx.schema2_document(seed=9), {QS2 + "/": 0.8}))
        proc = self.paired(hidden, slow_now, base)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (1, "SLOWER"),
                         proc.stdout)
        same_now = fx.write(self.dir, "same-now.json", fx.schema2_document(seed=11))
        log = os.path.join(self.dir, "rule.log")
        proc = self.paired(hidden, same_now, base, log)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (0, "SAME"),
                         proc.stdout)
        self.assertIn("SAME in the first runs (its thresholds say remeasure",
                      why_of(proc.stdout, QS2))
        self.assertEqual(self.reruns_logged(log), 1)
        self.THRESHOLDS = self.without_remeasure()
        proc = self.paired(hidden, same_now, base, log)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (0, "SAME"),
                         proc.stdout)
        self.assertEqual(self.reruns_logged(log), 0, proc.stdout)

    def test_paired_reruns_keep_measuring_a_slowdown_just_past_the_band(self):
        # An unchanged threads:1 point (tolerance 5%) whose current run and first paired
        # re-run drew a machine state 6% slower: SLOWER, but the re-run's interval reaches
        # into the band, so it is not confirmed; the next paired re-runs, drawn back in the
        # common state, clear it. Bounded at one re-run, it stays SLOWER and says so.
        quiet = {1: 0.02}
        drift = fx.write(self.dir, "drift.json", fx.scaled(
            fx.schema2_document(seed=3, sigma=quiet), {QS1 + "/": 0.94}))
        base_now = fx.write(self.dir, "base-now.json", fx.schema2_document(seed=10, sigma=quiet))
        same_now = fx.write(self.dir, "same-now.json", fx.schema2_document(seed=11, sigma=quiet))
        mark = os.path.join(self.dir, "first-rerun-done")
        current = (f"if [ -e {shlex.quote(mark)} ]; then cp {shlex.quote(same_now)} {{out}}; "
                   f"else touch {shlex.quote(mark)}; cp {shlex.quote(drift)} {{out}}; fi")
        baseline = f"cp {shlex.quote(base_now)} {{out}}"
        once = self.gate(drift, "--rerun", current, "--rerun-baseline", baseline,
                         "--max-reruns", "1")
        self.assertEqual((once.returncode, verdict_of(once.stdout, QS1)), (1, "SLOWER"),
                         once.stdout)
        self.assertIn("SLOWER after 1 paired re-run(s) of baseline and current, its interval "
                      "still reaching into the band", why_of(once.stdout, QS1))
        os.remove(mark)
        proc = self.gate(drift, "--rerun", current, "--rerun-baseline", baseline)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QS1), "SAME", proc.stdout)
        self.assertIn("SLOWER in the current run alone, not confirmed", why_of(proc.stdout, QS1))

    def test_paired_reruns_remeasure_a_same_point_whose_regime_shares_moved(self):
        # A slowdown of a bimodal point that shows as a shift of its regime shares (100%/0%
        # -> 40%/60%, mix -17%) is SAME within regimes, and 5 + 5 repetitions leave the
        # shares' test at p=0.17. Paired re-runs measure it again and find it SLOWER; an
        # unchanged point re-measured the same way comes back SAME and says why it was re-run.
        point = fx.point_name("contended", "kprim_qspinlock", 2, "cs:0/gap:0/locks:1")
        base = fx.write(self.dir, "mb.json", fx.schema2_document(
            seed=1, bimodal={point: (40e6, 30e6, 1.0)}))
        moved = fx.write(self.dir, "mm.json", fx.schema2_document(
            seed=22, bimodal={point: (40e6, 30e6, 0.4)}))
        first = self.gate(moved, baseline=base)
        self.assertEqual((first.returncode, verdict_of(first.stdout, QS2)), (0, "SAME"),
                         first.stdout)
        self.assertIn("shares 100%/0% -> 40%/60%", why_of(first.stdout, QS2))
        slow_now = fx.write(self.dir, "ms.json", fx.schema2_document(
            seed=9, bimodal={point: (40e6, 30e6, 0.0)}))
        base_now = fx.write(self.dir, "mbn.json", fx.schema2_document(
            seed=10, bimodal={point: (40e6, 30e6, 1.0)}))
        same_now = fx.write(self.dir, "msn.json", fx.schema2_document(
            seed=11, bimodal={point: (40e6, 30e6, 1.0)}))
        proc = self.gate(moved, "--rerun", f"cp {shlex.quote(slow_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=base)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (1, "SLOWER"),
                         proc.stdout)
        proc = self.gate(moved, "--rerun", f"cp {shlex.quote(same_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}",
                         baseline=base)
        self.assertEqual((proc.returncode, verdict_of(proc.stdout, QS2)), (0, "SAME"),
                         proc.stdout)
        self.assertIn("SAME in the first runs with regime shares moved by a slowdown beyond "
                      "the tolerance", why_of(proc.stdout, QS2))

    def test_paired_reruns_remeasure_a_faster_point(self):
        # A bimodal point whose first current runs fell in its fast regime reads FASTER
        # although it is slower: paired re-runs measure FASTER rows once and find the
        # slowdown; an unchanged point that read FASTER by chance comes back SAME.
        flipped = fx.write(self.dir, "flip.json", fx.scaled(self.base_doc, {QS2 + "/": 1.4}))
        first = self.gate(flipped)
        self.assertEqual(first.returncode, 0, first.stdout)
        self.assertEqual(verdict_of(first.stdout, QS2), "FASTER", first.stdout)
        slow_now = fx.write(self.dir, "slow-now.json",
                            fx.scaled(fx.schema2_document(seed=9), {QS2 + "/": 0.8}))
        base_now = fx.write(self.dir, "base-now.json", fx.schema2_document(seed=10))
        proc = self.gate(flipped, "--rerun", f"cp {shlex.quote(slow_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}")
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QS2), "SLOWER", proc.stdout)
        self.assertIn("confirmed with 2 paired re-run(s)", why_of(proc.stdout, QS2))
        same_now = fx.write(self.dir, "same-now.json", fx.schema2_document(seed=11))
        proc = self.gate(flipped, "--rerun", f"cp {shlex.quote(same_now)} {{out}}",
                         "--rerun-baseline", f"cp {shlex.quote(base_now)} {{out}}")
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(verdict_of(proc.stdout, QS2), "SAME", proc.stdout)
        self.assertIn("FASTER in the first runs", why_of(proc.stdout, QS2))
        # Pooled re-runs (no baseline command) leave a FASTER row alone, as before.
        pooled = self.gate(flipped, "--rerun", f"cp {shlex.quote(slow_now)} {{out}}")
        self.assertEqual(pooled.returncode, 0, pooled.stdout)

    def test_rerun_baseline_needs_rerun(self):
        proc = self.gate(self.base, "--rerun-baseline", "true")
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stderr.strip().count("\n"), 0, proc.stderr)
        self.assertTrue(proc.stderr.startswith("kbench: "), proc.stderr)
        self.assertIn("--rerun-baseline needs --rerun", proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_reference_file_against_itself(self):
        cut = fx.write(self.dir, "ref-locks.json", reference_subset("locks/contended/"))
        proc = self.gate(cut, baseline=cut)
        self.assertEqual(proc.returncode, 0, proc.stdout[-2000:])
        self.assertEqual(self.not_same(proc.stdout), {})

    def test_reference_file_slowdown_needs_reruns(self):
        doc = reference_subset("locks/contended/")
        cut = fx.write(self.dir, "ref-locks.json", doc)
        point = "locks/contended/kprim_ticket/threads:2/cs:0/gap:0/locks:1"
        slowed = fx.write(self.dir, "ref-slow.json", fx.scaled(doc, {point + "/": 0.5}))
        proc = self.gate(slowed, baseline=cut)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(verdict_of(proc.stdout, point), "UNKNOWN", "3 + 3 repetitions")
        self.assertIn("cannot go below 0.1", why_of(proc.stdout, point))
        proc = self.gate(slowed, "--rerun", f"cp {shlex.quote(slowed)} {{out}}", baseline=cut)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(self.not_same(proc.stdout), {point: "SLOWER"})


def noisy_point(doc, sigmas, seed):
    """``doc`` with the repetitions of each benchmark in ``sigmas`` ({name: sigma}) given
    extra seeded log-normal noise of that sigma (a contender noisier than the A/A control)."""
    import numpy
    rng = numpy.random.default_rng(seed)
    for entry in doc["benchmarks"]:
        if entry["name"] in sigmas:
            factor = float(numpy.exp(rng.normal(0.0, sigmas[entry["name"]])))
            entry["ops_per_s"] *= factor
            entry["real_time"] /= factor
            entry["ns_per_op"] /= factor
            entry["ops"] *= factor
    return doc


def reference_subset(prefix):
    """The reference run's context and its repetition entries whose names start ``prefix``."""
    with open(os.path.join(fx.ROOT, "results", "amd-epyc-2c-fd2d0313",
                           "20261125T164140Z-2e9c04d554aa.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    return {"context": doc["context"],
            "benchmarks": [e for e in doc["benchmarks"] if e["name"].startswith(prefix)
                           and e["run_type"] == "iteration"]}


if __name__ == "__main__":
    unittest.main()
