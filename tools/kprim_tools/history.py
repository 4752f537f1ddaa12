"""``kbench history``: the trend of each benchmark across the runs of the results store.

``history [DIR]`` first ingests the results files under ``DIR`` (default ``results/``) that
the store does not hold yet (files named ``<YYYYmmddTHHMMSSZ>-<sha>[-dirty].json``, the names
``./kbench run`` writes; a known file is recognised by path, size and mtime without being
read), then queries the store (:mod:`kprim_tools.store`: ``--store URL``, else
``$KBENCH_STORE``, else ``DIR/kbench.sqlite``) instead of loading every file. Runs are ordered
by their UTC stamp; fault-injection runs are left out. A series is one benchmark on one
machine (fingerprint); absolute figures are never mixed across machines.

Change points: a change point is flagged at run i when the pooled repetitions of the
``window`` runs before i and of the ``window`` runs from i on differ by the verdict rule of
:mod:`kprim_tools.stats` (beyond tolerance and Mann-Whitney p < alpha); of consecutive flags in
one direction the most significant is kept. At scale (a year of nightly runs x 1,800
benchmarks) that rule is only evaluated at candidate runs: run i is a candidate when the
median of the per-run medians of the ``window`` runs from i differs from that of the
``window`` runs before i by more than half the tolerance (the per-run medians come from the
store's ``cases`` table; a series without candidates is never fetched repetition by
repetition). Unreadable files are skipped with a ``kbench: warning:`` line; no usable run at
all is an error. Plots only with ``--plot``, only of series with a change point or, with
``--filter``, of every matching series.
"""

import glob
import os
import re
import sys

import numpy

from . import KbenchError
from .names import RUN_FILE, display_path, short, slug
from .results import dumps_strict
from .stats import HIGHER, LOWER, judge
from .store import open_store
from .tables import fmt_change, fmt_number, render

#: Metrics the store's ``cases`` table summarises (others are computed from the samples).
SUMMARISED = ("ops_per_s",)


def sync(store, directory):
    """Ingest the run files under ``directory`` the store does not hold yet.

    Returns ``(files seen, files ingested)``; unusable files are skipped with a warning.
    """
    if not os.path.isdir(directory):
        raise KbenchError(f"history: {directory} is not a directory")
    known = store.known_files()
    seen = added = 0
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.json"), recursive=True)):
        if not RUN_FILE.match(os.path.basename(path)):
            continue
        seen += 1
        try:
            st = os.stat(path)
        except OSError:
            continue
        if known.get(os.path.abspath(path)) == (st.st_size, st.st_mtime_ns):
            continue
        try:
            store.ingest(path)
            added += 1
        except KbenchError as err:
            print(f"kbench: warning: skipping {err}", file=sys.stderr)
    return seen, added


def change_points(points, window, tolerance, alpha, candidates=None):
    """Indices of change points in ``points`` (``{"sha", "stamp", "values"}`` dicts, see the
    module docstring), with details; only ``candidates`` (indices) are judged when given.

    Returns ``[{"index", "sha", "stamp", "change", "p_value", "direction"}]``.
    """
    flags, chain_end = [], None
    for i in (range(1, len(points)) if candidates is None else candidates):
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


def candidates(medians, window, tolerance):
    """Runs ``i`` (ascending) where the median of ``medians[i:i+window]`` differs from that of
    ``medians[i-window:i]`` by more than half the tolerance (see the module docstring)."""
    values = numpy.asarray(medians, dtype=float)
    n = len(values)
    if n < 2:
        return []
    out = []
    limit = tolerance / 2
    if n > window:
        rolling = numpy.median(numpy.lib.stride_tricks.sliding_window_view(values, window),
                               axis=1)  # rolling[j] = median(values[j:j+window])
        full = numpy.arange(window, n - window + 1)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            ratio = rolling[full] / rolling[full - window] - 1
        out += [int(i) for i in full[~(numpy.abs(ratio) <= limit)]]
    else:
        full = numpy.arange(0)
    inner = set(int(i) for i in full)
    for i in range(1, n):
        if i in inner:
            continue
        before = numpy.median(values[max(0, i - window):i])
        after = numpy.median(values[i:i + window])
        if not (before > 0 and abs(after / before - 1) <= limit):
            out.append(i)
    return sorted(out)


def _store_series(store, pattern, metric):
    """``(runs by id, {(benchmark id, fingerprint): [(position, n, median, min, max, q1, q3)]},
    {benchmark id: base name}, {fingerprint: [run]})`` of the store's runs (injected left out).

    ``position`` is the run's index among its machine's runs, oldest first.
    """
    runs = [r for r in store.runs() if not r["injected"]]
    by_machine, where = {}, {}
    for run in runs:
        line = by_machine.setdefault(run["fingerprint"], [])
        where[run["id"]] = (run["fingerprint"], len(line))
        line.append(run)
    names = {i: n for i, n in store.benchmark_names().items()
             if not pattern or pattern.search(n)}
    out = {}
    if metric in SUMMARISED:
        for run, bench, n, med, low, high, q1, q3 in store.summaries():
            if bench in names and run in where:
                fingerprint, position = where[run]
                out.setdefault((bench, fingerprint), []).append(
                    (position, n, med, low, high, q1, q3))
    else:
        ids = {n: i for i, n in names.items()}
        for run in runs:
            fingerprint, position = where[run["id"]]
            for base, case in store.load_run(run["id"]).cases().items():
                values = case.values(metric) if base in ids else []
                if values:
                    ordered = sorted(values)
                    q = numpy.percentile(ordered, [25, 50, 75])
                    out.setdefault((ids[base], fingerprint), []).append(
                        (position, len(ordered), float(q[1]), ordered[0], ordered[-1],
                         float(q[0]), float(q[2]), values))
    for points in out.values():
        points.sort()
    return where, out, names, by_machine


