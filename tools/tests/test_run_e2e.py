"""test_run_e2e.py: ``./kbench run`` from its command line to its exit status, on the real
binaries (ctest ``tools_run``, label tools, release preset only, RUN_SERIAL; set
``KPRIM_RUN_E2E=1`` to run it by hand).

One short run (``--families floor --quick``: a few seconds) with ``KBENCH_RESULTS_DIR``,
``KBENCH_PLOTS_DIR``, ``KBENCH_STORE`` and ``TMPDIR`` pointing into a temporary directory:
the run exits 0, writes one strict-JSON results file of mode 0644 under its machine's folder
there, ingests it, renders plots there, leaves its temporary directory removed, and touches
nothing in the repository's results/ and plots/. A run whose last step succeeded once exited 1
and left its temporary directory behind: the progress follower's EXIT trap failed its ``kill``
under ``set -e``. A bad ``KBENCH_RESULTS_DIR`` is one ``kbench:`` line and exit 2, before
anything runs.
"""

import glob
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from tests import fixtures as fx

KBENCH = os.path.join(fx.ROOT, "kbench")


def snapshot(*dirs):
    """``{path: (size, mtime_ns)}`` of every file under ``dirs`` (missing ones skipped)."""
    out = {}
    for top in dirs:
        for root, _, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                st = os.stat(path)
                out[path] = (st.st_size, st.st_mtime_ns)
    return out


@unittest.skipUnless(os.environ.get("KPRIM_RUN_E2E") == "1",
                     "runs bench_floor: ctest tools_run sets KPRIM_RUN_E2E=1")
class RunEndToEndTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kbench-run-e2e-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env = dict(os.environ)
        for sub in ("results", "plots", "tmp"):
            os.mkdir(os.path.join(self.dir, sub))
            self.env.pop("KBENCH_" + sub.upper() + "_DIR", None)
        self.env.update(KBENCH_RESULTS_DIR=os.path.join(self.dir, "results"),
                        KBENCH_PLOTS_DIR=os.path.join(self.dir, "plots"),
                        KBENCH_STORE="sqlite://" + os.path.join(self.dir, "store.sqlite"),
                        TMPDIR=os.path.join(self.dir, "tmp"))

    def kbench_run(self, *argv, env=None):
        return subprocess.run(["bash", KBENCH, "run", *argv], capture_output=True, text=True,
                              timeout=600, check=False, env=env or self.env)

    def test_a_short_run_writes_its_files_and_exits_0(self):
        repo = snapshot(os.path.join(fx.ROOT, "results"), os.path.join(fx.ROOT, "plots"))
        proc = self.kbench_run("--families", "floor", "--quick")
        self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
        files = glob.glob(os.path.join(self.dir, "results", "*", "*.json"))
        self.assertEqual(len(files), 1, files)
        self.assertIn("results in " + files[0], proc.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(files[0]).st_mode), 0o644)
        node = subprocess.run(["node", "-e", "JSON.parse(require('fs').readFileSync("
                               "process.argv[1], 'utf8'))", files[0]],
                              capture_output=True, text=True, check=False)
        self.assertEqual(node.returncode, 0, node.stderr)
        with open(files[0], encoding="utf-8") as handle:
            doc = json.load(handle)
        self.assertTrue(all(b["name"].startswith("floor/") for b in doc["benchmarks"]))
        self.assertTrue(os.path.getsize(os.path.join(self.dir, "store.sqlite")) > 0)
        self.assertTrue(glob.glob(os.path.join(self.dir, "plots", "floor_*.png")))
        self.assertEqual(os.listdir(os.path.join(self.dir, "tmp")), [],
                         "the run left its temporary directory behind")
        self.assertEqual(snapshot(os.path.join(fx.ROOT, "results"),
                                  os.path.join(fx.ROOT, "plots")), repo)

    def test_a_results_dir_that_is_not_a_directory_is_refused_before_the_run(self):
        env = dict(self.env, KBENCH_RESULTS_DIR=os.path.join(self.dir, "missing"))
        proc = self.kbench_run("--families", "floor", "--quick", env=env)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(proc.stderr.strip().splitlines(),
                         [f"kbench: KBENCH_RESULTS_DIR must be an existing directory "
                          f"(got '{env['KBENCH_RESULTS_DIR']}')"])


if __name__ == "__main__":
    unittest.main()
