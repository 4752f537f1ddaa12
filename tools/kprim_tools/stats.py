"""Statistics over repetitions: summaries, regimes (modes), paired ratios and the verdict rule.

Regimes (:func:`find_modes`)
----------------------------
A contended benchmark can settle into one of several regimes per trial (two threads on a
glibc mutex run at about 130 or about 23 Mops/s here), so its repetitions are tested for
modes before anything is summarised. On the logarithms of the values, sorted,
a split into groups cuts at every gap between neighbours at least as large as a cut height,
and is allowed when:

- that height is at least ``max(log 1.25, 5 s)``, ``s`` being the groups' pooled robust spread
  (1.4826 x the median absolute deviation of each value from its own group's median): modes
  closer than 25% apart or within five spreads of each other are one mode;
- every group holds at least 2 values and 15% of all values, and there are at least 4 values,
  unless the height is huge (at least log 3: a group at least three times its neighbour),
  where a single value can be a mode of its own;
- there are at most 3 groups, and one of them holds at least 2 values (values that are all
  apart are one spread-out mode, not as many modes as values).

Of the allowed splits (each gap tried as the cut height) the one with the most modes wins.
The result is deterministic (no random numbers). A mode is reported with its median, its
share of the values and its count.

Verdict rule (:func:`judge`, shared by ``compare``, ``gate`` and ``history``)
-----------------------------------------------------------------------------
For a higher-is-better figure with baseline repetitions ``a`` and current repetitions ``b``,
a ``tolerance`` (a change too small to matter) and a ``noise`` floor (what this run's A/A
control pair cannot resolve, 0 when unknown), the SAME band is ``bound = max(tolerance,
noise)``. The point's own noise (the half-width of the interval below for the baseline
against the current run's own repetitions) never widens the band: a point too noisy to
resolve a change beyond the band is UNKNOWN, never SAME, and the gate re-measures it (a
large change hidden in a noisy point must not pass as SAME). On the logarithms:

- ``change`` is the Hodges-Lehmann estimate: exp(median of every pairwise difference
  log b_j - log a_i) - 1, the typical ratio of a current to a baseline repetition (for two
  samples that differ by a factor it is that factor, like the ratio of medians, but it uses
  all m x n pairs and moves less with one odd repetition);
- ``p_value`` is the two-sided Mann-Whitney U test (exact for small untied samples; with 5
  repetitions a side the smallest possible p is 0.008, with 4 it is 0.029, with 3 it is 0.1,
  so the default of 5 repetitions can decide at alpha 0.05);
- ``low``..``high`` is the distribution-free 1 - alpha confidence interval of the shift from
  the same pairwise differences (ranks from the exact U distribution; unbounded, ``None``,
  when the samples are too small for that level).

Then:

- ``LOWER``/``HIGHER`` (the figure's SLOWER/FASTER) when ``|change| > bound`` and ``p <
  alpha``: large and unlikely to be noise;
- ``SAME`` when ``|change| <= bound`` and either ``p >= alpha`` (a small difference nothing
  distinguishes from noise) or the whole interval lies within the band (significant but
  known to be small);
- ``UNKNOWN`` otherwise: beyond the band but not significant, or significant with an
  interval reaching past the band. ``gate`` re-measures exactly these points.

Why a point estimate inside the band is SAME without proof of equivalence: an unchanged
commit's points are then SAME whenever their difference is small, whatever their noise; an
equivalence test (interval inside the band) would leave every noisy point UNKNOWN, and the
gate fails the UNKNOWN points it cannot resolve, so ten unchanged gates would raise alarms.
A real slowdown beyond the band moves the estimate out of the band, and its significance then
decides; when the first repetitions are too few the point is UNKNOWN and re-runs add more.

Regime-aware comparison: when either side has two or more modes, the modes of the baseline
(else of the current side) are the reference regimes; every repetition is assigned to the
nearest reference mode (in log distance) and the comparison has two parts:

- *within regimes*: each repetition's log distance to its regime's reference median, the
  two sides compared by the rule above (a real slowdown of every regime is caught with all
  repetitions' power);
- *regime shares* (the mix): the mix change is exp(sum over regimes of (share_b - share_a)
  x log median) - 1, tested with Fisher's exact test on the counts (two regimes) or the
  Mann-Whitney test on the regime indices (more). It decides (LOWER/HIGHER) only when
  significant and beyond the band: with 5 repetitions a side, shares are binomial draws
  with a spread of about 22%, and a rule acting on their point estimate would fail every
  unchanged gate of a bimodal point. One exception asks for more data: a regime holding at
  least 40% (and 2) of the baseline's repetitions but none of the current's, with the mix
  change beyond the band, is UNKNOWN (re-runs show whether it was a draw).

The point's verdict is LOWER if either part is, else UNKNOWN if either is, else HIGHER if
either is, else SAME; ``change`` is the within-regime change.

For an exact (deterministic) figure such as a callgrind instruction count no test is needed:
beyond the tolerance is ``HIGHER``/``LOWER`` at once.
"""

