"""``kbench_results.py aa FILE``: the A/A table - what differences this machine can resolve.

Each family registers one control contender twice, ``X`` and its twin ``X_aa`` (identical
code, interleaved like every other benchmark; ``kprim::bench::register_control``). A pair is
two benchmarks of one run with the same family, workload and parameters whose contenders are
``X`` and ``X_aa``. For each pair, on ``ops_per_s``:

- ``change``: the verdict rule's change of ``X_aa`` against ``X`` (Hodges-Lehmann, see
  :mod:`kprim_tools.stats`), with its 1 - alpha interval;
- ``resolvable``: the half-width of that interval (with samples too small for a bounded
  interval, half the range of the pairwise ratios): the smallest difference this run's
  repetitions can tell from noise at that point. For a pair with regimes it is measured within
  regimes, as the verdict rule compares such points. It measures the spread, not the pair's
  offset, so a pair made unequal on purpose (a fault injected into ``X`` only) does not
  widen the floor; the offset shows in ``change`` and the verdict;
- ``verdict``: the rule applied to the pair with the gate's tolerance for that benchmark and no
  noise floor. It must be SAME; FASTER or SLOWER means the machine cannot resolve differences
  of that size there (``CANNOT_RESOLVE`` in the table); UNKNOWN, that the pair differs beyond
  the tolerance without significance.

Per (family, thread count) the table reports the pairs, the median change, ``resolvable`` (the
median over the pairs) and the verdict (SAME only when every pair is SAME). ``gate`` uses that
``resolvable`` of the current run as the floor of its SAME band at that (family, threads).
"""

import json

import numpy

from . import KbenchError
from .stats import HIGHER, LOWER, SAME, find_modes, judge, nearest_mode, point_noise
from .tables import pct, render
from .thresholds import REPOSITORY_THRESHOLDS, load_thresholds, tolerance_of

#: Suffix of the twin contender of an A/A control pair.
SUFFIX = "_aa"

#: Tolerance used for the pair verdicts when no thresholds file applies.
DEFAULT_TOLERANCE = 0.10


def repository_tolerances():
    """``tolerance_for(base)`` from the repository's results/thresholds.json, or ``None`` when
    that file is missing or unusable (the pair verdicts then use 10%)."""
    try:
        return tolerance_of(load_thresholds(REPOSITORY_THRESHOLDS))
    except KbenchError:
        return None


def pairs(cases):
    """``[(case X, case X_aa)]`` of one run's ``{base: Case}``, in file order."""
    out = []
    for case in cases.values():
        name = case.name
        if not name.contender.endswith(SUFFIX) or len(name.contender) <= len(SUFFIX):
            continue
        stem = cases.get(name.with_contender(name.contender[:-len(SUFFIX)]).base)
        if stem is not None:
            out.append((stem, case))
    return out


def resolvable(a, b, alpha):
    """The difference two samples of identical code leave unresolved (see module docstring):
    :func:`kprim_tools.stats.point_noise`, measured the way the verdict rule compares them.

    When either sample has regimes (:func:`kprim_tools.stats.find_modes`), the rule compares
    within regimes (each value against its regime's median), so that is what the floor
    measures too: the spread across regimes (a contended lock at 22 or 13 Mops/s from one
    trial to the next) is the regime-share test's business, and counted here it made the
    floor of a bimodal threads:2 point ±102%, wide enough to call any slowdown of it SAME.
    """
    if min(min(a), min(b)) > 0:
        modes_a, modes_b = find_modes(a), find_modes(b)
        if modes_a.multimodal or modes_b.multimodal:
            ref = modes_a if modes_a.multimodal else modes_b
            a = [v / ref.modes[nearest_mode(v, ref)].median for v in a]
            b = [v / ref.modes[nearest_mode(v, ref)].median for v in b]
    return point_noise(a, b, alpha)


def pair_rows(results, alpha=0.05, tolerance_for=None):
    """One dict per A/A pair of ``results``: names, threads, change, interval, p, resolvable,
    verdict, why. ``tolerance_for(base name)`` gives the tolerance (default 10%)."""
    rows = []
    for stem, twin in pairs(results.cases()):
        a, b = stem.values("ops_per_s"), twin.values("ops_per_s")
        if not a or not b or min(a + b) <= 0:
            continue
        tolerance = tolerance_for(stem.name.base) if tolerance_for else DEFAULT_TOLERANCE
        verdict = judge(a, b, tolerance, alpha)
        rows.append({"family": stem.name.family, "workload": stem.name.workload,
                     "contender": stem.name.contender, "benchmark": stem.name.base,
                     "threads": stem.name.threads, "change": verdict.change,
                     "low": verdict.low, "high": verdict.high, "p_value": verdict.p_value,
                     "resolvable": resolvable(a, b, alpha), "tolerance": tolerance,
                     "verdict": verdict.verdict, "why": verdict.why,
                     "n": [len(a), len(b)]})
    return rows


