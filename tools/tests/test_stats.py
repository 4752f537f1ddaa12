"""Tests of kprim_tools.stats: regimes (modes), the exact U distribution, the verdict rule."""

import math
import os
import unittest

import numpy

from kprim_tools import stats
from kprim_tools.results import load
from tests import fixtures as fx

#: The committed reference run (schema 1, 3 back-to-back repetitions): test material.
REFERENCE = os.path.join(fx.ROOT, "results", "amd-epyc-2c-fd2d0313",
                         "20261125T164140Z-2e9c04d554aa.json")


def lognormal(rng, centre, sigma, n):
    """``n`` seeded log-normal values around ``centre``."""
    return list(centre * numpy.exp(rng.normal(0.0, sigma, n)))


def regimes(rng, n, fast=130.0, slow=23.0, share=0.5, sigma=0.05):
    """``n`` values each drawn from the fast regime with probability ``share``, else slow."""
    return [(fast if rng.random() < share else slow) * math.exp(rng.normal(0.0, sigma))
            for _ in range(n)]


class ModesTest(unittest.TestCase):
    def test_two_regimes(self):
        modes = stats.find_modes([130.0, 131.0, 129.0, 23.0, 24.0, 22.5])
        self.assertEqual(modes.count, 2)
        slow, fast = modes.modes
        self.assertAlmostEqual(fast.median, 130.0)
        self.assertAlmostEqual(slow.median, 23.0)
        self.assertEqual((fast.share, slow.share, fast.n), (0.5, 0.5, 3))
        self.assertEqual(modes.label(), "bimodal: 130 (50%) | 23.0 (50%)")
        self.assertEqual(modes.as_dict()["modes"][0]["median"], 130.0, "highest first")

    def test_unimodal_noise_has_one_mode(self):
        rng = numpy.random.default_rng(11)
        found = [stats.find_modes(lognormal(rng, 100.0, 0.05, n)).count
                 for n in (3, 5, 10, 20) for _ in range(200)]
        self.assertEqual(set(found), {1})

    def test_seeded_regimes_are_found(self):
        rng = numpy.random.default_rng(12)
        found = 0
        for _ in range(200):
            values = regimes(rng, 10)
            if 2 <= sum(v > 60 for v in values) <= 8:
                found += stats.find_modes(values).count == 2
            else:
                found += 1
        self.assertGreaterEqual(found, 195)

    def test_small_samples_need_a_huge_gap(self):
        self.assertEqual(stats.find_modes([100.0, 100.0, 70.0]).count, 1, "30% apart, n=3")
        self.assertEqual(stats.find_modes([100.0, 101.0, 30.0]).count, 2, "3.3x apart")
        self.assertEqual(stats.find_modes([41.0, 157.0, 73.0]).count, 1, "spread, no gap")
        self.assertEqual(stats.find_modes([4.15, 1.12, 0.369]).count, 1,
                         "three values all apart: one spread-out mode, not three")

    def test_single_value_needs_a_huge_gap(self):
        self.assertEqual(stats.find_modes([100, 101, 99, 102, 98, 100.5, 60.0]).count, 1)
        modes = stats.find_modes([100, 101, 99, 102, 98, 100.5, 20.0])
        self.assertEqual([m.n for m in modes.modes], [1, 6])

    def test_three_modes(self):
        values = [1.0, 1.01, 10.0, 10.1, 100.0, 101.0]
        self.assertEqual(stats.find_modes(values).count, 3)
        self.assertEqual(stats.find_modes(values + [1000.0, 1010.0]).count, 1,
                         "four would-be modes: more than 3, not split")

    def test_deterministic_and_order_free(self):
        rng = numpy.random.default_rng(13)
        values = regimes(rng, 9)
        self.assertEqual(stats.find_modes(values), stats.find_modes(list(reversed(values))))

    def test_degenerate_inputs(self):
        self.assertEqual(stats.find_modes([]).count, 0)
        self.assertEqual(stats.find_modes([5.0]).count, 1)
        self.assertEqual(stats.find_modes([0.0, 0.0]).count, 1)
        self.assertIsNone(stats.find_modes([5.0, 5.0]).label())

    def test_reference_file_regimes(self):
        cases = load(REFERENCE).cases()

        def modes(name):
            return stats.find_modes(cases[name + "/iterations:1/manual_time"].values("ops_per_s"))

        atomic_set = modes("atomics/contended/kprim_atomic_set/threads:2")
        self.assertEqual(atomic_set.count, 2)  # 1697, 95, 1727 Mops/s
        self.assertEqual([m.n for m in atomic_set.modes], [1, 2])
        self.assertEqual(modes("locks/contended/std_mutex/threads:2/cs:0/gap:0/locks:1").count, 1)
        self.assertEqual(modes("locks/contended/kprim_qspinlock/threads:2/cs:0/gap:0/locks:1")
                         .count, 1, "72, 50, 62: spread without a gap")
        counts = [stats.find_modes(c.values("ops_per_s")).count for c in cases.values()]
        self.assertLess(sum(c > 1 for c in counts), len(counts) * 0.05)