import math
from dataclasses import dataclass

import numpy

from .tables import fmt_number, pct

SAME, HIGHER, LOWER, UNKNOWN = "SAME", "HIGHER", "LOWER", "UNKNOWN"

#: Mode detection parameters (see the module docstring).
MIN_GAP = math.log(1.25)
HUGE_GAP = math.log(3.0)
GAP_SPREADS = 5.0
MIN_MODE_SIZE = 2
MIN_MODE_SHARE = 0.15
MIN_SAMPLES = 4
MAX_MODES = 3
#: A baseline regime at least this large that the current side lacks makes the mix UNKNOWN.
LOST_REGIME_SHARE = 0.4


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


# ----------------------------------------------------------------------------- regimes


@dataclass(frozen=True)
class Mode:
    """One regime of a benchmark's repetitions: median, share of the values, count, range."""

    median: float
    share: float
    n: int
    low: float
    high: float

    def as_dict(self):
        """JSON-ready form."""
        return {"median": self.median, "share": self.share, "n": self.n, "min": self.low,
                "max": self.high}


@dataclass(frozen=True)
class Modes:
    """The modes of one sample, in increasing order of value."""

    modes: tuple
    n: int

    @property
    def count(self):
        """Number of modes (0 for an empty sample)."""
        return len(self.modes)

    @property
    def multimodal(self):
        """True with two or more modes."""
        return len(self.modes) >= 2

    def as_dict(self):
        """JSON-ready form: ``count`` and ``modes`` (highest value first)."""
        return {"count": self.count, "modes": [m.as_dict() for m in reversed(self.modes)]}

    def label(self, scale=1.0, digits=3):
        """``bimodal: 130 (60%) | 23 (40%)`` (highest first), or ``None`` when unimodal."""
        if not self.multimodal:
            return None
        word = {2: "bimodal", 3: "trimodal"}.get(self.count, f"{self.count} modes")
        parts = [f"{fmt_number(m.median / scale, digits)} ({m.share:.0%})"
                 for m in reversed(self.modes)]
        return f"{word}: " + " | ".join(parts)


def _spread(groups):
    """Pooled robust spread of sorted log groups: 1.4826 x the median absolute deviation of
    every value from its own group's median."""
    residuals = numpy.concatenate([g - numpy.median(g) for g in groups])
    return 1.4826 * float(numpy.median(numpy.abs(residuals)))


def _partition(logs, gap):
    """Split sorted ``logs`` at every neighbour gap of at least ``gap``: ``[(start, stop)]``."""
    cuts = [i + 1 for i, g in enumerate(numpy.diff(logs)) if g >= gap]
    bounds = [0] + cuts + [len(logs)]
    return list(zip(bounds[:-1], bounds[1:]))


def _allowed(logs, groups, gap):
    """True when splitting ``logs`` into ``groups`` at gaps of at least ``gap`` meets the rule
    of the module docstring."""
    total = len(logs)
    if len(groups) > MAX_MODES or max(b - a for a, b in groups) < MIN_MODE_SIZE:
        return False
    needed = max(MIN_GAP, GAP_SPREADS * _spread([logs[a:b] for a, b in groups]))
    small = any(b - a < MIN_MODE_SIZE or (b - a) / total < MIN_MODE_SHARE for a, b in groups)
    if total < MIN_SAMPLES or small:
        needed = max(needed, HUGE_GAP)
    return gap >= needed


