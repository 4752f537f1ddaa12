"""Tests of ``kbench_results.py aa``: the A/A control table and the gate's noise floor."""

import json
import os
import tempfile
import unittest

from kprim_tools import aa
from kprim_tools.thresholds import load_thresholds, settings_for
from kprim_tools.results import load
from tests import fixtures as fx

TWIN2 = "locks/contended/kprim_qspinlock_aa/threads:2/"


class AaTest(unittest.TestCase, fx.ErrorAssertions):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.doc = fx.schema2_document(seed=4)
        self.path = fx.write(self.dir, "run.json", self.doc)

    def tearDown(self):
        self.tmp.cleanup()

    def test_pairs_and_table(self):
        results = load(self.path)
        pairs = aa.pairs(results.cases())
        self.assertEqual(len(pairs), 4, "contended threads 1, 2, 4 and uncontended threads 1")
        self.assertTrue(all(t.name.contender == "kprim_qspinlock_aa" for _, t in pairs))
        thresholds = load_thresholds(os.path.join(fx.ROOT, "results", "thresholds.json"))
        table = aa.table_rows(aa.pair_rows(results, 0.05,
                                           lambda base: settings_for(thresholds, base)[0]))
        self.assertEqual([(r["family"], r["threads"], r["pairs"]) for r in table],
                         [("locks", 1, 2), ("locks", 2, 1), ("locks", 4, 1)])
        self.assertEqual({r["verdict"] for r in table}, {"SAME"})
        floor = aa.noise_floor(results)
        self.assertLess(floor[("locks", 1)], floor[("locks", 2)])
        self.assertLess(floor[("locks", 2)], floor[("locks", 4)], "noisier at more threads")

    def test_cli_table(self):
        proc = fx.cli("aa", self.path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("family  threads  pairs  A/A change  resolvable  verdict", proc.stdout)
        self.assertRegex(proc.stdout, r"locks \(kprim_qspinlock\): differences under "
                                      r"[0-9.]+% at threads:2 are noise here")

    def test_unequal_pair_cannot_resolve(self):
        path = fx.write(self.dir, "skewed.json", fx.scaled(self.doc, {TWIN2: 0.7}))
        proc = fx.cli("aa", path, "--format", "markdown")
        self.assertEqual(proc.returncode, 0, "aa reports, it does not gate")
        self.assertIn("| locks | 2 | 1 | -30% |", proc.stdout)
        self.assertIn("CANNOT_RESOLVE", proc.stdout)
        self.assertIn("cannot resolve differences of that size at threads:2", proc.stdout)
        floor = aa.noise_floor(load(path))[("locks", 2)]
        self.assertLess(floor, 0.2, "the floor is the spread, not the pair's offset")

    def test_bimodal_pair_is_resolved_within_regimes(self):
        # Identical code in two regimes (22 and 13 Mops/s, shares drawn per trial): the floor
        # is the spread within the regimes (about 1%), not the spread across them (the plain
        # pairwise interval reaches tens of percent).
        a = [22.0e6, 13.1e6, 13.0e6, 22.2e6, 13.2e6]
        b = [13.1e6, 21.9e6, 22.1e6, 12.9e6, 22.0e6]
        from kprim_tools.stats import point_noise
        self.assertGreater(point_noise(a, b, 0.05), 0.3)
        self.assertLess(aa.resolvable(a, b, 0.05), 0.03)
        # Unimodal samples: the plain interval, as before.
        c, d = [10.0, 10.2, 9.9, 10.1, 10.0], [10.1, 9.8, 10.0, 10.2, 10.1]
        self.assertAlmostEqual(aa.resolvable(c, d, 0.05), point_noise(c, d, 0.05))

    def test_json(self):
        proc = fx.cli("aa", self.path, "--format", "json")
        doc = json.loads(proc.stdout, parse_constant=lambda c: self.fail(f"non-strict {c}"))
        self.assertEqual(doc["tool"], "kbench aa")
        self.assertEqual(len(doc["pairs"]), 4)

    def test_no_pairs_and_bad_input(self):
        plain = fx.write(self.dir, "plain.json", fx.document())
        proc = fx.cli("aa", plain)
        self.assertEqual(proc.returncode, 0)
        self.assertIn("has no A/A pair", proc.stdout)
        self.assertOneLineError(fx.cli("aa", os.path.join(self.dir, "none.json")),
                                "cannot read")
        self.assertOneLineError(fx.cli("aa", self.path, "--alpha", "x"), "--alpha")
        self.assertOneLineError(fx.cli("aa", self.path, "--format", "xml"), "--format")
        self.assertOneLineError(fx.cli("aa"), "file")

    def test_reference_run_has_no_pairs(self):
        ref = os.path.join(fx.ROOT, "results", "amd-epyc-2c-fd2d0313",
                           "20261125T164140Z-2e9c04d554aa.json")
        self.assertEqual(aa.pair_rows(load(ref)), [])


class PooledFloorTest(unittest.TestCase):
    """pooled_noise_floor: the gate's paired re-runs' A/A floor over their pooled repetitions."""

    def test_one_run_is_noise_floor_and_pooling_runs_narrows_it(self):
        import tempfile
        from kprim_tools import results
        from kprim_tools.aa import noise_floor, pooled_noise_floor
        with tempfile.TemporaryDirectory() as d:
            runs = [results.load(fx.write(d, f"r{s}.json", fx.schema2_document(seed=s)))
                    for s in range(2, 6)]
        self.assertEqual(pooled_noise_floor([runs[0].cases()]), noise_floor(runs[0]))
        pooled = pooled_noise_floor([r.cases() for r in runs])
        self.assertEqual(set(pooled), set(noise_floor(runs[0])))
        for key, floor in pooled.items():
            # 20+20 repetitions of identical code resolve finer than any one run's 5+5
            self.assertLess(floor, min(noise_floor(r)[key] for r in runs), key)
        self.assertEqual(pooled_noise_floor([]), {})


if __name__ == "__main__":
    unittest.main()
