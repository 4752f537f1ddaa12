"""Help that tells the truth, bad input refused before the work, the run's progress line and
the results fallback path (issue 17).

- every subcommand's ``./kbench CMD --help`` exits 0 and names every option its parser accepts
  (argparse subcommands: introspected from build_parser(); bash ones: the options cmd_<name>
  in ./kbench matches in its case statement);
- ``./kbench --help`` names every subcommand;
- the benchmark binaries' ``--help`` lists every ``--kprim_*`` flag parse_options() accepts
  (BenchHelpTest: needs KPRIM_BENCH_DIR, set by ctest's tools_bench_help);
- unwritable output directories (a path under a regular file: root ignores mode bits),
  existing ``--out`` files, ``--trial-ms 0`` and out-of-range values: one ``kbench:`` line,
  exit 2, and nothing done (no valgrind run, no file written);
- write_run() sends a finished run to $TMPDIR/kbench-results/... when results/ is unwritable;
- progress.py's lines: done/planned trials, the ETA (plan first, measured pace after).
"""

import argparse
import datetime
import io
import os
import re
import subprocess
import tempfile
import time
import unittest
from contextlib import redirect_stderr
from unittest import mock

from tests import fixtures as fx

KBENCH = os.path.join(fx.ROOT, "kbench")
BASH_COMMANDS = ("run", "test", "build", "deps")
NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def kbench(*args, env=None):
    """Run ``./kbench ARGS`` (commands that build nothing)."""
    return subprocess.run(["bash", KBENCH, *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=fx.ROOT, env=env)


def subparsers():
    """{name: ArgumentParser} of tools/kbench_results.py's subcommands."""
    from kprim_tools.cli import build_parser
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def bash_options(command):
    """The --options cmd_<command> in ./kbench matches (its case patterns)."""
    with open(KBENCH, encoding="utf-8") as fh:
        text = fh.read()
    start = text.index(f"\ncmd_{command}() {{")
    body = text[start:text.index("\n}\n", start)]
    opts = set()
    for pattern in re.findall(r"^\s*((?:--[a-z][a-z-]*(?:=\*)?\|?)+)\)", body, re.M):
        opts.update(p.rstrip("=*") for p in pattern.split("|") if p)
    return opts


class SubcommandHelpTest(unittest.TestCase):
    def test_top_level_lists_every_subcommand(self):
        proc = kbench("--help")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name in (*BASH_COMMANDS, *subparsers()):
            self.assertRegex(proc.stdout, rf"(?m)(^  |, ){re.escape(name)}\b", name)

    def test_every_python_subcommand_documents_every_option(self):
        for name, parser in subparsers().items():
            with self.subTest(command=name):
                proc = kbench(name, "--help")
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stderr, "")
                self.assertIn(f"usage: kbench {name}", proc.stdout)
                for action in parser._actions:
                    for opt in action.option_strings:
                        self.assertIn(opt, proc.stdout, f"{name} --help lacks {opt}")
                    if not isinstance(action, argparse._HelpAction):
                        self.assertTrue(action.help, f"{name}: {action.option_strings or action.dest} "
                                                     "has no help text")

    def test_every_bash_subcommand_documents_every_option(self):
        for name in BASH_COMMANDS:
            with self.subTest(command=name):
                opts = bash_options(name)
                if name != "deps":
                    self.assertTrue(opts, f"no options found in cmd_{name}")
                for flag in ("--help", "-h"):
                    proc = kbench(name, flag)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    self.assertIn(f"usage: ./kbench {name}", proc.stdout)
                    for opt in opts:
                        self.assertRegex(proc.stdout, rf"(?m)^\s+{re.escape(opt)}\b",
                                         f"{name} --help lacks {opt}")

    def test_bash_option_extraction_sees_run_flags(self):
        # The test above is only as good as this extraction.
        self.assertLessEqual({"--quick", "--budget", "--pin", "--filter", "--inject",
                              "--trial-ms"}, bash_options("run"))

    def test_parse_only_checks_without_doing(self):
        env = dict(os.environ, KBENCH_PARSE_ONLY="1")
        proc = kbench("run", "--quick", "--filter", "x", env=env)
        self.assertEqual((proc.returncode, proc.stdout.strip()), (0, "kbench: parse-only: ok"))
        bad = kbench("run", "--trial-ms", "0", env=env)
        self.assertEqual(bad.returncode, 2)