def table_rows(rows):
    """Per (family, threads) summary of :func:`pair_rows`, ordered by family then threads."""
    groups = {}
    for row in rows:
        groups.setdefault((row["family"], row["threads"]), []).append(row)
    out = []
    for (family, threads), group in sorted(groups.items()):
        bad = [r for r in group if r["verdict"] in (HIGHER, LOWER)]
        undecided = [r for r in group if r["verdict"] not in (SAME, HIGHER, LOWER)]
        res = float(numpy.median([r["resolvable"] for r in group]))
        changes = [r["change"] for r in group if r["change"] is not None]
        tol = max(r["tolerance"] for r in group)
        if bad:
            verdict = "CANNOT_RESOLVE"
            note = (f"{len(bad)} of {len(group)} A/A pairs differ beyond ±{tol:.0%}: this "
                    f"machine cannot resolve differences of that size at threads:{threads}")
        elif undecided:
            verdict = "UNKNOWN"
            note = (f"{len(undecided)} of {len(group)} A/A pairs undecided (beyond ±{tol:.0%}, "
                    f"not significant); differences under {res:.1%} at threads:{threads} are "
                    "noise here")
        else:
            verdict = SAME
            note = f"differences under {res:.1%} at threads:{threads} are noise here"
        out.append({"family": family, "threads": threads, "pairs": len(group),
                    "change": float(numpy.median(changes)) if changes else None,
                    "max_abs_change": max((abs(c) for c in changes), default=None),
                    "resolvable": res, "verdict": verdict, "note": note,
                    "contenders": sorted({r["contender"] for r in group})})
    return out


def noise_floor(results, alpha=0.05):
    """``{(family, threads): resolvable}`` of the run's A/A pairs (the gate's SAME floor): the
    median over a family's pairs at that thread count (:func:`pooled_noise_floor` of one run)."""
    return pooled_noise_floor([results.cases()], alpha)


def pooled_noise_floor(runs, alpha=0.05):
    """``{(family, threads): resolvable}`` of the A/A pairs pooled over ``runs`` (one run's
    ``{base: Case}`` each, e.g. the gate's paired re-runs of one side): each pair's
    repetitions from all runs together, then the median over a family's pairs at each thread
    count. The gate pools the re-runs' repetitions of a point before judging
    it, so its floor is measured on the same pooled samples: a re-run filtered to one pending
    point has one A/A pair of 5+5 repetitions, whose floor alone read ±11-14% at an
    uncontended threads:1 point whose first-run floor (the median of many pairs) was 2-4%."""
    pooled = {}
    for cases in runs:
        for stem, twin in pairs(cases):
            a, b = stem.values("ops_per_s"), twin.values("ops_per_s")
            if not a or not b or min(a + b) <= 0:
                continue
            entry = pooled.setdefault(stem.name.base,
                                      (stem.name.family, stem.name.threads, [], []))
            entry[2].extend(a)
            entry[3].extend(b)
    groups = {}
    for family, threads, a, b in pooled.values():
        groups.setdefault((family, threads), []).append(resolvable(a, b, alpha))
    return {key: float(numpy.median(v)) for key, v in groups.items()}


def pair_floor(baseline, current, alpha=0.05):
    """The SAME floor of a comparison: per ``(family, threads)``, the smaller of the two runs'
    A/A floors (the one run's where only it has the pair). A noisy current run cannot widen its
    own band past what the baseline could resolve: when a change makes the code itself noisy
    (both twins of the control slowed unevenly), its A/A pair says so, and that must not excuse
    the change."""
    a, b = noise_floor(baseline, alpha), noise_floor(current, alpha)
    return {key: min(v for v in (a.get(key), b.get(key)) if v is not None)
            for key in set(a) | set(b)}


def render_aa(results, fmt="table", alpha=0.05, tolerance_for=None):
    """The A/A report of ``results`` as ``table``, ``markdown`` or ``json`` text."""
    rows = pair_rows(results, alpha, tolerance_for)
    summary = table_rows(rows)
    if fmt == "json":
        doc = {"tool": "kbench aa", "format_version": 1, "path": results.path,
               "machine_id": results.machine_id, "alpha": alpha, "table": summary,
               "pairs": rows}
        return json.dumps(doc, indent=2, allow_nan=False)
    if not rows:
        return (f"A/A controls: {results.path} has no A/A pair (contenders X and X_aa of one "
                "family); nothing to report")
    return aa_text(summary, fmt == "markdown", results)


def aa_text(summary, markdown=False, results=None):
    """Text of a :func:`table_rows` summary: the table, then one sentence per row."""
    body = [[r["family"], str(r["threads"]), str(r["pairs"]),
             "-" if r["change"] is None else pct(r["change"]), f"{r['resolvable']:.1%}",
             r["verdict"]] for r in summary]
    title = "A/A controls (contender X vs its twin X_aa, ops/s)"
    if results is not None:
        title += f": {results.machine_id}"
    lines = [render(["family", "threads", "pairs", "A/A change", "resolvable", "verdict"], body,
                    markdown, title=title), ""]
    for r in summary:
        lines.append(f"{'- ' if markdown else ''}{r['family']} "
                     f"({', '.join(r['contenders'])}): {r['note']}")
    return "\n".join(lines)


def run_aa(args):
    """``aa FILE``: print the A/A table; exit 0 for any readable file."""
    from .results import load
    results = load(args.file)
    tolerance_for = tolerance_of(load_thresholds(args.thresholds)) if args.thresholds else None
    print(render_aa(results, args.format, args.alpha, tolerance_for))
    return 0
