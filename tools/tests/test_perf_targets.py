"""Tests of bench/measure/perf_targets.py: the performance targets read from one results file."""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import unittest

from tests import fixtures as fx
from tests.test_results import DEFAULT_RUN_4

SCRIPT = os.path.join(fx.ROOT, "bench", "measure", "perf_targets.py")
MUTEX = "locks/contended/{}/threads:2/cs:0/gap:0/locks:1/iterations:1/manual_time"


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def load_script():
    spec = importlib.util.spec_from_file_location("perf_targets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PerfTargetsTest(unittest.TestCase):
    def test_default_run_gives_every_target_with_its_control(self):
        out = run_script(DEFAULT_RUN_4, "--markdown")
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][1:]
        self.assertEqual(len(rows), 15, out.stdout)
        self.assertNotIn("not in this file", out.stdout)
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertIn(cells[4], ("met", "short", "noise"), row)
            if "fairness" not in cells[0]:
                self.assertRegex(cells[5], r"_aa .* t:\d+: [+-]\d+\.\d%, resolves \d+\.\d%", row)

    def test_mutex_ratio_is_the_ratio_of_the_files_medians(self):
        with open(DEFAULT_RUN_4, encoding="utf-8") as handle:
            doc = json.load(handle)

        def median(contender):
            # schema 4 stores real_time (ns per operation, time_unit ns here), not ops_per_s
            return statistics.median(1e9 / b["real_time"] for b in doc["benchmarks"]
                                     if b["name"] == MUTEX.format(contender)
                                     and b.get("run_type") == "iteration")
        self.assertTrue(all(b["time_unit"] == "ns" for b in doc["benchmarks"]
                            if b["name"].startswith("locks/")))
        ratio = median("kprim_mutex") / median("std_mutex")
        out = run_script(DEFAULT_RUN_4)
        line = next(x for x in out.stdout.splitlines() if x.startswith("kprim_mutex / std_mutex"))
        self.assertIn(f" {ratio:.3g} ", line)
        self.assertIn(">= 1.3", line)

    def test_a_file_without_some_families_says_which_targets_it_lacks(self):
        with open(DEFAULT_RUN_4, encoding="utf-8") as handle:
            doc = json.load(handle)
        doc["benchmarks"] = [b for b in doc["benchmarks"] if b["name"].startswith("locks/")]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "locks-only.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(doc, handle)
            out = run_script(path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.count("not in this file"), 10, out.stdout)
        self.assertIn("kprim_mutex / std_mutex, 2T", out.stdout)
        self.assertIn("kprim_qspinlock Jain fairness, 2T", out.stdout)

    def test_bad_input_is_one_kbench_line_and_exit_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            garbage = os.path.join(tmp, "garbage.json")
            with open(garbage, "w", encoding="utf-8") as handle:
                handle.write("{not json")
            for args in ([], [os.path.join(tmp, "missing.json")], [garbage], ["--bogus"]):
                out = run_script(*args)
                self.assertEqual(out.returncode, 2, args)
                self.assertEqual(out.stdout, "", args)
                lines = out.stderr.splitlines()
                self.assertEqual(len(lines), 1, out.stderr)
                self.assertTrue(lines[0].startswith("kbench: "), lines[0])

    def test_verdict_is_noise_inside_the_control_floor(self):
        module = load_script()
        self.assertEqual(module.verdict(2.0, 1.3, module.AT_LEAST, 0.05), "met")
        self.assertEqual(module.verdict(0.8, 0.5, module.AT_MOST, 0.05), "short")
        self.assertEqual(module.verdict(9.6, 10.0, module.AT_LEAST, 0.05), "noise")
        self.assertEqual(module.verdict(9.6, 10.0, module.AT_LEAST, 0.01), "short")
        self.assertEqual(module.verdict(9.6, 10.0, module.AT_LEAST, None), "short")


if __name__ == "__main__":
    unittest.main()
