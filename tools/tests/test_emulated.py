"""Emulated runs (issue 20): compare and gate refuse a file whose context says
``kprim_emulated=yes`` (one ``kbench:`` line, exit 2, before any work), report marks it and
shows no timing; a native file (``no``, or no key at all: files from before the key) works."""

import os
import re
import tempfile
import unittest

from kprim_tools import emulation, report
from kprim_tools.results import load
from tests import fixtures as fx

EMULATED = dict(kprim_arch="aarch64", kprim_kernel_arch="x86_64", kprim_emulated="yes",
                kprim_lse="yes")
NATIVE = dict(kprim_arch="x86_64", kprim_kernel_arch="x86_64", kprim_emulated="no",
              kprim_lse="n/a")


class EmulatedRunTest(fx.ErrorAssertions, unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        benches = fx.benchmarks(repetitions=5)
        self.native = fx.write(self.dir, "native.json",
                               fx.document(ctx=fx.context(**NATIVE), benches=benches))
        self.old = fx.write(self.dir, "old.json", fx.document(benches=benches))
        # Same machine fingerprint as the native file on purpose: the refusal must not depend
        # on the machines differing (qemu on this host reports this host's topology).
        self.emulated = fx.write(self.dir, "emulated.json",
                                 fx.document(ctx=fx.context(**EMULATED), benches=benches))
        self.thresholds = fx.write(self.dir, "thresholds.json", {
            "thresholds_version": 1, "reference": "std_mutex", "alpha": 0.05, "max_reruns": 0,
            "default": {"tolerance": 0.10}, "rules": []})

    def tearDown(self):
        self.tmp.cleanup()

    def test_detection_reads_the_context(self):
        self.assertTrue(emulation.emulated(load(self.emulated)))
        self.assertFalse(emulation.emulated(load(self.native)))
        self.assertFalse(emulation.emulated(load(self.old)))
        self.assertEqual(emulation.describe(load(self.emulated)),
                         "an aarch64 binary on an x86_64 kernel")

    def test_compare_refuses_either_side(self):
        for a, b in ((self.native, self.emulated), (self.emulated, self.native)):
            proc = fx.cli("compare", a, b)
            self.assertOneLineError(proc, "compare:", "emulated.json", "EMULATED",
                                    "aarch64 binary on an x86_64 kernel")
            self.assertEqual(proc.stdout, "")

    def test_compare_of_native_files_still_works(self):
        proc = fx.cli("compare", self.old, self.native)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("kprim_qspinlock", proc.stdout)

    def test_gate_refuses_either_side(self):
        for a, b in ((self.native, self.emulated), (self.emulated, self.native)):
            proc = fx.cli("gate", "--baseline", a, "--current", b, "--thresholds",
                          self.thresholds)
            self.assertOneLineError(proc, "gate:", "emulated.json", "EMULATED")
            self.assertEqual(proc.stdout, "")

    def test_gate_of_native_files_still_works(self):
        proc = fx.cli("gate", "--baseline", self.old, "--current", self.native,
                      "--thresholds", self.thresholds)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_report_marks_it_and_shows_no_timing(self):
        out = os.path.join(self.dir, "emulated-page")
        page = report.build_report(self.emulated, out, fx.ROOT)
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        self.assertIn("(EMULATED)</h1>", text)
        self.assertIn("EMULATED run", text)
        self.assertIn("aarch64 binary on an x86_64 kernel", text)
        self.assertIn("locks/contended/kprim_qspinlock", text)  # what ran is listed
        self.assertNotIn("<img", text)
        self.assertNotIn("winners", text)
        self.assertNotIn("All medians", text)
        self.assertEqual([f for f in os.listdir(out) if f.endswith(".png")], [])
        # No rate anywhere: the fixture's figures are tens of Mops/s, printed as "40" or "4e+07".
        self.assertIsNone(re.search(r"Mops|ops/s", text))
        self.assertIn("<td>kprim_emulated</td><td>yes</td>", text)

    def test_report_of_a_native_file_has_figures(self):
        out = os.path.join(self.dir, "native-page")
        page = report.build_report(self.native, out, fx.ROOT)
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        self.assertNotIn("EMULATED", text)
        self.assertIn("<img", text)
        self.assertIn("<td>kprim_emulated</td><td>no</td>", text)


if __name__ == "__main__":
    unittest.main()
