"""``kbench compare``: compare runs benchmark by benchmark, with a verdict per row.

Two runs from the same machine (same ``kprim_fingerprint``) are compared on absolute
throughput. Runs from different machines are compared only on figures that mean the same
across machines: the same-run ratio to a reference contender (``std_mutex`` by default),
scaling efficiency (throughput at N threads / (N x throughput at 1 thread)) and fairness;
absolute throughput across machines only with ``--absolute``, and labelled so. The first
file is the baseline of every comparison. The JSON form is described in results/SCHEMA.md.

Verdicts come from :func:`kprim_tools.stats.judge`, the rule ``gate`` uses, with the later
run's A/A noise (:mod:`kprim_tools.aa`) as the floor of the SAME band; a multimodal point is
compared regime by regime and shown with its modes (``bimodal: 130 (60%) | 23 (40%)``), never
as a bare median. A run recorded with a fault injection (context ``kprim_inject``) is
labelled INJECTED.
"""

import re
from dataclasses import dataclass

from . import KbenchError
from .emulation import refuse_emulated
from .stats import HIGHER, LOWER, find_modes, judge, paired_ratio, summarize
from . import tables
from .names import short
from .results import dumps_strict
from .tables import fmt_change, fmt_p, fmt_summary

ONLY_IN_A, ONLY_IN_B = "ONLY_IN_A", "ONLY_IN_B"
NO_DATA_IN_A, NO_DATA_IN_B = "NO_DATA_IN_A", "NO_DATA_IN_B"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Metric:
    """A higher-is-better figure compared between runs.

    ``kind`` is ``absolute`` (a counter, ``counter``), ``ratio`` (same-run throughput over
    the ``reference`` contender's) or ``scaling`` (throughput at N over N x throughput at 1).
    ``words`` names the verdicts for a higher and a lower value. ``exact`` marks a
    deterministic count (no significance test, see :func:`kprim_tools.stats.judge`).
    """

    key: str
    kind: str
    title: str
    counter: str = "ops_per_s"
    reference: str = ""
    words: tuple = ("FASTER", "SLOWER")
    scale: float = 1.0
    exact: bool = False

    def one_run(self, cases, name):
        """Samples of this metric for benchmark ``name`` in one run's ``{base: Case}``.

        Returns ``None`` when the metric does not apply there (benchmark absent, it is the
        reference itself, or the reference / 1-thread point is missing).
        """
        case = cases.get(name.base)
        if case is None:
            return None
        if self.kind == "absolute":
            return case.values(self.counter)
        if self.kind == "ratio":
            if name.contender == self.reference:
                return None
            other, scale = cases.get(name.with_contender(self.reference).base), 1.0
        else:
            if name.threads == 1 or not dict(name.params).get("threads"):
                return None
            other, scale = cases.get(name.with_threads(1).base), float(name.threads)
        if other is None:
            return None
        return paired_ratio(case.by_repetition(self.counter), other.by_repetition(self.counter),
                            scale)

    def samples(self, runs, name):
        """Samples pooled over several runs' case maps (``None`` when it applies to none)."""
        pooled, applies = [], False
        for cases in runs:
            values = self.one_run(cases, name)
            if values is not None:
                applies = True
                pooled += values
        return pooled if applies else None


def absolute(cross_machine=False):
    """Absolute throughput (Mops/s); labelled when the runs are from different machines."""
    title = "throughput, Mops/s (absolute"
    title += ", DIFFERENT machines: not comparable hardware)" if cross_machine else ")"
    return Metric("ops_per_s", "absolute", title, scale=1e6)


def ratio(reference):
    """Same-run throughput ratio to ``reference``."""
    return Metric(f"ratio_to_{reference}", "ratio", f"throughput / {reference} (same run)",
                  reference=reference)


SCALING = Metric("scaling_efficiency", "scaling",
                 "scaling efficiency: ops/s at N / (N x ops/s at 1)")
INSTRUCTIONS = Metric("instructions_per_op", "absolute",
                      "callgrind instructions per operation (lower is better)",
                      counter="instructions_per_op", words=("SLOWER", "FASTER"), exact=True)
FAIRNESS = Metric("fairness", "absolute", "Jain fairness index", counter="fairness",
                  words=("FAIRER", "LESS_FAIR"))