def analyse_store(store, metric="ops_per_s", window=3, tolerance=0.10, alpha=0.05,
                  pattern=None):
    """The history report: one entry per series with first/last medians and change points.

    An entry's ``_points`` (internal) holds the per-run summaries; :func:`points` turns them
    into the JSON/plot form.
    """
    window = max(1, window)
    _, series, names, by_machine = _store_series(store, pattern, metric)
    entries = []
    for (bench, fingerprint), rows in series.items():
        line = by_machine[fingerprint]
        medians = [row[2] for row in rows]
        found = []
        todo = candidates(medians, window, tolerance)
        if todo:
            if metric in SUMMARISED:
                values = store.values(bench, [line[row[0]]["id"] for row in rows], metric)
                per_run = [values.get(line[row[0]]["id"], []) for row in rows]
            else:
                per_run = [row[7] for row in rows]
            pts = [{"sha": line[row[0]]["git_sha"], "stamp": line[row[0]]["stamp"],
                    "values": v} for row, v in zip(rows, per_run)]
            found = change_points(pts, window, tolerance, alpha, todo)
        entries.append({
            "benchmark": names[bench], "fingerprint": fingerprint,
            "machine_id": line[0]["machine_id"], "metric": metric, "runs": len(rows),
            "first": medians[0], "last": medians[-1],
            "change": medians[-1] / medians[0] - 1 if medians[0] else None,
            "change_points": found, "_points": (line, rows)})
    entries.sort(key=lambda e: (e["machine_id"], e["fingerprint"], e["benchmark"]))
    return entries


def points(entry):
    """The per-run points of an :func:`analyse_store` entry: ``{"stamp", "sha", "path", "n",
    "median", "min", "max", "q1", "q3"}``."""
    line, rows = entry["_points"]
    return [{"stamp": line[row[0]]["stamp"], "sha": line[row[0]]["git_sha"],
             "path": line[row[0]]["path"], "n": row[1], "median": row[2], "min": row[3],
             "max": row[4], "q1": row[5], "q3": row[6]} for row in rows]


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
        pts = {id(e): points(e) for e in group}
        stamps = sorted({p["stamp"] for e in group for p in pts[id(e)]})
        position = {s: i for i, s in enumerate(stamps)}
        fig, ax = plt.subplots(figsize=(max(6.4, 0.5 * len(stamps) + 3), 4))
        labels = {}
        for entry in group:
            mine = pts[id(entry)]
            xs = [position[p["stamp"]] for p in mine]
            ys = [p["median"] for p in mine]
            err = [[p["median"] - p["min"] for p in mine], [p["max"] - p["median"] for p in mine]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=entry["machine_id"])
            for p in mine:
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


def public(entry):
    """An :func:`analyse_store` entry in its JSON form (``points`` filled in)."""
    out = {k: v for k, v in entry.items() if not k.startswith("_")}
    out["points"] = points(entry)
    return out


def render_history(entries, fmt):
    """Text (``table``/``markdown``) or ``json`` rendering of :func:`analyse_store` entries."""
    if fmt == "json":
        return dumps_strict({"tool": "kbench history", "format_version": 1,
                             "series": [public(e) for e in entries]}, indent=2)
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


def _writable_dir(out):
    """Create ``out`` when missing; :class:`KbenchError` unless it is a writable directory."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise KbenchError(f"history: cannot create --out {out}: {err.strerror or err}") from None
    if not os.path.isdir(out) or not os.access(out, os.W_OK | os.X_OK):
        raise KbenchError(f"history: --out {out} is not a writable directory")


def run_history(args, root):
    """``kbench history`` from parsed arguments; returns the exit status."""
    try:
        pattern = re.compile(args.filter) if args.filter else None
    except re.error as err:
        raise KbenchError(f"history: bad --filter regex: {err}") from None
    if not os.path.isdir(args.dir):
        raise KbenchError(f"history: {args.dir} is not a directory")
    out = args.out or os.path.join(root, "plots", "history")
    if args.plot:
        _writable_dir(out)
    with open_store(getattr(args, "store", None),
                    default_path=os.path.join(args.dir, "kbench.sqlite")) as store:
        sync(store, args.dir)
        if not store.runs():
            raise KbenchError(f"history: no results files (<stamp>-<sha>.json) under {args.dir}"
                              " and no runs in the store")
        entries = analyse_store(store, args.metric, args.window, args.tolerance, args.alpha,
                                pattern)
        if not entries:
            raise KbenchError(f"history: no benchmark has {args.metric!r} in the selected runs")
        print(render_history(entries, args.format))
    if args.plot:
        chosen = [e for e in entries if e["change_points"] or pattern]
        written = plot_history(chosen, out)
        print(f"kbench: {len(written)} history plots in {display_path(out)}",
              file=sys.stderr if args.format == "json" else sys.stdout)
    return 0
