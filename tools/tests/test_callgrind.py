"""Tests of instruction-count gating: callgrind output parsing, orchestration, exact verdicts.

The orchestration test puts a fake ``valgrind`` and a fake benchmark binary on PATH (small
Python scripts), so it needs neither valgrind nor the C++ build.
"""

import json
import os
import stat
import tempfile
import unittest

from kprim_tools import KbenchError
from kprim_tools.callgrind import read_total_ir
from tests import fixtures as fx

NAMES = ["locks/uncontended/std_mutex/threads:1/cs:0/iterations:1/manual_time",
         "locks/uncontended/ck_mcs/threads:1/cs:0/iterations:1/manual_time"]

FAKE_BENCH = """#!/usr/bin/python3
import sys
if "--benchmark_list_tests=true" in sys.argv:
    print("\\n".join(%r))
    print("locks/uncontended/std_mutex/threads:2/cs:0/iterations:1/manual_time")
""" % (NAMES,)

FAKE_VALGRIND = """#!/usr/bin/python3
import json, re, sys
sys.path.insert(0, %r)
import fixtures
args = sys.argv[1:]
if args == ["--version"]:
    print("valgrind-3.19.0")
    sys.exit(0)
opt = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
assert opt["--tool"] == "callgrind" and opt["--collect-atstart"] == "no", args
assert opt["--fair-sched"] == "yes", args
assert opt["--kprim_latency"] == "off" and opt["--kprim_threads"] == "1", args
assert opt["--kprim_cs"] == "0", args
short = re.sub(r"\\\\(.)", r"\\1", opt["--benchmark_filter"][1:-len("(/.*)?$")])
ops = 1000
ir = {"std_mutex": 84000, "ck_mcs": 48000}[short.split("/")[2]] * %r
with open(opt["--callgrind-out-file"], "w") as f:
    f.write("version: 1\\nevents: Ir\\nfn=x\\n0 5\\nsummary: %%d\\ntotals: %%d\\n" %% (ir, ir))
entry = fixtures.entry(short + "/iterations:1/manual_time", 1e6, 1, 0, 1)
entry["ops"] = ops
with open(opt["--benchmark_out"], "w") as f:
    json.dump(fixtures.document(benches=[entry]), f)
"""


class CallgrindTest(unittest.TestCase, fx.ErrorAssertions):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def script(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, stat.S_IRWXU)
        return path

    def measure(self, out, factor):
        """Run the callgrind command with fakes; instruction counts scaled by ``factor``."""
        bindir = os.path.join(self.dir, f"bin{factor}")
        os.makedirs(bindir, exist_ok=True)
        self.script(os.path.join(f"bin{factor}", "valgrind"),
                    FAKE_VALGRIND % (os.path.dirname(os.path.abspath(__file__)), factor))
        bench = self.script("bench_fake", FAKE_BENCH)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        return fx.cli("callgrind", "--binary", bench, "--out", out, "--bench-arg",
                      "--kprim_cs=0", env=env)

    def test_read_total_ir(self):
        path = self.script("cg.out", "events: Ir\nsummary: 1234\ntotals: 1234\n")
        self.assertEqual(read_total_ir(path), 1234)
        for text in ("events: Ir\n", "events: Dr Ir\ntotals: 5 6\n"):
            with self.assertRaises(KbenchError):
                read_total_ir(self.script("bad.out", text))

    def test_measure_then_gate_exactly(self):
        base, same, slow = (os.path.join(self.dir, n) for n in ("b.json", "s.json", "x.json"))
        proc = self.measure(base, 1.0)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("std_mutex/threads:1/cs:0: 84.00 instructions/op", proc.stdout)
        with open(base, encoding="utf-8") as handle:
            doc = json.load(handle)
        self.assertEqual(doc["context"]["kprim_callgrind"], "valgrind-3.19.0")
        self.assertEqual([b["name"] for b in doc["benchmarks"]], NAMES)
        self.assertEqual(self.measure(same, 1.004).returncode, 0)
        self.assertEqual(self.measure(slow, 1.05).returncode, 0)
        proc = fx.cli("gate", "--baseline", base, "--current", same)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("2 SAME", proc.stdout)
        proc = fx.cli("gate", "--baseline", base, "--current", slow)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("2 SLOWER", proc.stdout)
        self.assertIn("instructions_per_op", proc.stdout)
        proc = fx.cli("compare", base, slow)
        self.assertIn("callgrind instruction counts", proc.stdout)
        self.assertOneLineError(self.measure(base, 1.0), "already exists")
        timing = fx.write(self.dir, "timing.json", fx.document())
        self.assertOneLineError(fx.cli("gate", "--baseline", base, "--current", timing),
                                "callgrind")
        self.assertOneLineError(fx.cli("compare", timing, base), "callgrind")

    def test_a_count_below_one_instruction_per_operation_is_refused(self):
        # What the function-name toggle measured for loops with a .cold part (0.00/op):
        # refused with one kbench: line, no file written.
        out = os.path.join(self.dir, "nothing.json")
        self.assertOneLineError(self.measure(out, 1e-6), "collection did not cover")
        self.assertFalse(os.path.exists(out))

    def test_missing_binary(self):
        self.assertOneLineError(fx.cli("callgrind", "--binary", "/nonexistent/bench",
                                       "--out", os.path.join(self.dir, "o.json")))


@unittest.skipUnless(os.environ.get("KPRIM_CALLGRIND_E2E") == "1" and os.environ.get("KPRIM_BENCH_DIR"),
                     "runs bench_slab under valgrind: ctest tools_callgrind sets KPRIM_CALLGRIND_E2E=1")
class CallgrindRealBinaryTest(unittest.TestCase):
    """The real bench_slab under the real valgrind: the worker loop of a kmem_cache row, whose
    unlikely paths g++ puts in a [clone .cold] part, is counted (it read 0.00 instructions per
    operation with --toggle-collect=*worker_loop*), above the noalloc row that runs the same
    harness loop without allocating; and the 20 ms trial ends near 20 ms (with valgrind's
    default scheduling the never-blocking worker kept the driver from stopping it for ~50 s)."""

    def test_kmem_cache_pair_is_counted_and_the_trial_is_bounded(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cg.json")
            proc = fx.cli("callgrind", "--binary",
                          os.path.join(os.environ["KPRIM_BENCH_DIR"], "bench_slab"),
                          "--out", out, "--trial-ms", "20", "--filter",
                          "^slab/batch/(noalloc|kprim_kmem_cache)/threads:1/size:64/live:1/")
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            with open(out, encoding="utf-8") as handle:
                doc = json.load(handle)
        per_op = {b["name"].split("/")[2]: b for b in doc["benchmarks"]}
        self.assertEqual(sorted(per_op), ["kprim_kmem_cache", "noalloc"])
        self.assertGreater(per_op["noalloc"]["instructions_per_op"], 5)
        self.assertGreater(per_op["kprim_kmem_cache"]["instructions_per_op"],
                           per_op["noalloc"]["instructions_per_op"] + 5)
        for entry in per_op.values():
            self.assertLess(entry["trial_s"], 2.0, entry["name"])


if __name__ == "__main__":
    unittest.main()