class ExactTest(unittest.TestCase):
    def test_u_distribution(self):
        dist = stats.u_distribution(5, 5)
        self.assertAlmostEqual(float(dist.sum()), 1.0)
        self.assertAlmostEqual(float(dist[:3].sum()), 4 / 252)
        self.assertAlmostEqual(float(stats.u_distribution(3, 8)[0]), 1 / 165)

    def test_interval_ranks(self):
        self.assertEqual(stats.ci_rank(5, 5, 0.05), 3)
        self.assertEqual(stats.ci_rank(3, 3, 0.05), 0, "3+3 cannot reach 95%")
        self.assertEqual(stats.ci_rank(4, 4, 0.05), 1)
        self.assertGreater(stats.ci_rank(40, 40, 0.05), 500)

    def test_one_sided_bounds_are_the_narrower_interval(self):
        # low1..high1 is the 1 - 2 alpha interval: the ranks of alpha 0.10, inside the 95% one.
        self.assertEqual(stats.ci_rank(5, 5, 0.10), 5)
        a = [100.0, 101.0, 99.0, 102.0, 98.0]
        b = [v * 0.97 + (i % 2) for i, v in enumerate(a)]
        s, wide = stats.log_shift(a, b, 0.05), stats.log_shift(a, b, 0.10)
        self.assertLess(s.low, s.low1)
        self.assertLess(s.high1, s.high)
        self.assertEqual((s.low1, s.high1), (wide.low, wide.high))
        self.assertEqual(stats.ci_rank(3, 3, 0.10), 1, "3+3 reach 90% with their extremes")
        self.assertEqual(stats.log_shift([1.0, 2], [1.0, 2], 0.05).low1, None,
                         "2+2 cannot reach 90%")

    def test_smallest_p(self):
        self.assertLess(stats.smallest_p(5, 5), 0.05)
        self.assertAlmostEqual(stats.smallest_p(3, 3), 0.1)
        self.assertLess(stats.mann_whitney_p([1.0, 2, 3, 4, 5], [6.0, 7, 8, 9, 10]), 0.01)


class JudgeTest(unittest.TestCase):
    A = [100.0, 101.0, 99.0, 102.0, 98.0]

    def test_within_tolerance_is_same(self):
        verdict = stats.judge(self.A, [v * 1.03 for v in self.A], 0.05, 0.05)
        self.assertEqual(verdict.verdict, stats.SAME)
        self.assertIn("within ±5%", verdict.why)

    def test_large_significant_change(self):
        slower = stats.judge(self.A, [v * 0.7 for v in self.A], 0.05, 0.05)
        self.assertEqual(slower.verdict, stats.LOWER)
        self.assertAlmostEqual(slower.change, -0.3, delta=0.01)
        self.assertLess(slower.p_value, 0.05)
        self.assertLess(slower.high, -0.25)
        self.assertIn("-30% beyond ±5%, p=0.0079", slower.why)
        self.assertEqual(stats.judge(self.A, [v * 1.5 for v in self.A], 0.05, 0.05).verdict,
                         stats.HIGHER)

    def test_too_few_repetitions_is_unknown(self):
        verdict = stats.judge([100.0, 101.0, 99.0], [70.0, 71.0, 69.0], 0.05, 0.05)
        self.assertEqual(verdict.verdict, stats.UNKNOWN)
        self.assertGreaterEqual(verdict.p_value, 0.05)
        self.assertIn("cannot go below 0.1", verdict.why)
        self.assertIsNone(verdict.low, "3+3: no bounded 95% interval")

    def test_significant_small_change(self):
        tight = [100.0, 100.1, 99.9, 100.2, 99.8]
        same = stats.judge(tight, [v * 0.97 for v in tight], 0.05, 0.05)
        self.assertEqual(same.verdict, stats.SAME, "interval inside the band")
        self.assertLess(same.p_value, 0.05)
        close = [100.0, 100.5, 99.5, 101.0, 99.0]
        unsure = stats.judge(close, [v * 0.955 for v in close], 0.05, 0.05)
        self.assertEqual(unsure.verdict, stats.UNKNOWN, unsure.why)
        self.assertIn("reaches past it", unsure.why)

    def test_noise_floor_widens_the_band(self):
        slower = [v * 0.88 for v in self.A]
        self.assertEqual(stats.judge(self.A, slower, 0.10, 0.05).verdict, stats.LOWER)
        floored = stats.judge(self.A, slower, 0.10, 0.05, noise=0.15)
        self.assertEqual(floored.verdict, stats.SAME)
        self.assertEqual(floored.bound, 0.15)
        self.assertIn("A/A noise", floored.why)

    def test_seeded_slowdowns_and_unchanged(self):
        rng = numpy.random.default_rng(21)
        outcomes = {"slow20": [], "slow10_t1": [], "unchanged": []}
        for _ in range(100):
            a = lognormal(rng, 50e6, 0.04, 5)
            outcomes["slow20"].append(stats.judge(a, lognormal(rng, 40e6, 0.04, 5), 0.10,
                                                  0.05).verdict)
            q = lognormal(rng, 120e6, 0.01, 5)
            outcomes["slow10_t1"].append(stats.judge(q, lognormal(rng, 108e6, 0.01, 5), 0.05,
                                                     0.05).verdict)
            outcomes["unchanged"].append(stats.judge(a, lognormal(rng, 50e6, 0.04, 5), 0.10,
                                                     0.05).verdict)
        self.assertEqual(set(outcomes["slow20"]), {stats.LOWER})
        self.assertEqual(set(outcomes["slow10_t1"]), {stats.LOWER})
        self.assertEqual(set(outcomes["unchanged"]), {stats.SAME})

    def test_point_noise(self):
        rng = numpy.random.default_rng(22)
        a, b = lognormal(rng, 100.0, 0.05, 5), lognormal(rng, 100.0, 0.05, 5)
        noise = stats.point_noise(a, b, 0.05)
        self.assertGreater(noise, 0.02)
        self.assertAlmostEqual(stats.point_noise(a, [v * 0.7 for v in b], 0.05), noise,
                               places=9, msg="spread, not the offset")
        # The point's own noise never widens the SAME band: a large change in a noisy point is
        # UNKNOWN (re-measured by the gate) or LOWER, never SAME.
        noisy = [stats.judge(lognormal(rng, 100.0, 0.6, 5), lognormal(rng, 40.0, 0.6, 5),
                             0.10, 0.05) for _ in range(100)]
        self.assertTrue(all(v.bound == 0.10 for v in noisy), "band is max(tolerance, A/A)")
        self.assertFalse([v.why for v in noisy if v.verdict == stats.SAME and v.change < -0.1],
                         "a change beyond the band is never SAME")
        unchanged = [stats.judge(lognormal(rng, 100.0, 0.2, 5), lognormal(rng, 100.0, 0.2, 5),
                                 0.10, 0.05) for _ in range(100)]
        self.assertLessEqual(sum(v.verdict == stats.LOWER for v in unchanged), 10)

    def test_zero_baseline(self):
        self.assertEqual(stats.judge([0.0], [1.0], 0.05, 0.05).verdict, stats.UNKNOWN)

    def test_identical_samples(self):
        self.assertEqual(stats.mann_whitney_p([1.0, 1.0], [1.0]), 1.0)
        self.assertIsNone(stats.mann_whitney_p([], [1.0]))
        self.assertEqual(stats.judge(self.A, self.A, 0.05, 0.05).verdict, stats.SAME)

    def test_exact_counts(self):
        verdict = stats.judge([100.0], [103.0], 0.01, 0.05, exact=True)
        self.assertEqual(verdict.verdict, stats.HIGHER)
        self.assertIn("exact", verdict.why)


