"""Tests of ``kbench export``: each tracker's format parsed strictly, its required fields,
the figures (medians and bounds over repetitions) and bad input."""

import csv
import io
import json
import os
import stat
import subprocess
import tempfile
import unittest

from kprim_tools import export
from kprim_tools import results as res
from tests import fixtures as fx
from tests.test_results import NOW, REFERENCE, strict_parse, v2_document

JSON_FORMATS = ("github-action-benchmark", "bencher", "conbench")

#: conbench's MachineCreate schema: every field is required, with these types.
CONBENCH_MACHINE = {
    "name": str, "architecture_name": str, "kernel_name": str, "os_name": str,
    "os_version": str, "cpu_model_name": str, "cpu_l1d_cache_bytes": int,
    "cpu_l1i_cache_bytes": int, "cpu_l2_cache_bytes": int, "cpu_l3_cache_bytes": int,
    "cpu_core_count": int, "cpu_thread_count": int, "cpu_frequency_max_hz": int,
    "memory_bytes": int, "gpu_count": int, "gpu_product_names": list,
}

CONTENDED = "locks/contended/std_mutex/threads:2/cs:0/gap:0/locks:1/iterations:1/manual_time"
HANDOVER = "locks/handover/kprim_qspinlock/threads:2/iterations:1/manual_time"