def find_modes(values):
    """The :class:`Modes` of a list of positive values (see the module docstring).

    Every neighbour gap of the sorted logs is a candidate cut height; cutting at all gaps at
    least that large gives a partition, allowed by the rule of the module docstring or not;
    the allowed partition with the most modes wins (the larger cut height on a tie). Values
    that cannot go on the log scale (non-positive, non-finite) are left out of the detection
    and counted in the lowest mode. An empty list gives zero modes.
    """
    vals = [float(v) for v in values]
    good = sorted(v for v in vals if v > 0 and math.isfinite(v))
    bad = len(vals) - len(good)
    if not good:
        if not vals:
            return Modes((), 0)
        return Modes((Mode(float(numpy.median(vals)), 1.0, len(vals), min(vals), max(vals)),),
                     len(vals))
    logs = numpy.log(numpy.asarray(good))
    groups = [(0, len(good))]
    for gap in sorted(set(float(g) for g in numpy.diff(logs) if g > 0), reverse=True):
        if gap < MIN_GAP:
            break
        candidate = _partition(logs, gap)
        if len(candidate) > len(groups) and _allowed(logs, candidate, gap):
            groups = candidate
    total = len(vals)
    modes = []
    for index, (start, stop) in enumerate(groups):
        part = good[start:stop]
        n = len(part) + (bad if index == 0 else 0)
        modes.append(Mode(float(numpy.median(part)), n / total, n, part[0], part[-1]))
    return Modes(tuple(modes), total)


def nearest_mode(value, modes):
    """Index of the mode of ``modes`` (a :class:`Modes`) nearest ``value`` in log distance."""
    if value <= 0 or not math.isfinite(value):
        return 0
    distances = [abs(math.log(value) - math.log(m.median)) for m in modes.modes]
    return int(numpy.argmin(distances))


# ----------------------------------------------------------------------------- ratios


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


# ----------------------------------------------------------------------------- tests


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


def smallest_p(m, n):
    """The smallest two-sided exact Mann-Whitney p-value of samples of sizes ``m`` and ``n``."""
    return min(1.0, 2.0 / math.comb(m + n, m)) if m and n else 1.0


_U_CACHE = {}


def u_distribution(m, n):
    """Exact null distribution of the Mann-Whitney U statistic: ``P(U = u)`` for u = 0..mn."""
    key = (min(m, n), max(m, n))
    if key in _U_CACHE:
        return _U_CACHE[key]
    m, n = key
    # f[j] = distribution for (i, j) samples; f(i, j)[u] = i/(i+j) f(i-1, j)[u-j]
    #                                                 + j/(i+j) f(i, j-1)[u]
    prev = [numpy.ones(1) for _ in range(n + 1)]  # i = 0: U = 0 with probability 1
    for i in range(1, m + 1):
        cur = [numpy.ones(1)]
        for j in range(1, n + 1):
            dist = numpy.zeros(i * j + 1)
            dist[j:j + len(prev[j])] += prev[j] * (i / (i + j))
            dist[:len(cur[j - 1])] += cur[j - 1] * (j / (i + j))
            cur.append(dist)
        prev = cur
    _U_CACHE[key] = prev[n]
    return prev[n]


def ci_rank(m, n, alpha):
    """``k`` such that the k-th smallest and k-th largest of the m x n pairwise differences
    bound a 1 - alpha confidence interval of the shift; 0 when no interval is that sure.

    Exact for m + n <= 60, normal approximation above.
    """
    if m + n <= 60:
        cdf = numpy.cumsum(u_distribution(m, n))
        c = int(numpy.searchsorted(cdf, alpha / 2 * (1 + 1e-9), side="right")) - 1
        return c + 1 if c >= 0 else 0
    from scipy.stats import norm
    sd = math.sqrt(m * n * (m + n + 1) / 12.0)
    c = math.floor(m * n / 2.0 - norm.ppf(1 - alpha / 2) * sd - 0.5)
    return max(0, c + 1)


@dataclass(frozen=True)
class Shift:
    """Hodges-Lehmann shift of log values: estimate, confidence bounds (``None`` when
    unbounded), Mann-Whitney p."""

    change: float
    low: object
    high: object
    p_value: float
    low1: object = None   # the 1 - 2 alpha interval: each end a one-sided 1 - alpha bound
    high1: object = None


def log_shift(a, b, alpha):
    """The :class:`Shift` of positive samples ``b`` against ``a`` (relative changes)."""
    la = numpy.log(numpy.asarray(a, dtype=float))
    lb = numpy.log(numpy.asarray(b, dtype=float))
    diffs = numpy.sort((lb[:, None] - la[None, :]).ravel())
    est = float(numpy.median(diffs))

    def bounds(level):
        k = ci_rank(len(a), len(b), level)
        if not k:
            return None, None
        return math.expm1(float(diffs[k - 1])), math.expm1(float(diffs[len(diffs) - k]))

    low, high = bounds(alpha)
    low1, high1 = bounds(2 * alpha)
    return Shift(math.expm1(est), low, high, mann_whitney_p(list(la), list(lb)), low1, high1)


