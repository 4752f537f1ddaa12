"""``kbench history``: the trend of each benchmark across the runs under ``results/``.

Runs are the files ``<DIR>/**/<YYYYmmddTHHMMSSZ>-<sha>[-dirty].json`` (the names
``./kbench run`` writes), ordered by their UTC stamp. A series is one benchmark on one machine
(fingerprint); absolute figures are never mixed across machines. A change point is flagged
at run i when the pooled repetitions of the ``window`` runs before i and of the ``window``
runs from i on differ by the verdict rule of :mod:`kprim_tools.stats` (beyond tolerance and
Mann-Whitney p < alpha); of consecutive flags in one direction the most significant is kept.
Unreadable files are skipped with a ``kbench: warning:`` line; no usable run at all is an
error.
"""

import glob
import os
import re
import sys

from . import KbenchError
from .names import RUN_FILE, display_path, short, slug
from .results import dumps_strict, load
from .stats import HIGHER, LOWER, judge, summarize
from .tables import fmt_change, fmt_number, render

def find_runs(directory):
    """Load every run file under ``directory``; return ``[(stamp, Results)]`` oldest first.

    Raises :class:`KbenchError` when the directory is missing or holds no usable run.
    """
    if not os.path.isdir(directory):
        raise KbenchError(f"history: {directory} is not a directory")
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.json"), recursive=True)):
        match = RUN_FILE.match(os.path.basename(path))
        if not match:
            continue
        try:
            runs.append((match["stamp"], load(path)))
        except KbenchError as err:
            print(f"kbench: warning: skipping {err}", file=sys.stderr)
    if not runs:
        raise KbenchError(f"history: no results files (<stamp>-<sha>.json) under {directory}")
    runs.sort(key=lambda item: (item[0], item[1].path))
    return runs


def series(runs, metric, pattern=None):
    """``{(base name, fingerprint): [point]}`` with points in run order.

    A point is ``{"stamp", "sha", "machine_id", "path", "values"}``; runs without the
    benchmark (or without ``metric``) contribute no point.
    """
    out = {}
    for stamp, results in runs:
        sha = str(results.context.get("kprim_git_sha", "?"))
        for base, case in results.cases().items():
            if pattern and not pattern.search(base):
                continue
            values = case.values(metric)
            if values:
                out.setdefault((base, results.fingerprint), []).append(
                    {"stamp": stamp, "sha": sha, "machine_id": results.machine_id,
                     "path": results.path, "values": values})
    return out


def change_points(points, window, tolerance, alpha):
    """Indices of change points in ``points`` (see the module docstring), with details.

    Returns ``[{"index", "sha", "stamp", "change", "p_value", "direction"}]``.
    """
    flags, chain_end = [], None
    for i in range(1, len(points)):
        before = [v for p in points[max(0, i - window):i] for v in p["values"]]
        after = [v for p in points[i:i + window] for v in p["values"]]
        verdict = judge(before, after, tolerance, alpha)
        if verdict.verdict not in (HIGHER, LOWER):
            continue
        flag = {"index": i, "sha": points[i]["sha"], "stamp": points[i]["stamp"],
                "change": verdict.change, "p_value": verdict.p_value,
                "direction": "up" if verdict.verdict == HIGHER else "down"}
        if chain_end == i - 1 and flags[-1]["direction"] == flag["direction"]:
            strength = (flag["p_value"], -abs(flag["change"]))
            if strength < (flags[-1]["p_value"], -abs(flags[-1]["change"])):
                flags[-1] = flag
        else:
            flags.append(flag)
        chain_end = i
    return flags