def judge_row(name, metric, a_runs, b_runs, tolerance, alpha, noise=0.0):
    """Compare one benchmark on one metric; return a row dict or ``None`` if it never applies.

    Row keys: ``benchmark``, ``metric``, ``a``/``b`` (summaries or ``None``; with ``modes``
    when that side is multimodal), ``change``, ``p_value``, ``low``/``high`` (interval of the
    change, ``None`` when unbounded; ``low1``/``high1`` the 1 - 2 alpha one, whose ends are
    one-sided 1 - alpha bounds), ``bound`` (the SAME band: max(tolerance, ``noise``)),
    ``why`` (what decided), ``verdict`` (``SAME``, the metric's words, ``UNKNOWN``;
    ``ONLY_IN_A`` or ``ONLY_IN_B`` when the figure exists in one run only; ``NO_DATA_IN_A``
    or ``NO_DATA_IN_B`` when a run has the benchmark but no valid trial: errors, abandoned
    workers).
    """
    a, b = metric.samples(a_runs, name), metric.samples(b_runs, name)
    if a is None and b is None:
        return None
    row = {"benchmark": name.base, "metric": metric.key, "a": None, "b": None,
           "change": None, "p_value": None, "low": None, "high": None, "low1": None,
           "high1": None, "bound": None, "why": ""}
    for side, values in (("a", a), ("b", b)):
        scaled = [v / metric.scale for v in values or []]
        s = summarize(scaled)
        row[side] = s.as_dict() if s else None
        if s and not metric.exact:
            modes = find_modes(scaled)
            if modes.multimodal:
                row[side]["modes"] = modes.as_dict()
                row[side]["label"] = modes.label()
    if a is None or b is None:
        row["verdict"] = ONLY_IN_B if a is None else ONLY_IN_A
        return row
    if not a or not b:
        row["verdict"] = NO_DATA_IN_A if not a else NO_DATA_IN_B
        return row
    first = len(metric.one_run(b_runs[0], name) or []) if len(b_runs) > 1 else None
    verdict = judge(a, b, tolerance, alpha, metric.exact, noise, first)
    word = {HIGHER: metric.words[0], LOWER: metric.words[1]}.get(verdict.verdict,
                                                                  verdict.verdict)
    row.update(change=verdict.change, p_value=verdict.p_value, verdict=word, low=verdict.low,
               high=verdict.high, bound=verdict.bound, why=verdict.why, low1=verdict.low1,
               high1=verdict.high1)
    if verdict.regimes:
        row["mix_change"] = verdict.regimes["mix_change"]
    return row


def injection(results):
    """The run's ``kprim_inject`` value (empty when it is a normal run)."""
    return str(results.context.get("kprim_inject") or "").strip()


def noise_of(a, b, name, metric):
    """The A/A floor of comparing run ``b`` with baseline ``a`` for benchmark ``name``: the
    smaller of the two runs' (:func:`kprim_tools.aa.pair_floor`); 0 for exact metrics or no pair."""
    if metric.exact:
        return 0.0
    from .aa import pair_floor
    cache = b.__dict__.setdefault("_kbench_aa_floor", {})
    if a.path not in cache:
        cache[a.path] = pair_floor(a, b)
    return cache[a.path].get((name.family, name.threads), 0.0)


def union_names(*case_maps):
    """Parsed names of every benchmark in the maps, first map's order first."""
    seen = {}
    for cases in case_maps:
        for base, case in cases.items():
            seen.setdefault(base, case.name)
    return list(seen.values())


def run_info(results):
    """The identifying facts of one run, for report headers."""
    ctx = results.context
    return {"path": results.path, "machine_id": results.machine_id,
            "fingerprint": results.fingerprint, "git_sha": str(ctx.get("kprim_git_sha", "")),
            "date": str(ctx.get("date", "")), "inject": injection(results)}


def check_kinds(a, b):
    """Raise :class:`KbenchError` unless ``a`` and ``b`` are both timing or both callgrind
    files (valgrind's timings are meaningless next to real ones)."""
    if a.callgrind != b.callgrind:
        cg = a if a.callgrind else b
        raise KbenchError(f"{cg.path} holds callgrind instruction counts; compare it only with "
                          "another callgrind file")


