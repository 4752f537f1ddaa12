"""Tests of ``kbench history``: run discovery, per-machine series, change points, plots."""

import json
import os
import tempfile
import unittest

from kprim_tools import history
from kprim_tools.store import open_store
from tests import fixtures as fx

QSPIN = "locks/contended/kprim_qspinlock/threads:2/cs:1/gap:0/iterations:1/manual_time"
MUTEX = QSPIN.replace("kprim_qspinlock", "std_mutex")


class HistoryTest(unittest.TestCase, fx.ErrorAssertions):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "results")
        machine = os.path.join(self.dir, "testbox-2c-aaaa1111")
        os.makedirs(machine)
        for i in range(8):
            slow = {"kprim_qspinlock": 0.7} if i >= 5 else {}
            fx.write(machine, f"202611{10 + i:02d}T120000Z-sha{i}.json", fx.document(
                ctx=fx.context(sha=f"sha{i}"),
                benches=fx.benchmarks(repetitions=3, slow=slow, threads=(1, 2),
                                      wobble_offset=i)))
        other = os.path.join(self.dir, "bigbox-8c-bbbb2222")
        os.makedirs(other)
        for i in range(2):
            fx.write(other, f"202611{20 + i:02d}T120000Z-big{i}.json", fx.document(
                ctx=fx.context(machine="bigbox-8c-bbbb2222", fingerprint="bbbb", sha=f"big{i}"),
                benches=fx.benchmarks(repetitions=3, threads=(1, 2))))
        fx.write(self.dir, "thresholds.json", {"thresholds_version": 1})

    def tearDown(self):
        self.tmp.cleanup()

    def entries(self, **kwargs):
        with open_store(os.path.join(self.tmp.name, "store.sqlite")) as store:
            self.assertEqual(history.sync(store, self.dir), (10, 10))
            self.assertEqual(history.sync(store, self.dir), (10, 0), "known files not re-read")
            return {(e["benchmark"], e["machine_id"]): e
                    for e in history.analyse_store(store, **kwargs)}

    def test_change_point_at_the_slowing_commit(self):
        entries = self.entries()
        qspin = entries[(QSPIN, "testbox-2c-aaaa1111")]
        self.assertEqual(qspin["runs"], 8)
        self.assertEqual([cp["sha"] for cp in qspin["change_points"]], ["sha5"])
        self.assertEqual(qspin["change_points"][0]["direction"], "down")
        self.assertAlmostEqual(qspin["change"], -0.3, delta=0.05)
        self.assertEqual(entries[(MUTEX, "testbox-2c-aaaa1111")]["change_points"], [])

    def test_machines_are_separate_series(self):
        entries = self.entries()
        self.assertEqual(entries[(QSPIN, "bigbox-8c-bbbb2222")]["runs"], 2)
        self.assertEqual(entries[(QSPIN, "bigbox-8c-bbbb2222")]["change_points"], [])

    def test_cli_table_plots_and_json(self):
        out = os.path.join(self.tmp.name, "plots")
        proc = fx.cli("history", self.dir, "--out", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(os.path.exists(out), "no plots without --plot")
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "kbench.sqlite")))
        proc = fx.cli("history", self.dir, "--plot", "--out", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(os.listdir(out)), [  # only the series with a change point
            "locks_contended_kprim_qspinlock_threads_1_cs_1_gap_0.png",
            "locks_contended_kprim_qspinlock_threads_2_cs_1_gap_0.png"])
        for name in os.listdir(out):
            os.unlink(os.path.join(out, name))
        proc = fx.cli("history", self.dir, "--plot", "--out", out, "--filter", "threads:2/")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        row = next(line for line in proc.stdout.splitlines()
                   if line.startswith("locks/contended/kprim_qspinlock/threads:2")
                   and "testbox" in line)
        self.assertIn("sha5", row)
        self.assertEqual(len(os.listdir(out)), 3)
        self.assertIn("locks_contended_kprim_qspinlock_threads_2_cs_1_gap_0.png",
                      os.listdir(out))
        proc = fx.cli("history", self.dir, "--format", "json", "--no-plots")
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["tool"], "kbench history")
        series = next(s for s in doc["series"] if s["benchmark"] == QSPIN
                      and s["machine_id"] == "testbox-2c-aaaa1111")
        self.assertEqual([p["sha"] for p in series["points"]], [f"sha{i}" for i in range(8)])
        self.assertEqual(series["change_points"][0]["index"], 5)

    def test_bad_file_is_skipped_with_a_warning(self):
        path = os.path.join(self.dir, "testbox-2c-aaaa1111", "20261201T000000Z-bad.json")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("{")
        proc = fx.cli("history", self.dir, "--no-plots")
        self.assertEqual(proc.returncode, 0)
        self.assertEqual([line for line in proc.stderr.splitlines()],
                         [f"kbench: warning: skipping {path}: truncated JSON "
                          "(line 1, column 2: Expecting property name enclosed in double "
                          "quotes)"])

    def test_nothing_to_read(self):
        empty = os.path.join(self.tmp.name, "empty")
        os.makedirs(empty)
        self.assertOneLineError(fx.cli("history", empty), "no results files")
        self.assertOneLineError(fx.cli("history", os.path.join(self.tmp.name, "none")),
                                "not a directory")
        self.assertOneLineError(fx.cli("history", self.dir, "--store", "mysql://x/y"),
                                "unknown scheme")


if __name__ == "__main__":
    unittest.main()