def analyse(runs, metric="ops_per_s", window=3, tolerance=0.10, alpha=0.05, pattern=None):
    """The history report: one entry per series with medians and flagged change points."""
    entries = []
    for (base, fingerprint), points in series(runs, metric, pattern).items():
        medians = [summarize(p["values"]).median for p in points]
        entries.append({
            "benchmark": base, "fingerprint": fingerprint, "machine_id": points[0]["machine_id"],
            "metric": metric, "runs": len(points),
            "points": [{"stamp": p["stamp"], "sha": p["sha"], "path": p["path"],
                        **summarize(p["values"]).as_dict()} for p in points],
            "first": medians[0], "last": medians[-1],
            "change": medians[-1] / medians[0] - 1 if medians[0] else None,
            "change_points": change_points(points, max(1, window), tolerance, alpha)})
    return entries


def plot_history(entries, out):
    """One PNG per benchmark: median with min..max bars per run, a line per machine.

    Change points are marked with dashed vertical lines. Returns the written paths.
    """
    from .plots import pyplot
    plt = pyplot()
    os.makedirs(out, exist_ok=True)
    by_bench = {}
    for entry in entries:
        by_bench.setdefault(entry["benchmark"], []).append(entry)
    written = []
    for base, group in by_bench.items():
        stamps = sorted({p["stamp"] for e in group for p in e["points"]})
        position = {s: i for i, s in enumerate(stamps)}
        fig, ax = plt.subplots(figsize=(max(6.4, 0.5 * len(stamps) + 3), 4))
        labels = {}
        for entry in group:
            xs = [position[p["stamp"]] for p in entry["points"]]
            ys = [p["median"] for p in entry["points"]]
            err = [[p["median"] - p["min"] for p in entry["points"]],
                   [p["max"] - p["median"] for p in entry["points"]]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=entry["machine_id"])
            for p in entry["points"]:
                labels[position[p["stamp"]]] = f"{p['sha'][:7]}\n{p['stamp'][4:8]}"
            for cp in entry["change_points"]:
                ax.axvline(xs[cp["index"]] - 0.5, color="red", linestyle="--", linewidth=1)
        ax.set_xticks(sorted(labels))
        ax.set_xticklabels([labels[i] for i in sorted(labels)], fontsize="x-small")
        ax.set_ylabel(group[0]["metric"])
        ax.set_title(short(base), fontsize="small")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = os.path.join(out, slug(short(base)) + ".png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def render_history(entries, fmt):
    """Text (``table``/``markdown``) or ``json`` rendering of :func:`analyse` entries."""
    if fmt == "json":
        return dumps_strict({"tool": "kbench history", "format_version": 1,
                             "series": entries}, indent=2)
    scale = 1e6 if entries and entries[0]["metric"] == "ops_per_s" else 1.0
    rows = []
    for e in entries:
        cps = ", ".join(f"{cp['sha'][:7]} {fmt_change(cp['change'])}"
                        for cp in e["change_points"]) or "-"
        rows.append([short(e["benchmark"]), e["machine_id"], str(e["runs"]),
                     fmt_number(e["first"] / scale), fmt_number(e["last"] / scale),
                     fmt_change(e["change"]), cps])
    return render(["benchmark", "machine", "runs", "first median", "last median", "change",
                   "change points"], rows, fmt == "markdown",
                  title=f"history of {entries[0]['metric']}"
                  + (" (Mops/s)" if scale > 1 else ""))


def run_history(args, root):
    """``kbench history`` from parsed arguments; returns the exit status."""
    try:
        pattern = re.compile(args.filter) if args.filter else None
    except re.error as err:
        raise KbenchError(f"history: bad --filter regex: {err}") from None
    entries = analyse(find_runs(args.dir), args.metric, args.window, args.tolerance, args.alpha,
                      pattern)
    if not entries:
        raise KbenchError(f"history: no benchmark has {args.metric!r} in the selected runs")
    print(render_history(entries, args.format))
    if not args.no_plots:
        out = args.out or os.path.join(root, "plots", "history")
        written = plot_history(entries, out)
        print(f"kbench: {len(written)} history plots in {display_path(out)}",
              file=sys.stderr if args.format == "json" else sys.stdout)
    return 0
