"""Tests of ``kbench bisect``.

Fast tests (every run of the tools suite): bad input is one ``kbench:`` line, exit 2, before any
worktree or build; the filter's families; the processes a step starts (``./kbench run``'s flags
and the checked-out commit's ``bench/bench_<family>.runs``).

The bisection itself (ctest ``tools_bisect``, label tools, release preset only, RUN_SERIAL; set
``KPRIM_BISECT_E2E=1`` to run it by hand): a throwaway clone of this repository's HEAD gets 16
synthetic commits touching a dummy file; one of them also commits ``bench/bench_locks.runs``
whose process line adds ``--kprim_inject`` to a threads:1 qspinlock point. ``./kbench bisect
--repo CLONE`` over the 16 commits must name that commit, in at most 5 benchmark runs (GOOD + 4
steps), and leave no worktree behind. It builds bench_locks once in the clone (about 30-90 s on
2 cores), then a relink per step; ``KPRIM_BISECT_JOBS`` bounds the build's parallelism.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from kprim_tools import bisect
from tests import fixtures as fx

KBENCH = os.path.join(fx.ROOT, "kbench")
POINT = "locks/uncontended/kprim_qspinlock/threads:1/cs:0/gap:0/locks:per_thread"


def sh(cwd, *argv):
    """Run a command in ``cwd``; its stdout (raises when it fails)."""
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def commit(repo, message, files):
    """Write ``files`` ({path: text}) in ``repo`` and commit them; return the new sha."""
    for path, text in files.items():
        full = os.path.join(repo, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(text)
        sh(repo, "git", "add", path)
    sh(repo, "git", "-c", "user.name=kbench test", "-c", "user.email=test@kbench.invalid",
       "commit", "-q", "-m", message)
    return sh(repo, "git", "rev-parse", "HEAD").strip()


def bisect_cli(*args):
    """``kbench_results.py bisect ARGS`` (what ``./kbench bisect`` runs after its deps check)."""
    return fx.cli("bisect", *args, timeout=120)


class BisectInputTest(unittest.TestCase, fx.ErrorAssertions):
    """Bad input: one line, exit 2, nothing created (a tiny repository with two commits)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="kbench-bisect-test-")
        cls.repo = os.path.join(cls.tmp.name, "repo")
        os.makedirs(cls.repo)
        sh(cls.repo, "git", "init", "-q")
        cls.first = commit(cls.repo, "one", {"bench/bench_locks.cpp": "//\n",
                                             "bench/bench_rcu.cpp": "//\n"})
        cls.second = commit(cls.repo, "two", {"dummy.txt": "2\n"})

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def bad(self, needle, *args):
        before = sh(self.repo, "git", "worktree", "list")
        proc = bisect_cli("--repo", self.repo, *args)
        self.assertOneLineError(proc, needle)
        self.assertEqual(sh(self.repo, "git", "worktree", "list"), before)

    def test_not_commits(self):
        self.bad("GOOD 'nosuch' is not a commit", "nosuch", self.second, "--filter", "x")
        self.bad("BAD 'nosuch' is not a commit", self.first, "nosuch", "--filter", "x")

    def test_order(self):
        self.bad("is not an ancestor", self.second, self.first, "--filter", "x")
        self.bad("same commit", self.first, self.first, "--filter", "x")

    def test_filter_and_options(self):
        ok = (self.first, self.second)
        self.bad("--filter", *ok)
        self.bad("must not be empty", *ok, "--filter", "")
        self.bad("bad regex", *ok, "--filter", "(")
        self.bad("unknown family 'nope'", *ok, "--filter", "x", "--families", "nope")
        self.bad("--repetitions", *ok, "--filter", "x", "--repetitions", "0")
        self.bad("--trial-ms", *ok, "--filter", "x", "--trial-ms", "x")
        self.bad("--threads", *ok, "--filter", "x", "--threads", "1,,2")
        self.bad("cannot read thresholds", *ok, "--filter", "x", "--thresholds", "/nonexistent")

    def test_through_kbench(self):
        proc = subprocess.run(["bash", KBENCH, "bisect", "--repo", self.repo, self.second,
                               self.first, "--filter", "x"], capture_output=True, text=True,
                              timeout=120, check=False)
        self.assertOneLineError(proc, "is not an ancestor")

    def test_not_a_repository(self):
        self.assertOneLineError(bisect_cli("--repo", self.tmp.name, "a", "b", "--filter", "x"),
                                "not a git repository")