def fisher_p(table):
    """Two-sided p of a 2 x k table of counts: Fisher's exact test for k = 2, else the
    Mann-Whitney test on the column indices (the regimes are ordered by value)."""
    if len(table[0]) == 2:
        from scipy.stats import fisher_exact
        return float(fisher_exact(table).pvalue)
    xs = [i for i, c in enumerate(table[0]) for _ in range(c)]
    ys = [i for i, c in enumerate(table[1]) for _ in range(c)]
    return mann_whitney_p(xs, ys)


# ----------------------------------------------------------------------------- verdicts


def point_noise(a, b, alpha):
    """The difference two samples leave unresolved: exp(half-width of the 1 - alpha interval
    of their log shift) - 1 (shift-invariant: it measures spread, not the offset), or the same
    of the range of the pairwise log ratios when the samples are too small for a bounded
    interval."""
    if min(min(a), min(b)) <= 0:
        return 0.0
    shift = log_shift(a, b, alpha)
    if shift.low is not None:
        return math.expm1((math.log1p(shift.high) - math.log1p(shift.low)) / 2)
    logs = [math.log(y / x) for x in a for y in b]
    return math.expm1((max(logs) - min(logs)) / 2)


def _band_text(tolerance, noise):
    """``±10%``, ``±10% (A/A 3%)`` or ``±12% (A/A noise; tolerance ±10%)``."""
    if noise <= tolerance:
        return f"±{tolerance:.0%}" + (f" (A/A {noise:.0%})" if noise else "")
    return f"±{noise:.0%} (A/A noise; tolerance ±{tolerance:.0%})"


@dataclass(frozen=True)
class Judgement:
    """Outcome of :func:`judge`.

    ``change`` (relative, ``None`` when not computable), ``p_value``, ``verdict``, the
    interval ``low``..``high`` of the change (``None`` when unbounded), ``bound`` (the SAME
    band), ``why`` (one line of text saying what decided), and for a regime-aware comparison
    ``regimes``: ``{"a": Modes dict, "b": Modes dict, "mix_change", "mix_p", "within"}``.
    ``low1``..``high1`` is the 1 - 2 alpha interval: each end alone is a one-sided 1 - alpha
    bound, what a one-sided claim ("no slowdown beyond the band") needs at level alpha (the
    two one-sided tests of equivalence testing); ``None`` when unbounded.
    """

    change: object
    p_value: object
    verdict: str
    low: object = None
    high: object = None
    bound: float = 0.0
    why: str = ""
    regimes: object = None
    low1: object = None
    high1: object = None


def _unimodal(a, b, tolerance, alpha, noise, first=None):
    """The rule on samples without regimes; returns a :class:`Judgement`.

    The point's own noise is :func:`point_noise` of ``a`` and the first ``first`` values of
    ``b`` (all of ``b`` when ``None``) when those sizes can reach significance, else 0.
    """
    ref = b if first is None else b[:first]
    own = point_noise(a, ref, alpha) if smallest_p(len(a), len(ref)) < alpha else 0.0
    bound = max(tolerance, noise)
    band = _band_text(tolerance, noise)
    if min(min(a), min(b)) <= 0:
        med_a, med_b = median(a), median(b)
        if not med_a or med_a <= 0:
            return Judgement(None, None, UNKNOWN, bound=bound,
                             why="baseline median is not positive")
        change = med_b / med_a - 1.0
        p = mann_whitney_p(a, b)
        low = high = low1 = high1 = None
    else:
        s = log_shift(a, b, alpha)
        change, p, low, high, low1, high1 = s.change, s.p_value, s.low, s.high, s.low1, s.high1
    significant = p is not None and p < alpha
    p_text = f"p={p:.2g}" if p is not None else "no test"
    if abs(change) > bound:
        if significant:
            verdict = HIGHER if change > 0 else LOWER
            why = f"{pct(change)} beyond {band}, {p_text}"
        else:
            verdict = UNKNOWN
            floor = smallest_p(len(a), len(b))
            why = f"{pct(change)} beyond {band} but {p_text} >= {alpha:g}" + \
                (f" (n={len(a)}+{len(b)} cannot go below {floor:.2g})" if floor >= alpha
                 else "") + \
                (f"; the point's own noise is ±{own:.0%}" if abs(change) <= own else "")
    elif not significant:
        verdict, why = SAME, f"{pct(change)} within {band}"
    elif low is not None and -bound <= low and high <= bound:
        verdict = SAME
        why = f"{pct(change)} within {band} ({p_text}, interval {pct(low)}..{pct(high)})"
    else:
        verdict = UNKNOWN
        reach = "unbounded" if low is None else f"{pct(low)}..{pct(high)}"
        why = f"{pct(change)} within {band} but {p_text} and interval {reach} reaches past it"
    return Judgement(change, p, verdict, low, high, bound, why, low1=low1, high1=high1)


