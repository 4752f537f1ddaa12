"""Statistics over repetitions: summaries, paired same-run ratios, Mann-Whitney verdicts.

Verdict rule (shared by ``compare``, ``gate`` and ``history``), for a higher-is-better metric
with baseline samples ``a`` and new samples ``b``:

- ``change`` = median(b) / median(a) - 1;
- ``SAME`` when ``|change| <= tolerance`` (a difference too small to matter);
- ``HIGHER``/``LOWER`` when ``|change| > tolerance`` and the two-sided Mann-Whitney U test
  gives ``p < alpha`` (the difference is both large and unlikely to be noise);
- ``UNKNOWN`` otherwise: large but not significant, e.g. too few repetitions (with 3 and 3
  the smallest possible p is 0.1), which is what ``gate --rerun`` resolves.

For an exact (deterministic) figure such as a callgrind instruction count no test is needed:
beyond tolerance is ``HIGHER``/``LOWER`` at once.
"""

import math
from dataclasses import dataclass

import numpy

SAME, HIGHER, LOWER, UNKNOWN = "SAME", "HIGHER", "LOWER", "UNKNOWN"


@dataclass(frozen=True)
class Summary:
    """Order statistics of one benchmark's repetitions."""

    n: int
    median: float
    low: float
    high: float
    q1: float
    q3: float

    def as_dict(self):
        """JSON-ready form: ``n``, ``median``, ``min``, ``max``, ``q1``, ``q3``."""
        return {"n": self.n, "median": self.median, "min": self.low, "max": self.high,
                "q1": self.q1, "q3": self.q3}


def summarize(values):
    """:class:`Summary` of a non-empty list of floats, or ``None`` for an empty one."""
    if not values:
        return None
    arr = numpy.asarray(values, dtype=float)
    q1, median, q3 = numpy.percentile(arr, [25, 50, 75])
    return Summary(len(values), float(median), float(arr.min()), float(arr.max()), float(q1),
                   float(q3))


def median(values):
    """Median of a non-empty list of floats, ``None`` for an empty one."""
    return float(numpy.median(values)) if values else None


def paired_ratio(numerator, denominator, scale=1.0):
    """Same-run ratios ``numerator[i] / (scale * denominator[i])`` paired by repetition index.

    Both arguments are ``{repetition_index: value}``. When the two share no index (e.g. one
    side holds only an aggregate) the ratio of medians is returned as a single sample; empty
    input or a zero denominator gives ``[]``.
    """
    common = sorted(set(numerator) & set(denominator))
    pairs = [(numerator[i], denominator[i]) for i in common]
    if not pairs and numerator and denominator:
        pairs = [(median(list(numerator.values())), median(list(denominator.values())))]
    return [n / (scale * d) for n, d in pairs if d]


def mann_whitney_p(a, b):
    """Two-sided Mann-Whitney U p-value for samples ``a`` and ``b``.

    Returns 1.0 when every value is identical and ``None`` when either sample is empty.
    """
    if not a or not b:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0
    from scipy.stats import mannwhitneyu
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p


@dataclass(frozen=True)
class Judgement:
    """Outcome of :func:`judge`: relative change of medians, p-value and verdict."""

    change: object
    p_value: object
    verdict: str


def judge(a, b, tolerance, alpha, exact=False):
    """Apply the verdict rule in this module's docstring to samples ``a`` (old) and ``b`` (new).

    Both must be non-empty; a zero baseline median gives ``UNKNOWN`` with no change. With
    ``exact`` the samples are deterministic counts and the significance test is skipped.
    """
    med_a, med_b = median(a), median(b)
    if not med_a:
        return Judgement(None, None, UNKNOWN)
    change = med_b / med_a - 1.0
    p = mann_whitney_p(a, b)
    if abs(change) <= tolerance:
        return Judgement(change, p, SAME)
    if exact or (p is not None and p < alpha):
        return Judgement(change, p, HIGHER if change > 0 else LOWER)
    return Judgement(change, p, UNKNOWN)