class BisectCleanupTest(unittest.TestCase):
    """The worktree and the temporary directory go away on failure and on SIGTERM."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="kbench-bisect-test-")
        self.repo = os.path.join(self.tmp.name, "repo")
        self.scratch = os.path.join(self.tmp.name, "scratch")
        os.makedirs(self.repo)
        os.makedirs(self.scratch)
        sh(self.repo, "git", "init", "-q")

    def tearDown(self):
        self.tmp.cleanup()

    def start(self, cmakelists):
        good = commit(self.repo, "one", {"bench/bench_locks.cpp": "//\n",
                                         "CMakeLists.txt": cmakelists})
        bad = commit(self.repo, "two", {"dummy.txt": "2\n"})
        env = dict(os.environ, TMPDIR=self.scratch)
        return subprocess.Popen([fx.PYTHON, os.path.join(fx.TOOLS, "kbench_results.py"),
                                 "bisect", "--repo", self.repo, good, bad, "--filter",
                                 "^locks/"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def assertNothingLeft(self):
        self.assertEqual(len(sh(self.repo, "git", "worktree", "list").splitlines()), 1)
        self.assertEqual(os.listdir(self.scratch), [])
        self.assertEqual(sh(self.repo, "git", "status", "--porcelain"), "")

    def test_good_that_does_not_build(self):
        proc = self.start("message(FATAL_ERROR \"no build here\")\n")
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 2, out + err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("does not build", err)
        self.assertNothingLeft()

    def test_sigterm_during_the_build(self):
        proc = self.start("execute_process(COMMAND sleep 60)\n")
        for _ in range(600):  # wait until the worktree exists and cmake runs in it
            if len(sh(self.repo, "git", "worktree", "list").splitlines()) == 2:
                break
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        self.assertNotEqual(proc.returncode, 0, out + err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertNothingLeft()


class BisectPartsTest(unittest.TestCase):
    def test_families_named(self):
        have = ["locks", "rwlocks", "rcu"]
        self.assertEqual(bisect.families_named("^locks/contended/", have), ["locks"])
        self.assertEqual(bisect.families_named("rwlocks/x", have), ["rwlocks"])
        self.assertEqual(bisect.families_named("^(locks|rcu)/", have), have)
        self.assertEqual(bisect.families_named("(rcu/a|locks/b)", have), ["locks", "rcu"])
        self.assertEqual(bisect.families_named("contended", have), have)
        self.assertEqual(bisect.families_named("-locks/", have), have)

    def test_processes_follow_runs_file(self):
        with tempfile.TemporaryDirectory() as wt:
            state = {"worktree": wt, "trial_ms": 50, "repetitions": 5, "threads": "1,2"}
            binary = os.path.join(wt, "build", "release", "bench", "bench_locks")
            (envs, argv, path), = bisect.bench_processes(state, "locks", "^x", "/o/locks")
            self.assertEqual(envs, [])
            self.assertEqual(path, "/o/locks.json")
            self.assertEqual(argv, [binary, "--kprim_trial_ms=50", "--kprim_pin=none",
                                    "--benchmark_repetitions=5",
                                    "--benchmark_enable_random_interleaving=true",
                                    "--benchmark_out_format=json", "--benchmark_filter=^x",
                                    "--kprim_threads=1,2", "--benchmark_out=/o/locks.json",
                                    "--benchmark_display_aggregates_only=true"])
            os.makedirs(os.path.join(wt, "bench"))
            with open(os.path.join(wt, "bench", "bench_locks.runs"), "w",
                      encoding="utf-8") as handle:
                handle.write("# comment\n\n--kprim_inject=^a:5\n"
                             "LD_PRELOAD=/x.so FOO=1 --kprim_malloc=x  --y\n")
            procs = bisect.bench_processes(state, "locks", "^x", "/o/locks")
            self.assertEqual([p[0] for p in procs], [[], ["LD_PRELOAD=/x.so", "FOO=1"]])
            self.assertEqual([p[2] for p in procs], ["/o/locks.1.json", "/o/locks.2.json"])
            self.assertEqual(procs[0][1][-3:], ["--benchmark_out=/o/locks.1.json",
                                                "--kprim_inject=^a:5",
                                                "--benchmark_display_aggregates_only=true"])
            self.assertEqual(procs[1][1][-4:-1], ["--benchmark_out=/o/locks.2.json",
                                                  "--kprim_malloc=x", "--y"])

    def test_report_rows(self):
        report = ("## kbench gate: FAIL: performance regression\n\n1 SLOWER\n\n"
                  "| verdict | benchmark | figure |\n|:---|---:|---:|\n"
                  "| SLOWER | locks/a/x/threads:1 | ops_per_s |\n"
                  "| UNKNOWN | locks/a/y/threads:2 | ops_per_s |\n"
                  "| SAME | locks/a/z/threads:1 | ops_per_s |\n")
        self.assertEqual(bisect.report_rows(report), [
            ("SLOWER", "locks/a/x/threads:1"), ("UNKNOWN", "locks/a/y/threads:2"),
            ("SAME", "locks/a/z/threads:1")])
        self.assertEqual(bisect.gate_headline(report),
                         "FAIL: performance regression; SLOWER: locks/a/x/threads:1; "
                         "UNKNOWN: locks/a/y/threads:2")

    def test_first_bad_parsing(self):
        sha = "a" * 40
        self.assertEqual(bisect._first_bad(["x", f"{sha} is the first bad commit", "y"]),
                         (sha, None))
        lines = ["There are only 'skip'ped commits left to test.",
                 "The first bad commit could be any of:", "b" * 40, "c" * 40,
                 "We cannot bisect more!"]
        self.assertEqual(bisect._first_bad(lines), (None, ["b" * 40, "c" * 40]))
        self.assertEqual(bisect._first_bad(["nothing"]), (None, None))


@unittest.skipUnless(os.environ.get("KPRIM_BISECT_E2E") == "1",
                     "builds bench_locks in a clone: ctest tools_bisect sets KPRIM_BISECT_E2E=1")
class BisectEndToEndTest(unittest.TestCase):
    def test_finds_the_injected_commit(self):
        with tempfile.TemporaryDirectory(prefix="kbench-bisect-e2e-") as tmp:
            repo = os.path.join(tmp, "repo")
            sh(tmp, "git", "clone", "-q", "--shared", fx.ROOT, repo)
            good = sh(repo, "git", "rev-parse", "HEAD").strip()
            injected = None
            for i in range(1, 17):
                files = {"bisect_dummy.txt": f"synthetic commit {i}\n"}
                if i == 11:
                    files["bench/bench_locks.runs"] = (
                        "# bench_locks processes for ./kbench run (test): one, slowed\n"
                        f"--kprim_inject=^{POINT}/:60\n")
                sha = commit(repo, f"synthetic commit {i}"
                             + (" (slows the qspinlock)" if i == 11 else ""), files)
                injected = sha if i == 11 else injected
            args = ["--repo", repo, good, "HEAD", "--filter", f"^{POINT}/", "--threads", "1",
                    "--trial-ms", "50"]
            if os.environ.get("KPRIM_BISECT_JOBS"):
                args += ["--jobs", os.environ["KPRIM_BISECT_JOBS"]]
            proc = subprocess.run(["bash", KBENCH, "bisect", *args], capture_output=True,
                                  text=True, timeout=900, check=False)
            print(proc.stdout)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertIn(f"first bad commit: {injected} synthetic commit 11", proc.stdout)
            runs = re.search(r"benchmark runs: (\d+) ", proc.stdout)
            self.assertIsNotNone(runs, proc.stdout)
            # GOOD plus log2(16) = 4 steps; a step the gate leaves undecided is skipped (printed
            # as such) and git bisect then tries a commit off the midpoint: up to two runs more
            # per skip. Noise on a threads:1 point of a 2-vCPU VM can do that to a good commit (a
            # fresh-clone run at 00:30 skipped commit 8, then tested 3, 9, 13, 11, 10: 7 runs).
            skips = len(re.findall(r"^kbench bisect: step \d+: \S+ .*: skip, ", proc.stdout, re.M))
            self.assertLessEqual(skips, 2, proc.stdout)
            self.assertLessEqual(int(runs.group(1)), 5 + 2 * skips, proc.stdout)
            self.assertIn("SLOWER", proc.stdout)
            self.assertEqual(len(sh(repo, "git", "worktree", "list").splitlines()), 1)
            self.assertFalse(os.path.exists(os.path.join(repo, ".git", "BISECT_LOG")))