class RegimeVerdictTest(unittest.TestCase):
    def test_same_regime_mix_is_not_slower(self):
        rng = numpy.random.default_rng(31)
        verdicts = []
        for _ in range(100):
            verdict = stats.judge(regimes(rng, 5), regimes(rng, 5), 0.10, 0.05)
            verdicts.append(verdict.verdict)
        self.assertLessEqual(verdicts.count(stats.LOWER), 3, verdicts)
        self.assertGreaterEqual(verdicts.count(stats.SAME), 90, verdicts)

    def test_fixed_mix_is_same_within_and_on_shares(self):
        a = [130.0, 23.0, 131.0, 22.0, 129.0]
        b = [23.5, 129.5, 130.5, 22.5, 131.5]
        verdict = stats.judge(a, b, 0.10, 0.05)
        self.assertEqual(verdict.verdict, stats.SAME)
        self.assertEqual(verdict.regimes["a"]["count"], 2)
        self.assertTrue(verdict.why.startswith("bimodal: within regimes"), verdict.why)
        self.assertIn("shares 60%/40% -> 60%/40%", verdict.why)

    def test_every_regime_slower(self):
        a = [130.0, 23.0, 131.0, 22.0, 129.0, 23.5]
        b = [v * 0.8 for v in a[::-1]]
        verdict = stats.judge(a, b, 0.10, 0.05)
        self.assertEqual(verdict.verdict, stats.LOWER, verdict.why)
        self.assertAlmostEqual(verdict.change, -0.2, delta=0.01)
        self.assertEqual(verdict.regimes["within"], stats.LOWER)

    def test_lost_regime_asks_for_more(self):
        a = [130.0, 131.0, 129.0, 23.0, 22.0]
        b = [23.0, 22.5, 23.5, 22.8, 23.2]
        verdict = stats.judge(a, b, 0.10, 0.05)
        self.assertEqual(verdict.verdict, stats.UNKNOWN, verdict.why)
        self.assertIn("absent from the current run", verdict.why)
        more = stats.judge(a, b * 3, 0.10, 0.05)
        self.assertEqual(more.verdict, stats.LOWER, more.why)
        self.assertEqual(more.regimes["mix"], stats.LOWER)


if __name__ == "__main__":
    unittest.main()
