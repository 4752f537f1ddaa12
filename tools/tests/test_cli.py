"""CLI contract tests: ./kbench (bash) and tools/kbench_results.py, good and bad input."""

import json
import os
import subprocess
import tempfile
import unittest

from tests import fixtures as fx

KBENCH = os.path.join(fx.ROOT, "kbench")


def kbench(*args):
    """Run the bash entry point ``./kbench ARGS`` (only commands that build nothing)."""
    return subprocess.run(["bash", KBENCH, *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=fx.ROOT)


class KbenchScriptTest(unittest.TestCase, fx.ErrorAssertions):
    def test_help(self):
        proc = kbench("--help")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("run", proc.stdout)
        self.assertIn("test", proc.stdout)

    def test_unknown_command(self):
        self.assertOneLineError(kbench("frobnicate"), "frobnicate")

    def test_run_bad_flag(self):
        self.assertOneLineError(kbench("run", "--bogus"), "--bogus")

    def test_summary_missing_file(self):
        self.assertOneLineError(kbench("summary", "/nonexistent.json"), "/nonexistent.json")

    def test_dispatches_to_tools(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = fx.write(tmp, "r.json", fx.document())
            proc = kbench("summary", path)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("kprim_qspinlock", proc.stdout)


class BadInputTest(unittest.TestCase, fx.ErrorAssertions):
    """Every command: unusable input is one ``kbench:`` line and exit 2, never a traceback."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.good = fx.write(d, "good.json", fx.document())
        text = json.dumps(fx.document())
        cls.bad = {}
        for name, content in (("truncated", text[: len(text) * 2 // 3]),
                              ("malformed", "{'context': 1}"), ("binary", "\udcff")):
            path = os.path.join(d, name + ".json")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write(content)
            cls.bad[name] = path
        cls.bad["future"] = fx.write(d, "future.json", fx.document(
            ctx=fx.context(kprim_schema_version=7)))
        cls.bad["empty"] = fx.write(d, "empty.json", fx.document(benches=[]))
        cls.bad["missing"] = os.path.join(d, "missing.json")
        cls.bad["directory"] = d

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_each_command_rejects_each_bad_file(self):
        out = os.path.join(self.tmp.name, "plots")
        commands = {
            "summary": lambda f: ("summary", f),
            "plot": lambda f: ("plot", f, "--out", out),
            "report": lambda f: ("report", f, "--out", out),
            "compare": lambda f: ("compare", self.good, f),
            "gate": lambda f: ("gate", "--baseline", f, "--current", self.good),
        }
        for kind in ("truncated", "future", "empty", "missing"):
            for command, argv in commands.items():
                with self.subTest(command=command, kind=kind):
                    self.assertOneLineError(fx.cli(*argv(self.bad[kind])))
        for kind in ("malformed", "binary", "directory"):
            with self.subTest(kind=kind):
                self.assertOneLineError(fx.cli("summary", self.bad[kind]))

    def test_write_rejects_bad_files(self):
        results = os.path.join(self.tmp.name, "results")
        self.assertOneLineError(fx.cli("write", "--results-dir", results, "--run-args", "",
                                       self.good, self.bad["truncated"]), "truncated")
        self.assertFalse(os.path.exists(results))

    def test_bad_flags(self):
        for argv in (("summary", self.good, "--bogus"), ("compare", self.good),
                     ("compare", self.good, self.good, "--tolerance", "x"),
                     ("compare", self.good, self.good, "--format", "xml"),
                     ("compare", self.good, self.good, "--filter", "("),
                     ("gate", "--current", self.good), ("frobnicate",), ()):
            with self.subTest(argv=argv):
                self.assertOneLineError(fx.cli(*argv))


class GoodInputTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_write_prints_the_path(self):
        locks = fx.write(self.dir, "locks.json", fx.document())
        atomics = fx.write(self.dir, "atomics.json", fx.document(
            benches=fx.benchmarks(family="atomics", workload="uncontended")))
        results = os.path.join(self.dir, "results")
        proc = fx.cli("write", "--results-dir", results, "--run-args", "--quick --pin compact",
                      locks, atomics)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        path = proc.stdout.strip()
        self.assertRegex(os.path.basename(path), r"^\d{8}T\d{6}Z-1a2b3c4\.json$")
        self.assertEqual(os.path.dirname(path), os.path.join(results, "testbox-2c-aaaa1111"))
        with open(path, encoding="utf-8") as handle:
            ctx = json.load(handle)["context"]
        self.assertEqual(ctx["kprim_run_args"], "--quick --pin compact")
        self.assertEqual(ctx["kprim_families"], "locks,atomics")

    def test_summary(self):
        path = fx.write(self.dir, "r.json", fx.document())
        proc = fx.cli("summary", path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        header = next(line for line in lines if line.startswith("contender"))
        self.assertEqual(header.split(), ["contender", "1", "2", "4*"])
        row = next(line for line in lines if line.startswith("std_mutex"))
        self.assertEqual(row.split(), ["std_mutex", "40.0", "56.6", "80.0"])
        self.assertIn("oversubscribed", proc.stdout)
        proc = fx.cli("summary", path, "--markdown", "--metric", "fairness")
        self.assertIn("| std_mutex | 0.950 | 0.950 | 0.950 |", proc.stdout)

    def test_plot_files(self):
        path = fx.write(self.dir, "r.json", fx.document(
            benches=fx.benchmarks() + fx.benchmarks(params="cs:100/gap:0")))
        out = os.path.join(self.dir, "plots")
        proc = fx.cli("plot", path, "--out", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(os.listdir(out)),
                         [f"locks_contended_{m}.png" for m in ("fairness", "latency",
                                                               "throughput")])
        for name in os.listdir(out):
            with open(os.path.join(out, name), "rb") as handle:
                self.assertEqual(handle.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