@unittest.skipUnless(os.environ.get("KPRIM_BENCH_DIR"), "needs KPRIM_BENCH_DIR (ctest tools_bench_help)")
class BenchHelpTest(unittest.TestCase):
    def test_binaries_list_every_kprim_flag(self):
        src = os.path.join(fx.ROOT, "bench", "harness", "src", "registry.cpp")
        with open(src, encoding="utf-8") as fh:
            flags = set(re.findall(r'key == "(--kprim_[a-z_]+)"', fh.read()))
        self.assertGreaterEqual(len(flags), 8)
        bindir = os.environ["KPRIM_BENCH_DIR"]
        names = sorted(n for n in os.listdir(bindir) if n.startswith("bench_")
                       and os.access(os.path.join(bindir, n), os.X_OK))
        self.assertTrue(names, bindir)
        binary = os.path.join(bindir, "bench_locks" if "bench_locks" in names else names[0])
        proc = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60,
                              check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("--benchmark_filter", proc.stdout)  # Google Benchmark's own part
        for flag in flags:
            self.assertRegex(proc.stdout, rf"(?m)^  {flag}=", flag)


class BadInputUpFrontTest(unittest.TestCase, fx.ErrorAssertions):
    """Refused in well under the time the work takes, and nothing is written."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.good = fx.write(d, "good.json", fx.document())
        cls.plain = os.path.join(d, "plain-file")
        with open(cls.plain, "w", encoding="utf-8") as fh:
            fh.write("x")
        cls.unwritable = os.path.join(cls.plain, "sub")  # under a regular file: ENOTDIR

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_compare_plot_unwritable(self):
        proc = fx.cli("compare", self.good, self.good, "--plot", self.unwritable)
        self.assertOneLineError(proc, "compare --plot")
        self.assertEqual(proc.stdout, "")  # refused before the table

    def test_history_out_unwritable(self):
        proc = fx.cli("history", self.tmp.name, "--plot", "--out", self.unwritable)
        self.assertOneLineError(proc, "history --out")

    def test_plot_and_report_out_unwritable(self):
        self.assertOneLineError(fx.cli("plot", self.good, "--out", self.unwritable), "plot --out")
        self.assertOneLineError(fx.cli("report", self.good, "--out", self.plain), "report --out")

    def test_out_dir_that_is_a_file(self):
        self.assertOneLineError(fx.cli("compare", self.good, "--plot", self.plain), "not a directory")

    def test_callgrind_existing_out_refused_before_valgrind(self):
        with mock.patch("subprocess.run") as run:
            from kprim_tools.cli import main
            err = io.StringIO()
            with redirect_stderr(err):
                status = main(["callgrind", "--binary", "/bin/true", "--out", self.good])
            run.assert_not_called()  # valgrind never started
        self.assertEqual(status, 2)
        self.assertIn("already exists", err.getvalue())
        started = time.monotonic()
        self.assertOneLineError(fx.cli("callgrind", "--binary", "/bin/true", "--out", self.good),
                                "already exists")
        self.assertLess(time.monotonic() - started, 10)

    def test_callgrind_missing_binary(self):
        out = os.path.join(self.tmp.name, "cg.json")
        self.assertOneLineError(fx.cli("callgrind", "--binary", "/nonexistent", "--out", out),
                                "--binary")
        self.assertFalse(os.path.exists(out))

    def test_trial_ms_zero_everywhere(self):
        out = os.path.join(self.tmp.name, "cg0.json")
        self.assertOneLineError(fx.cli("callgrind", "--binary", "/bin/true", "--out", out,
                                       "--trial-ms", "0"), "--trial-ms")
        self.assertOneLineError(fx.cli("plan", "--trial-ms", "0"), "--trial-ms")
        self.assertOneLineError(fx.cli("bisect", "HEAD", "HEAD", "--filter", "x", "--trial-ms", "0"),
                                "--trial-ms")
        self.assertOneLineError(kbench("run", "--trial-ms", "0"), "--trial-ms")

    def test_out_of_range_values(self):
        for args, fragment in ((("run", "--trial-ms", "600001"), "--trial-ms"),
                               (("run", "--threads", "4097"), "--threads"),
                               (("run", "--repetitions", "0"), "--repetitions"),
                               (("run", "--repetitions", "1001"), "--repetitions"),
                               (("run", "--budget", "0"), "--budget"),
                               (("test", "--preset", "nosuch"), "nosuch"),
                               (("build", "--preset", "nosuch"), "nosuch")):
            with self.subTest(args=args):
                self.assertOneLineError(kbench(*args), fragment)
        for args, fragment in ((("compare", self.good, "--alpha", "0"), "--alpha"),
                               (("history", self.tmp.name, "--window", "0"), "--window"),
                               (("history", self.tmp.name, "--tolerance", "1.5"), "--tolerance")):
            with self.subTest(args=args):
                self.assertOneLineError(fx.cli(*args), fragment)

    def test_export_existing_out(self):
        self.assertOneLineError(fx.cli("export", self.good, "--format", "csv", "--out", self.good),
                                "already exists")


class ResultsFallbackTest(unittest.TestCase):
    def test_unwritable_results_dir_goes_to_tmpdir(self):
        from kprim_tools.results import write_run
        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as tmpdir:
            src = fx.write(tmp, "in.json", fx.document())
            blocker = os.path.join(tmp, "results")
            with open(blocker, "w", encoding="utf-8") as fh:
                fh.write("a file where the results directory should be")
            err = io.StringIO()
            with mock.patch.dict(os.environ, {"TMPDIR": tmpdir}), \
                    mock.patch("tempfile.tempdir", None), redirect_stderr(err):
                path, _ = write_run([src], blocker, "--quick", now=NOW)
            self.assertTrue(path.startswith(os.path.join(tmpdir, "kbench-results") + os.sep), path)
            self.assertTrue(os.path.isfile(path))
            self.assertIn(path, err.getvalue())
            self.assertTrue(err.getvalue().startswith("kbench: warning: "))
            from kprim_tools.results import load
            normal, _ = write_run([src], os.path.join(tmp, "ok"), "--quick", now=NOW)
            self.assertEqual(len(load(path).benchmarks), len(load(normal).benchmarks))
            self.assertEqual(os.path.basename(path), os.path.basename(normal))

    def test_existing_target_is_still_refused(self):
        from kprim_tools import KbenchError
        from kprim_tools.results import write_run
        now = NOW
        with tempfile.TemporaryDirectory() as tmp:
            src = fx.write(tmp, "in.json", fx.document())
            results = os.path.join(tmp, "results")
            write_run([src], results, "", now=now)
            with self.assertRaises(KbenchError):
                write_run([src], results, "", now=now)


class ProgressLineTest(unittest.TestCase):
    def test_line_and_eta(self):
        from kprim_tools import progress
        # No trial finished yet: the plan's estimate minus the elapsed time.
        self.assertIn("0/100 trials (0%)", progress.line(0, 100, 30, 600))
        self.assertEqual(progress.eta_s(0, 100, 30, 600), 570)
        # Then the measured pace: 25 trials in 100 s, 75 left -> 300 s.
        self.assertEqual(progress.eta_s(25, 100, 100, 600), 300)
        self.assertIn("ETA 5m00s", progress.line(25, 100, 100, 600))
        self.assertEqual(progress.fmt_s(3725), "1h02m")

    def test_follows_the_file_and_stops(self):
        with tempfile.TemporaryDirectory() as tmp:
            feed, stop = os.path.join(tmp, "p"), os.path.join(tmp, "stop")
            with open(feed, "w", encoding="utf-8") as fh:
                fh.write("." * 7)
            proc = subprocess.Popen(
                [fx.PYTHON, os.path.join(fx.TOOLS, "kbench_results.py"), "progress", "--file", feed,
                 "--stop", stop, "--planned", "10", "--planned-min", "1", "--interval", "0.05",
                 "--tty", "no"], stdout=subprocess.PIPE, text=True)
            first = proc.stdout.readline()  # printed at start, before the file grows
            with open(feed, "a", encoding="utf-8") as fh:
                fh.write("...")
            time.sleep(0.3)
            open(stop, "w", encoding="utf-8").close()
            out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0)
        lines = [first.rstrip("\n"), *out.splitlines()]
        self.assertIn("7/10 trials (70%)", lines[0])
        self.assertIn("10/10 trials (100%)", lines[-1])
        self.assertTrue(all(line.startswith("== kbench run: ") for line in lines), lines)


if __name__ == "__main__":
    unittest.main()