def _combine(parts):
    """The point's verdict from its parts: LOWER > UNKNOWN > HIGHER > SAME."""
    for word in (LOWER, UNKNOWN, HIGHER):
        if word in parts:
            return word
    return SAME


def _regime_aware(a, b, modes_a, modes_b, tolerance, alpha, noise, first=None):
    """The regime-aware comparison of the module docstring; returns a :class:`Judgement`."""
    reference = modes_a if modes_a.multimodal else modes_b
    k = reference.count
    assign_a = [nearest_mode(v, reference) for v in a]
    assign_b = [nearest_mode(v, reference) for v in b]
    centre = [math.log(m.median) for m in reference.modes]
    res_a = [math.exp(math.log(v) - centre[i]) for v, i in zip(a, assign_a)]
    res_b = [math.exp(math.log(v) - centre[i]) for v, i in zip(b, assign_b)]
    within = _unimodal(res_a, res_b, tolerance, alpha, noise, first)
    bound = within.bound
    counts_a = [assign_a.count(i) for i in range(k)]
    counts_b = [assign_b.count(i) for i in range(k)]
    share_a = [c / len(a) for c in counts_a]
    share_b = [c / len(b) for c in counts_b]
    mix = math.expm1(sum((sb - sa) * c for sa, sb, c in zip(share_a, share_b, centre)))
    mix_p = 1.0 if counts_a == [0] * k or counts_b == [0] * k else \
        fisher_p([counts_a, counts_b])
    lost = [i for i in range(k) if counts_b[i] == 0 and counts_a[i] >= MIN_MODE_SIZE
            and share_a[i] >= LOST_REGIME_SHARE]
    shares = "/".join(f"{s:.0%}" for s in reversed(share_a)) + " -> " + \
        "/".join(f"{s:.0%}" for s in reversed(share_b))
    if mix_p < alpha and abs(mix) > bound:
        mix_verdict = HIGHER if mix > 0 else LOWER
        mix_why = f"regime shares {shares} (mix {pct(mix)}, p={mix_p:.2g})"
    elif lost and abs(mix) > bound:
        mix_verdict = UNKNOWN
        mix_why = (f"a regime with {share_a[lost[0]]:.0%} of the baseline is absent from the "
                   f"current run (shares {shares}, mix {pct(mix)}, p={mix_p:.2g})")
    else:
        mix_verdict = SAME
        mix_why = f"shares {shares} (p={mix_p:.2g})"
    verdict = _combine((within.verdict, mix_verdict))
    label = reference.label() or ""
    word = label.split(":", 1)[0]
    why = f"{word}: within regimes {within.why}; {mix_why}"
    regimes = {"a": modes_a.as_dict(), "b": modes_b.as_dict(), "mix_change": mix,
               "mix_p": mix_p, "within": within.verdict, "mix": mix_verdict}
    return Judgement(within.change, within.p_value, verdict, within.low, within.high, bound,
                     why, regimes, within.low1, within.high1)


def judge(a, b, tolerance, alpha, exact=False, noise=0.0, first=None):
    """Apply the verdict rule in this module's docstring to samples ``a`` (old) and ``b`` (new).

    Both must be non-empty. ``noise`` is the A/A floor (relative, 0 when unknown). ``first``:
    how many leading values of ``b`` are the current run's own (the rest pooled re-runs); the
    point's noise is measured on them. With ``exact`` the samples are deterministic counts:
    the change of medians decides at once.
    """
    noise = float(noise or 0.0)
    if exact:
        med_a, med_b = median(a), median(b)
        if not med_a:
            return Judgement(None, None, UNKNOWN, why="baseline is zero")
        change = med_b / med_a - 1.0
        if abs(change) <= tolerance:
            return Judgement(change, None, SAME, bound=tolerance,
                             why=f"{pct(change)} within ±{tolerance:.0%} (exact counts)")
        return Judgement(change, None, HIGHER if change > 0 else LOWER, bound=tolerance,
                         why=f"{pct(change)} beyond ±{tolerance:.0%} (exact counts)")
    if min(min(a), min(b)) > 0:
        modes_a, modes_b = find_modes(a), find_modes(b)
        if modes_a.multimodal or modes_b.multimodal:
            return _regime_aware(a, b, modes_a, modes_b, tolerance, alpha, noise, first)
    return _unimodal(a, b, tolerance, alpha, noise, first)