def number(value):
    """True for a JSON number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ExportFormatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        src = fx.write(cls.tmp.name, "in.json", v2_document())
        cls.path, _ = res.write_run([src], os.path.join(cls.tmp.name, "results"), "", NOW)
        cls.results = res.load(cls.path)
        case = cls.results.cases()[CONTENDED]
        cls.ns = sorted(case.values("ns_per_op"))
        cls.ops = sorted(case.values("ops_per_s"))
        cls.fair = sorted(case.values("fairness"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def export(self, fmt):
        return export.export_text(self.path, fmt)

    def test_github_action_benchmark(self):
        doc = strict_parse(self, self.export("github-action-benchmark"))
        self.assertIsInstance(doc, list)
        for item in doc:
            self.assertIsInstance(item["name"], str)
            self.assertIsInstance(item["unit"], str)
            self.assertTrue(number(item["value"]), item)
            self.assertIsInstance(item.get("range", ""), str)
            self.assertIsInstance(item.get("extra", ""), str)
        names = [item["name"] for item in doc]
        self.assertEqual(len(names), len(set(names)), "names must be unique")
        by_name = {item["name"]: item for item in doc}
        ns = by_name[CONTENDED + " (ns/op)"]
        self.assertEqual(ns["unit"], "ns/op")
        self.assertAlmostEqual(ns["value"], self.ns[2], places=4)
        self.assertIn(f"ops/s: {self.ops[2]:.6g}", ns["extra"])
        self.assertIn(f"fairness: {self.fair[2]:.6g}", ns["extra"])
        self.assertTrue(ns["range"].startswith("± "))
        self.assertIn(CONTENDED + " (p99 acquire latency)", by_name)
        self.assertEqual(by_name[HANDOVER + " (p99 hand-over latency)"]["value"], 900)
        self.assertTrue(all(item["unit"] in ("ns/op", "ns") for item in doc),
                        "customSmallerIsBetter: only smaller-is-better figures are values")

    def test_bencher_metric_format(self):
        doc = strict_parse(self, self.export("bencher"))
        self.assertIsInstance(doc, dict)
        for bench, measures in doc.items():
            self.assertIsInstance(bench, str)
            self.assertIn("latency", measures)
            self.assertIn("throughput", measures)
            for metric in measures.values():
                self.assertTrue(number(metric["value"]))
                self.assertLessEqual(metric["lower_value"], metric["value"])
                self.assertLessEqual(metric["value"], metric["upper_value"])
        point = doc[CONTENDED]
        self.assertEqual((point["latency"]["lower_value"], point["latency"]["upper_value"]),
                         (self.ns[0], self.ns[-1]))
        self.assertAlmostEqual(point["throughput"]["value"], self.ops[2], delta=1)
        self.assertAlmostEqual(point["fairness"]["value"], self.fair[2])
        self.assertIn("p99-latency", point)
        self.assertIn("p99-handover-latency", doc[HANDOVER])

    def test_conbench_results(self):
        doc = strict_parse(self, self.export("conbench"))
        self.assertIsInstance(doc, list)
        metrics = set()
        for result in doc:
            for key in ("run_id", "batch_id", "timestamp"):
                self.assertIsInstance(result[key], str)
                self.assertTrue(result[key])
            for key in ("tags", "context", "info"):
                self.assertIsInstance(result[key], dict)
            self.assertIsInstance(result["tags"]["name"], str)
            self.assertEqual(result["context"]["benchmark_language"], "C++")
            self.assertNotIn("cluster_info", result)
            self.assertNotIn("error", result)
            stats = result["stats"]
            self.assertIn(stats["unit"], ("B/s", "s", "ns", "i/s"))
            self.assertEqual(stats["iterations"], len(stats["data"]))
            self.assertTrue(all(number(v) for v in stats["data"] + stats["times"]))
            self.assertIsInstance(stats["time_unit"], str)
            for key, kind in CONBENCH_MACHINE.items():
                self.assertIsInstance(result["machine_info"][key], kind, key)
            metrics.add(result["tags"]["metric"])
        self.assertEqual(metrics, {"ops_per_s", "ns_per_op", "lat_p99_ns", "handover_p99_ns"})
        self.assertEqual(len({r["run_id"] for r in doc}), 1)
        one = next(r for r in doc if r["optional_benchmark_info"]["kprim_benchmark"] == CONTENDED
                   and r["tags"]["metric"] == "ns_per_op")
        self.assertEqual(sorted(one["stats"]["data"]), self.ns)
        self.assertEqual(one["stats"]["unit"], "ns")
        self.assertEqual(one["tags"]["contender"], "std_mutex")
        self.assertEqual(one["tags"]["threads"], "2")
        self.assertAlmostEqual(one["optional_benchmark_info"]["fairness"], self.fair[2])
        self.assertEqual(one["optional_benchmark_info"]["ops_per_s_modes"]["count"], 1)
        ops = next(r for r in doc if r["tags"] == dict(one["tags"], metric="ops_per_s"))
        self.assertEqual(ops["stats"]["unit"], "i/s")

    def test_csv(self):
        rows = list(csv.DictReader(io.StringIO(self.export("csv"))))
        self.assertEqual(len(rows), len(self.results.cases()))
        row = next(r for r in rows if r["benchmark"] == CONTENDED)
        self.assertEqual((row["family"], row["workload"], row["contender"], row["threads"]),
                         ("locks", "contended", "std_mutex", "2"))
        self.assertEqual(row["params"], "cs:0/gap:0/locks:1")
        self.assertEqual(row["repetitions"], "5")
        self.assertEqual(row["modes"], "1")
        self.assertAlmostEqual(float(row["ns_per_op"]), self.ns[2], places=4)
        self.assertAlmostEqual(float(row["ns_per_op_min"]), self.ns[0], places=4)
        self.assertEqual(row["handover_p99_ns"], "")

    def test_regimes_are_named(self):
        """A bimodal point (two regimes of ops/s) is shown as such, not as a bare median."""
        doc = v2_document(floor=False)
        for entry in doc["benchmarks"]:
            if entry["name"] == CONTENDED and entry["repetition_index"] in (0, 1):
                entry.update(real_time=200.0, ns_per_op=200.0, ops_per_s=5e6,
                             ops=float(round(0.1e9 / 200.0)), trial_s=0.1)
        with tempfile.TemporaryDirectory() as tmp:
            path = fx.write(tmp, "bimodal.json", doc)
            rows = list(csv.DictReader(io.StringIO(export.export_text(path, "csv"))))
            gab = json.loads(export.export_text(path, "github-action-benchmark"))
        row = next(r for r in rows if r["benchmark"] == CONTENDED)
        self.assertTrue(row["modes"].startswith("bimodal: "), row["modes"])
        extra = next(i["extra"] for i in gab if i["name"] == CONTENDED + " (ns/op)")
        self.assertIn("regimes (Mops/s): bimodal: ", extra)

    def test_reference_file_exports_strict(self):
        """The schema-1 reference run holds 2,014 NaN literals; every export is strict."""
        for fmt in JSON_FORMATS:
            with self.subTest(fmt=fmt):
                text = export.export_text(REFERENCE, fmt)
                self.assertNotIn("NaN", text)
                self.assertTrue(strict_parse(self, text))
        self.assertGreater(export.export_text(REFERENCE, "csv").count("\n"), 1700)


class ExportCommandTest(unittest.TestCase, fx.ErrorAssertions):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.good = fx.write(self.dir, "good.json", fx.document())

    def tearDown(self):
        self.tmp.cleanup()

    def test_stdout_and_out(self):
        proc = fx.cli("export", self.good, "--format", "bencher")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        strict_parse(self, proc.stdout)
        out = os.path.join(self.dir, "bmf.json")
        proc = fx.cli("export", self.good, "--format", "bencher", "--out", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")
        with open(out, encoding="utf-8") as handle:
            self.assertEqual(json.load(handle), json.loads(fx.cli(
                "export", self.good, "--format", "bencher").stdout))
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o644)
        self.assertEqual(sorted(os.listdir(self.dir)), ["bmf.json", "good.json"])

    def test_kbench_script_dispatches(self):
        proc = subprocess.run(["bash", os.path.join(fx.ROOT, "kbench"), "export", self.good,
                               "--format", "csv"], capture_output=True, text=True, timeout=120,
                              check=False, cwd=fx.ROOT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(proc.stdout.startswith("benchmark,family,workload,contender,threads"))

    def assertNothingWritten(self, proc, out, *fragments):
        self.assertOneLineError(proc, *fragments)
        self.assertEqual(proc.stdout, "")
        self.assertFalse(os.path.lexists(out), out)

    def test_bad_input(self):
        out = os.path.join(self.dir, "out.json")
        not_results = os.path.join(self.dir, "plain.json")
        with open(not_results, "w", encoding="utf-8") as handle:
            handle.write('{"benchmarks": [{"name": "BM_x", "real_time": 1}]}')
        injected = fx.write(self.dir, "inj.json", fx.document(
            ctx=fx.context(kprim_inject="contended/std_mutex:200")))
        callgrind = fx.write(self.dir, "cg.json", fx.document(
            ctx=fx.context(kprim_callgrind="valgrind-3.19.0")))
        cases = (
            (("export", self.good, "--format", "xml", "--out", out), "xml"),
            (("export", self.good, "--out", out), "--format"),
            (("export", os.path.join(self.dir, "missing.json"), "--format", "csv", "--out",
              out), "missing.json"),
            (("export", not_results, "--format", "bencher", "--out", out), "plain.json"),
            (("export", self.dir, "--format", "bencher", "--out", out), ""),
            (("export", injected, "--format", "conbench", "--out", out), "fault-injection"),
            (("export", callgrind, "--format", "conbench", "--out", out), "callgrind"),
        )
        for argv, fragment in cases:
            with self.subTest(argv=argv):
                self.assertNothingWritten(fx.cli(*argv), out, fragment)

    def test_unwritable_and_existing_out(self):
        missing_dir = os.path.join(self.dir, "no", "such", "dir", "x.json")
        self.assertNothingWritten(fx.cli("export", self.good, "--format", "csv", "--out",
                                         missing_dir), missing_dir, "does not exist")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))
        under_file = os.path.join(self.good, "x.json")
        self.assertNothingWritten(fx.cli("export", self.good, "--format", "csv", "--out",
                                         under_file), under_file, "cannot write")
        existing = os.path.join(self.dir, "existing.csv")
        with open(existing, "w", encoding="utf-8") as handle:
            handle.write("keep me\n")
        proc = fx.cli("export", self.good, "--format", "csv", "--out", existing)
        self.assertOneLineError(proc, "already exists")
        with open(existing, encoding="utf-8") as handle:
            self.assertEqual(handle.read(), "keep me\n")
        self.assertEqual(sorted(os.listdir(self.dir)), ["existing.csv", "good.json"])


if __name__ == "__main__":
    unittest.main()
