"""Tests of ``kbench compare``: same machine, different machines, labels and output formats."""

import json
import os
import tempfile
import unittest

from kprim_tools import compare
from kprim_tools.results import load
from tests import fixtures as fx

QSPIN = "locks/contended/kprim_qspinlock/threads:{}/cs:1/gap:0/iterations:1/manual_time"
OTHER = dict(machine="bigbox-8c-bbbb2222", fingerprint="bbbb2222cccc3333", pus=8)


def rows_by(comparison, metric):
    """``{benchmark: row}`` of one metric's table in a comparison."""
    for table in comparison["tables"]:
        if table["metric"] == metric:
            return {row["benchmark"]: row for row in table["rows"]}
    return None


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.base = fx.write(self.dir, "base.json", fx.document(benches=fx.benchmarks(
            repetitions=5)))
        self.slow = fx.write(self.dir, "slow.json", fx.document(benches=fx.benchmarks(
            repetitions=5, slow={"kprim_qspinlock": 0.7}, wobble_offset=2)))
        self.other = fx.write(self.dir, "other.json", fx.document(
            ctx=fx.context(**OTHER),
            benches=fx.benchmarks(repetitions=5, speeds={"std_mutex": 80e6,
                                                         "kprim_qspinlock": 100e6,
                                                         "nolock": 900e6}, scaling=0.9)))

    def tearDown(self):
        self.tmp.cleanup()

    def run_compare(self, *paths, **kwargs):
        return compare.compare_runs([load(p) for p in paths], **kwargs)["comparisons"]

    def test_same_machine_absolute(self):
        (comp,) = self.run_compare(self.base, self.slow)
        self.assertTrue(comp["same_machine"])
        rows = rows_by(comp, "ops_per_s")
        for threads in (1, 2, 4):
            row = rows[QSPIN.format(threads)]
            self.assertEqual(row["verdict"], "SLOWER")
            self.assertAlmostEqual(row["change"], -0.3, delta=0.03)
        others = [r["verdict"] for b, r in rows.items() if "qspinlock" not in b]
        self.assertEqual(set(others), {"SAME"})
        self.assertIsNone(rows_by(comp, "ratio_to_std_mutex"))

    def test_different_machines_use_same_run_figures(self):
        (comp,) = self.run_compare(self.base, self.other)
        self.assertFalse(comp["same_machine"])
        self.assertIsNone(rows_by(comp, "ops_per_s"), "absolute only with --absolute")
        ratios = rows_by(comp, "ratio_to_std_mutex")
        self.assertNotIn(QSPIN.replace("kprim_qspinlock", "std_mutex").format(1), ratios)
        self.assertEqual(ratios[QSPIN.format(1)]["verdict"], "SLOWER")  # 1.5x -> 1.25x
        self.assertAlmostEqual(ratios[QSPIN.format(1)]["a"]["median"], 1.5, delta=0.05)
        scaling = rows_by(comp, "scaling_efficiency")
        self.assertNotIn(QSPIN.format(1), scaling)
        self.assertEqual(scaling[QSPIN.format(4)]["verdict"], "FASTER")
        self.assertIn(QSPIN.format(4), rows_by(comp, "fairness"))

    def test_absolute_across_machines_is_labelled(self):
        report = compare.compare_runs([load(self.base), load(self.other)], absolute=True)
        text = compare.render(report, "table")
        self.assertIn("DIFFERENT machines", text)
        self.assertIn("absolute, DIFFERENT machines", text)
        self.assertIsNotNone(rows_by(report["comparisons"][0], "ops_per_s"))

    def test_reference_is_configurable(self):
        (comp,) = self.run_compare(self.base, self.other, reference="nolock")
        self.assertIsNotNone(rows_by(comp, "ratio_to_nolock"))
        (comp,) = self.run_compare(self.base, self.other, reference="absent_lock")
        self.assertEqual(rows_by(comp, "ratio_to_absent_lock"), {})

    def test_rows_in_one_file_only_are_labelled(self):
        extra = fx.benchmarks(speeds={"kprim_ticket": 50e6}, repetitions=5)
        grown = fx.write(self.dir, "grown.json", fx.document(
            benches=fx.benchmarks(repetitions=5, speeds={"std_mutex": 40e6}) + extra))
        (comp,) = self.run_compare(self.base, grown)
        rows = rows_by(comp, "ops_per_s")
        self.assertEqual(rows[QSPIN.format(2)]["verdict"], compare.ONLY_IN_A)
        self.assertEqual(rows[QSPIN.replace("qspinlock", "ticket").format(2)]["verdict"],
                         compare.ONLY_IN_B)
        self.assertIn("only in A", compare.render({"tolerance": 0.05, "alpha": 0.05,
                                                   "comparisons": [comp]}))

    def test_more_than_two_files_compare_to_the_first(self):
        comps = self.run_compare(self.base, self.slow, self.other)
        self.assertEqual([c["b"]["path"] for c in comps], [self.slow, self.other])

    def test_formats(self):
        report = compare.compare_runs([load(self.base), load(self.slow)], name_filter="qspin")
        data = json.loads(compare.render(report, "json"))
        self.assertEqual(data["format_version"], 1)
        rows = data["comparisons"][0]["tables"][0]["rows"]
        self.assertEqual(len(rows), 3)
        self.assertEqual(set(rows[0]) >= {"benchmark", "metric", "a", "b", "change", "p_value",
                                          "verdict"}, True)
        markdown = compare.render(report, "markdown")
        self.assertIn("| benchmark | A median | B median | change | p | verdict |", markdown)
        self.assertIn("SLOWER", compare.render(report, "table"))

    def test_bimodal_rows_and_why(self):
        mix = {fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1"):
               (130e6, 23e6, 0.5)}
        base = fx.write(self.dir, "bi-a.json", fx.schema2_document(seed=1, bimodal=mix))
        again = fx.write(self.dir, "bi-b.json", fx.schema2_document(seed=3, bimodal=mix))
        report = compare.compare_runs([load(base), load(again)], tolerance=0.10)
        rows = rows_by(report["comparisons"][0], "ops_per_s")
        row = rows[fx.point_name("contended", "std_mutex", 2, "cs:0/gap:0/locks:1")]
        self.assertNotEqual(row["verdict"], "SLOWER")
        self.assertEqual(row["b"]["modes"]["count"], 2)
        self.assertTrue(row["b"]["label"].startswith("bimodal: "))
        self.assertIn("within regimes", row["why"])
        text = compare.render(report, "table")
        self.assertIn("bimodal: 126 (60%) | 22.4 (40%) (n=5)", text)
        header = [ln for ln in text.splitlines() if ln.startswith("benchmark ")][0]
        self.assertEqual(header.split()[-2:], ["verdict", "why"])
        data = json.loads(compare.render(report, "json"))
        self.assertIn("bound", data["comparisons"][0]["tables"][0]["rows"][0])

    def test_aa_noise_of_the_later_run_is_the_floor(self):
        qs2 = fx.point_name("contended", "kprim_qspinlock", 2, "cs:0/gap:0/locks:1")
        base_doc = fx.schema2_document(seed=1)
        base = fx.write(self.dir, "aa-a.json", base_doc)
        slow = fx.write(self.dir, "aa-b.json", fx.scaled(base_doc, {qs2: 0.8}))
        report = compare.compare_runs([load(base), load(slow)], tolerance=0.05)
        row = rows_by(report["comparisons"][0], "ops_per_s")[qs2]
        self.assertEqual(row["verdict"], "SLOWER")
        self.assertGreater(row["bound"], 0.05, "the noise at threads:2 widens the band")
        self.assertRegex(row["why"], r"\((A/A|point) noise; tolerance ±5%\)")

    def test_reference_run_against_a_slowed_copy(self):
        with open(os.path.join(fx.ROOT, "results", "amd-epyc-2c-fd2d0313",
                               "20261125T164140Z-2e9c04d554aa.json"), encoding="utf-8") as handle:
            doc = json.load(handle)
        doc["benchmarks"] = [e for e in doc["benchmarks"]
                             if e["name"].startswith("atomics/contended/")]
        base = fx.write(self.dir, "ref.json", doc)
        point = "atomics/contended/std_store_seq_cst/threads:2/iterations:1/manual_time"
        slow = fx.write(self.dir, "ref-slow.json", fx.scaled(doc, {point: 0.5}))
        rows = rows_by(self.run_compare(base, slow, tolerance=0.10)[0], "ops_per_s")
        self.assertEqual(rows[point]["verdict"], "UNKNOWN", "3 + 3 repetitions cannot decide")
        self.assertEqual({r["verdict"] for b, r in rows.items() if b != point}, {"SAME"})
        bimodal = rows["atomics/contended/kprim_atomic_set/threads:2/iterations:1/manual_time"]
        self.assertEqual(bimodal["a"]["label"], "bimodal: 1712 (67%) | 95.1 (33%)")

    def test_cli(self):
        proc = fx.cli("compare", self.base, self.slow, "--format", "json")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["tool"], "kbench compare")

    def test_cross_machine_chart(self):
        out = os.path.join(self.dir, "cmp")
        proc = fx.cli("compare", self.base, self.other, "--plot", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(os.listdir(out), ["compare_locks_contended_ratio.png"])
        self.assertIn("1 comparison plots", proc.stdout)


if __name__ == "__main__":
    unittest.main()