def compare_pair(a, b, reference, absolute_across, tolerance, alpha, pattern):
    """Compare run ``b`` against baseline ``a`` (both Results); return a comparison dict.

    Raises :class:`KbenchError` when either is an emulated run (its timings are the emulator's).
    """
    refuse_emulated("compare", a, b)
    check_kinds(a, b)
    same = bool(a.fingerprint) and a.fingerprint == b.fingerprint
    if a.callgrind and b.callgrind:
        metrics = [INSTRUCTIONS]
    elif same:
        metrics = [absolute()]
    else:
        metrics = [ratio(reference), SCALING, FAIRNESS]
        if absolute_across:
            metrics.append(absolute(cross_machine=True))
    a_cases, b_cases = a.cases(), b.cases()
    tables = []
    for metric in metrics:
        rows = []
        for name in union_names(a_cases, b_cases):
            if pattern and not pattern.search(name.base):
                continue
            row = judge_row(name, metric, [a_cases], [b_cases], tolerance, alpha,
                            noise_of(a, b, name, metric))
            if row is not None:
                rows.append(row)
        tables.append({"metric": metric.key, "title": metric.title, "rows": rows})
    mode = "instructions" if metrics == [INSTRUCTIONS] else \
        "absolute" if same else "same-run figures"
    return {"a": run_info(a), "b": run_info(b), "same_machine": same, "mode": mode,
            "tables": tables}


def compare_runs(runs, reference="std_mutex", absolute=False, tolerance=0.05, alpha=0.05,
                 name_filter=None):
    """Compare every run after the first against the first; return the report dict.

    Raises :class:`KbenchError` for fewer than two runs or a bad ``name_filter`` regex.
    """
    if len(runs) < 2:
        raise KbenchError("compare: needs at least two results files")
    try:
        pattern = re.compile(name_filter) if name_filter else None
    except re.error as err:
        raise KbenchError(f"compare: bad --filter regex: {err}") from None
    return {"tool": "kbench compare", "format_version": FORMAT_VERSION,
            "reference": reference, "tolerance": tolerance, "alpha": alpha,
            "comparisons": [compare_pair(runs[0], other, reference, absolute, tolerance, alpha,
                                         pattern) for other in runs[1:]]}


def _label(verdict):
    """Readable form of a verdict (``only in A`` for ``ONLY_IN_A``)."""
    return {ONLY_IN_A: "only in A", ONLY_IN_B: "only in B", NO_DATA_IN_A: "no valid trial in A",
            NO_DATA_IN_B: "no valid trial in B"}.get(verdict, verdict)


def render(report, fmt="table"):
    """Render a :func:`compare_runs` report as ``table``, ``markdown`` or ``json`` text."""
    if fmt == "json":
        return dumps_strict(report, indent=2)
    markdown = fmt == "markdown"
    out = []
    for comp in report["comparisons"]:
        a, b = comp["a"], comp["b"]
        head = "".join(f"{side} = {run['path']} ({run['machine_id']}, git {run['git_sha']})"
                       + (f" INJECTED (kprim_inject {run['inject']})" if run.get("inject")
                          else "") + "\n" for side, run in (("A", a), ("B", b)))
        head += {"instructions": "callgrind instruction counts (deterministic, no test)",
                 "absolute": "same machine: absolute comparison"}.get(
                     comp["mode"], "DIFFERENT machines: same-run ratios, scaling efficiency "
                                   "and fairness only")
        out.append(("**" + head.replace("\n", "**  \n**") + "**") if markdown else head)
        counts = {}
        for table in comp["tables"]:
            rows = []
            for row in table["rows"]:
                counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
                rows.append([short(row["benchmark"]), cell(row["a"]), cell(row["b"]),
                             fmt_change(row["change"]), fmt_p(row["p_value"]),
                             _label(row["verdict"]), row.get("why", "")])
            if rows:
                out.append(render_table(table["title"], rows, markdown))
        out.append("verdicts: " + ", ".join(f"{_label(k)} {v}" for k, v in sorted(counts.items()))
                   + f" (tolerance {report['tolerance']:.0%}, alpha {report['alpha']})")
    return "\n\n".join(out)


def cell(summary):
    """A side's cell: ``median (n=N)``, or its modes when multimodal (never a bare median)."""
    if summary and summary.get("label"):
        return f"{summary['label']} (n={summary['n']})"
    return fmt_summary(summary)


def render_table(title, rows, markdown):
    """One metric's table with the compare columns."""
    return tables.render(["benchmark", "A median", "B median", "change", "p", "verdict", "why"],
                         rows, markdown, title=title)
