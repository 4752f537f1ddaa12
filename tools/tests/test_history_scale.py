"""History over 365 synthetic nightly runs (tests/history_scale.py) with one injected step.

A reduced copy for ctest: every run holds the real file's qspinlock and std_mutex contended
benchmarks only (the full 1,849-benchmark measurement is ``python3 -m tests.history_scale``).
The step must be found at the run it was injected in, and nothing else anywhere.
"""

import os
import tempfile
import unittest

from kprim_tools import history
from kprim_tools.store import open_store
from tests import history_scale as scale

RUNS, STEP_RUN = 365, 200


class HistoryScaleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "results")
        cls.paths = scale.make_runs(cls.dir, RUNS, step_run=STEP_RUN,
                                    keep=r"^locks/contended/(kprim_qspinlock|std_mutex)/")
        cls.store = open_store(os.path.join(cls.tmp.name, "store.sqlite"))
        cls.synced = history.sync(cls.store, cls.dir)
        cls.entries = history.analyse_store(cls.store)

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        cls.tmp.cleanup()

    def test_every_run_ingested_once(self):
        self.assertEqual(self.synced, (RUNS, RUNS))
        self.assertEqual(history.sync(self.store, self.dir), (RUNS, 0))
        self.assertEqual(self.store.counts()["runs"], RUNS)

    def test_only_the_injected_step_is_found(self):
        self.assertGreater(len(self.entries), 20)
        self.assertTrue(all(e["runs"] == RUNS for e in self.entries))
        flagged = [e for e in self.entries if e["change_points"]]
        self.assertEqual([e["benchmark"] for e in flagged], [scale.STEP])
        (cp,) = flagged[0]["change_points"]
        self.assertEqual(cp["index"], STEP_RUN)
        self.assertEqual(cp["sha"], scale.sha_of(STEP_RUN))
        self.assertEqual(cp["direction"], "down")
        self.assertAlmostEqual(cp["change"], -0.3, delta=0.04)

    def test_series_of_the_step(self):
        series = self.store.series("c0ab8b9168bf0df3", scale.STEP)
        self.assertEqual(len(series), RUNS)
        before = sorted(v for _, v in series[:STEP_RUN])
        after = sorted(v for _, v in series[STEP_RUN:])
        self.assertLess(after[-1], before[0], "every run after the step is slower")


if __name__ == "__main__":
    unittest.main()
