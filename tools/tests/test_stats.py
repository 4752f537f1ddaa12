"""Tests of the verdict rule and same-run ratios in kprim_tools.stats."""

import unittest

from kprim_tools import stats


class JudgeTest(unittest.TestCase):
    A = [100.0, 101.0, 99.0, 102.0, 98.0]

    def test_within_tolerance_is_same(self):
        self.assertEqual(stats.judge(self.A, [v * 1.03 for v in self.A], 0.05, 0.05).verdict,
                         stats.SAME)

    def test_large_significant_change(self):
        slower = stats.judge(self.A, [v * 0.7 for v in self.A], 0.05, 0.05)
        self.assertEqual(slower.verdict, stats.LOWER)
        self.assertAlmostEqual(slower.change, -0.3)
        self.assertLess(slower.p_value, 0.05)
        self.assertEqual(stats.judge(self.A, [v * 1.5 for v in self.A], 0.05, 0.05).verdict,
                         stats.HIGHER)

    def test_too_few_repetitions_is_unknown(self):
        verdict = stats.judge([100.0, 101.0], [70.0, 71.0], 0.05, 0.05)
        self.assertEqual(verdict.verdict, stats.UNKNOWN)
        self.assertGreaterEqual(verdict.p_value, 0.05)

    def test_zero_baseline(self):
        self.assertEqual(stats.judge([0.0], [1.0], 0.05, 0.05).verdict, stats.UNKNOWN)

    def test_identical_samples(self):
        self.assertEqual(stats.mann_whitney_p([1.0, 1.0], [1.0]), 1.0)
        self.assertIsNone(stats.mann_whitney_p([], [1.0]))


class RatioTest(unittest.TestCase):
    def test_paired_by_repetition(self):
        self.assertEqual(stats.paired_ratio({0: 10.0, 1: 20.0, 2: 5.0}, {0: 5.0, 1: 10.0}),
                         [2.0, 2.0])

    def test_scale(self):
        self.assertEqual(stats.paired_ratio({0: 30.0}, {0: 10.0}, scale=4), [0.75])

    def test_unpaired_falls_back_to_medians(self):
        self.assertEqual(stats.paired_ratio({"x": 9.0}, {0: 3.0, 1: 3.0}), [3.0])
        self.assertEqual(stats.paired_ratio({}, {0: 3.0}), [])

    def test_summary(self):
        s = stats.summarize([3.0, 1.0, 2.0])
        self.assertEqual((s.n, s.median, s.low, s.high), (3, 2.0, 1.0, 3.0))
        self.assertIsNone(stats.summarize([]))


if __name__ == "__main__":
    unittest.main()
