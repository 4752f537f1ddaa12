"""The run planner (kprim_tools.plan): the estimate, the documented reduction order, and the
planned default run on synthetic hwloc machines (2 packages x 64 cores x 2 PUs, 8 NUMA nodes),
listed by the real bench binaries without running a trial.

The binaries come from ``KPRIM_BENCH_DIR`` or, by default, ``build/release/bench``; the
end-to-end tests skip (saying so) when neither holds built binaries.
"""

import json
import os
import subprocess
import tempfile
import unittest
from collections import Counter

from kprim_tools import plan
from tests import fixtures as fx

BENCH_DIR = os.environ.get("KPRIM_BENCH_DIR") or os.path.join(fx.ROOT, "build", "release", "bench")
TWO_BY_64_BY_2 = "package:2 core:64 pu:2"
EIGHT_NUMA = "package:2 numa:4 l3:1 core:8 pu:2"


def listing(swept, fixed=None, family="locks"):
    """A Listing with ``swept`` / ``fixed`` benchmark counts per thread count."""
    return plan.Listing(plan.Process(family, "/bin/false"), Counter(swept), Counter(fixed or {}))


class SweepTest(unittest.TestCase):
    def test_default_sweep_matches_the_harness(self):
        self.assertEqual(plan.default_sweep(2), [1, 2, 4, 8])
        self.assertEqual(plan.default_sweep(8), [1, 2, 3, 4, 5, 6, 7, 8, 16, 32])
        self.assertEqual(plan.default_sweep(16), [1, 2, 4, 8, 16, 32, 64])
        self.assertEqual(plan.default_sweep(256), [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
        self.assertEqual(plan.default_sweep(4096)[-1], 4096)

    def test_nproc_is_inferred_from_a_default_sweep(self):
        for n in (1, 2, 8, 12, 16, 256, 1000):
            self.assertEqual(plan.infer_nproc(plan.default_sweep(n)), n)
        self.assertIsNone(plan.infer_nproc([]))
        # Fixed thread counts of a benchmark's own (sleepwake's herd: 9 and 65) beside a sweep.
        for n in (1, 2, 3, 16, 128, 256, 1024):
            self.assertEqual(plan.infer_nproc(plan.default_sweep(n) + [9, 65]), n)

    def test_thread_count_of_a_name(self):
        self.assertEqual(plan.thread_count("locks/contended/x/threads:64/cs:0"), 64)
        self.assertEqual(plan.thread_count("list/traverse/kprim_list/threads:1"), 1)
        self.assertIsNone(plan.thread_count("layout/x/y"))

    def test_fixed_benchmarks_are_told_from_swept_ones(self):
        full = ["f/a/x/threads:1/k", "f/a/x/threads:8/k", "f/litmus/y/threads:2", "f/c/z/threads:8"]
        at_max = ["f/a/x/threads:8/k", "f/litmus/y/threads:2", "f/c/z/threads:8"]
        li = plan.split_listing(plan.Process("f", "/bin/false"), full, at_max, 8)
        self.assertEqual(li.swept, Counter({1: 1, 8: 2}))
        self.assertEqual(li.fixed, Counter({2: 1}))

    def test_runs_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench_x.runs")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("# comment\n--kprim_malloc=glibc\n\nLD_PRELOAD=/lib/x.so --kprim_malloc=x\n")
            self.assertEqual(plan.parse_runs(path), [({}, ["--kprim_malloc=glibc"]),
                                                     ({"LD_PRELOAD": "/lib/x.so"}, ["--kprim_malloc=x"])])


class EstimateTest(unittest.TestCase):
    def test_trial_overhead_grows_with_threads_and_oversubscription(self):
        self.assertAlmostEqual(plan.trial_overhead_ms(1, 2), plan.TRIAL_BASE_MS + plan.THREAD_MS)
        self.assertAlmostEqual(plan.trial_overhead_ms(8, 2),
                               plan.TRIAL_BASE_MS + 8 * plan.THREAD_MS + plan.OVERSUB_MS * 4)
        self.assertLess(plan.trial_overhead_ms(256, 256), plan.trial_overhead_ms(1024, 256))

    def test_estimate_is_the_sum_over_processes_of_trials_times_cost(self):
        a = listing({1: 10, 2: 10})
        b = listing({1: 5}, fixed={2: 1}, family="slab")
        s = plan.Settings(5, 100, (1, 2))
        cost = lambda t: 100 + plan.trial_overhead_ms(t, 2)  # noqa: E731
        want = (2 * plan.PROCESS_START_S + 5 * (10 * cost(1) + 10 * cost(2)) / 1e3
                + 5 * (5 * cost(1) + cost(2)) / 1e3)
        self.assertAlmostEqual(plan.estimate_s([a, b], s, 2), want)
        # Fixed benchmarks stay whatever the sweep.
        self.assertEqual(plan.process_estimate(b, plan.Settings(5, 100, (1,)), 2)[0], 6)


class ReductionOrderTest(unittest.TestCase):
    SWEEP = tuple(plan.default_sweep(256))

    def setUp(self):
        self.listings = [listing({t: 100 for t in self.SWEEP})]
        self.full = plan.Settings(5, 100, self.SWEEP)

    def minutes(self, s):
        return plan.estimate_s(self.listings, s, 256) / 60

    def test_fits_untouched(self):
        s, steps, fits = plan.reduce_to_budget(self.listings, self.full, 256, 1e9)
        self.assertEqual((s, steps, fits), (self.full, [], True))

    def test_repetitions_first_and_only_as_far_as_needed(self):
        budget = self.minutes(plan.Settings(4, 100, self.SWEEP)) * 60 + 1
        s, steps, fits = plan.reduce_to_budget(self.listings, self.full, 256, budget)
        self.assertTrue(fits)
        self.assertEqual(s, plan.Settings(4, 100, self.SWEEP))
        self.assertEqual(steps, ["repetitions 5 -> 4"])

    def test_then_trial_length(self):
        budget = self.minutes(plan.Settings(3, 70, self.SWEEP)) * 60 + 0.5
        s, steps, fits = plan.reduce_to_budget(self.listings, self.full, 256, budget)
        self.assertTrue(fits)
        self.assertEqual(s, plan.Settings(3, 70, self.SWEEP))
        self.assertEqual(steps, ["repetitions 5 -> 3", "trial 100 -> 70 ms"])

    def test_then_thread_counts_keeping_1_nproc_2x_and_the_largest(self):
        order = plan.drop_order(self.SWEEP, plan.keep_counts(self.SWEEP, 256))
        self.assertEqual(order, [128, 32, 8, 2, 64, 4, 16])
        two_dropped = tuple(t for t in self.SWEEP if t not in (128, 32))
        budget = self.minutes(plan.Settings(3, 50, two_dropped)) * 60 + 0.5
        s, steps, fits = plan.reduce_to_budget(self.listings, self.full, 256, budget)
        self.assertTrue(fits)
        self.assertEqual(s, plan.Settings(3, 50, two_dropped))
        self.assertEqual(steps, ["repetitions 5 -> 3", "trial 100 -> 50 ms",
                                 "thread counts 128,32 dropped (200 benchmarks)"])

    def test_cannot_fit_says_so(self):
        s, steps, fits = plan.reduce_to_budget(self.listings, self.full, 256, 1.0)
        self.assertFalse(fits)
        self.assertEqual(s, plan.Settings(3, 50, (1, 256, 512, 1024)))
        self.assertEqual(steps[-1], "thread counts 128,32,8,2,64,4,16 dropped (700 benchmarks)")

    def test_user_values_below_the_floors_are_never_raised(self):
        s0 = plan.Settings(2, 20, self.SWEEP)
        s, steps, _ = plan.reduce_to_budget(self.listings, s0, 256, 60)
        self.assertEqual((s.repetitions, s.trial_ms), (2, 20))
        self.assertEqual(len(steps), 1)
        self.assertTrue(steps[0].startswith("thread counts "))

    def test_small_machine_keeps_its_whole_short_sweep(self):
        sweep = tuple(plan.default_sweep(2))
        self.assertEqual(plan.drop_order(sweep, plan.keep_counts(sweep, 2)), [])
        sweep8 = tuple(plan.default_sweep(8))
        self.assertEqual(plan.keep_counts(sweep8, 8), {1, 8, 16, 32})


class KbenchRunBudgetTest(unittest.TestCase, fx.ErrorAssertions):
    """``./kbench run --budget`` validation (before anything is built or run)."""

    def test_bad_budget_values(self):
        for bad in ("0", "0.0", "-2", "abc", "1e3", ".5x"):
            proc = subprocess.run(["bash", os.path.join(fx.ROOT, "kbench"), "run", "--budget", bad],
                                  capture_output=True, text=True, timeout=60, check=False,
                                  cwd=fx.ROOT)
            self.assertOneLineError(proc, "--budget")

    def test_missing_value(self):
        proc = subprocess.run(["bash", os.path.join(fx.ROOT, "kbench"), "run", "--budget"],
                              capture_output=True, text=True, timeout=60, check=False, cwd=fx.ROOT)
        self.assertOneLineError(proc, "--budget")


def _have_binaries():
    return os.path.isfile(os.path.join(BENCH_DIR, "families.txt")) and \
        os.access(os.path.join(BENCH_DIR, "bench_locks"), os.X_OK)


@unittest.skipUnless(_have_binaries(), f"no built bench binaries in {BENCH_DIR} (set KPRIM_BENCH_DIR "
                                       "or build the release preset); planner end-to-end skipped")
class PlannerOnSyntheticTopologiesTest(unittest.TestCase, fx.ErrorAssertions):
    """``kbench_results.py plan`` listing the real binaries under HWLOC_SYNTHETIC."""

    def plan(self, topology, *args):
        env = dict(os.environ, HWLOC_SYNTHETIC=topology)
        return fx.cli("plan", "--bindir", BENCH_DIR, *args, env=env, timeout=300)

    def plan_json(self, topology, *args):
        proc = self.plan(topology, "--format", "json", *args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def test_default_run_on_2x64x2_fits_90_minutes(self):
        doc = self.plan_json(TWO_BY_64_BY_2)
        self.assertEqual(doc["nproc"], 256)
        self.assertEqual(doc["threads"], plan.default_sweep(256))
        self.assertEqual((doc["repetitions"], doc["trial_ms"]), (5, 100))
        self.assertLessEqual(doc["planned_min"], 90, doc)
        self.assertGreater(doc["planned_min"], 1)
        self.assertEqual(doc["steps"], [])

    def test_budget_30_reduces_and_names_what_it_dropped(self):
        with tempfile.TemporaryDirectory() as tmp:
            choices = os.path.join(tmp, "choices")
            proc = self.plan(TWO_BY_64_BY_2, "--budget", "30", "--choices", choices)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("budget 30 min: the plan asked for", proc.stdout)
            self.assertIn("repetitions 5 -> ", proc.stdout)
            with open(choices, encoding="utf-8") as fh:
                got = dict(line.strip().split("=", 1) for line in fh if line.strip())
        self.assertLess(int(got["repetitions"]), 5)
        self.assertIn("trial_ms", got)
        doc = self.plan_json(TWO_BY_64_BY_2, "--budget", "30")
        self.assertTrue(doc["fits"])
        self.assertLessEqual(doc["planned_min"], 30)
        self.assertTrue(doc["steps"])

    def test_eight_numa_nodes_default_run_fits_90_minutes(self):
        doc = self.plan_json(EIGHT_NUMA)
        self.assertEqual(doc["nproc"], 128)
        self.assertLessEqual(doc["planned_min"], 90, doc)

    def test_impossible_budget_is_one_line_and_exit_2(self):
        proc = self.plan(TWO_BY_64_BY_2, "--budget", "0.01", "--families", "locks")
        self.assertOneLineError(proc, "cannot fit")

    def test_bad_budget(self):
        for bad in ("0", "-3", "abc", "nan"):
            self.assertOneLineError(self.plan(TWO_BY_64_BY_2, "--budget", bad), "--budget")

    def test_unknown_family(self):
        self.assertOneLineError(self.plan(TWO_BY_64_BY_2, "--families", "nosuch"), "bench_nosuch")


if __name__ == "__main__":
    unittest.main()
