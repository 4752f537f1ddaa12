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
import math
import os
import re
import sys
from array import array

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
    seen, todo = 0, []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.json"), recursive=True)):
        if not RUN_FILE.match(os.path.basename(path)):
            continue
        seen += 1
        try:
            st = os.stat(path)
        except OSError:
            continue
        if known.get(os.path.abspath(path)) != (st.st_size, st.st_mtime_ns):
            todo.append(path)
    added = sum(1 for _ in store.ingest_many(todo, on_error=lambda err: print(
        f"kbench: warning: skipping {err}", file=sys.stderr)))
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


class Series:
    """One benchmark on one machine: per-run summaries as arrays, oldest run first.

    ``pos`` indexes the machine's run list (``line``); ``n``, ``median``, ``low``, ``high``,
    ``q1``, ``q3`` summarise the run's valid repetitions; ``values`` (a list of lists) only
    for a metric the store does not summarise.
    """

    FIELDS = ("pos", "n", "median", "low", "high", "q1", "q3")

    def __init__(self):
        self.cols = (array("l"), array("l"), array("d"), array("d"), array("d"), array("d"),
                     array("d"))
        self.values = None

    def add(self, row, values=None):
        """Append one run's ``(pos, n, median, min, max, q1, q3)``."""
        for col, value in zip(self.cols, row):
            col.append(value)
        if values is not None:
            self.values = (self.values or []) + [values]

    def freeze(self):
        """Sort by run (numpy arrays from here on)."""
        order = numpy.argsort(numpy.frombuffer(self.cols[0], dtype=numpy.int_), kind="stable")
        for name, col in zip(self.FIELDS, self.cols):
            setattr(self, name, numpy.asarray(col)[order] if len(col) else numpy.asarray(col))
        if self.values is not None:
            self.values = [self.values[i] for i in order]
        del self.cols
        return self


def _store_series(store, pattern, metric):
    """``({(benchmark id, fingerprint): Series}, {benchmark id: base name}, {fingerprint:
    [run]})`` of the store's runs, fault-injection runs left out."""
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
                key = (bench, fingerprint)
                series = out.get(key)
                if series is None:
                    series = out[key] = Series()
                series.add((position, n, med, low, high, q1, q3))
    else:
        ids = {n: i for i, n in names.items()}
        for run in runs:
            fingerprint, position = where[run["id"]]
            for base, case in store.load_run(run["id"]).cases().items():
                values = case.values(metric) if base in ids else []
                if values:
                    q1, med, q3 = numpy.percentile(values, [25, 50, 75])
                    out.setdefault((ids[base], fingerprint), Series()).add(
                        (position, len(values), med, min(values), max(values), q1, q3), values)
    return {k: v.freeze() for k, v in out.items()}, names, by_machine


def analyse_store(store, metric="ops_per_s", window=3, tolerance=0.10, alpha=0.05,
                  pattern=None):
    """The history report: one entry per series with first/last medians and change points.

    An entry's ``_series`` (internal) holds the per-run summaries; :func:`points` turns them
    into the JSON/plot form.
    """
    window = max(1, window)
    series, names, by_machine = _store_series(store, pattern, metric)
    entries = []
    for (bench, fingerprint), line_series in series.items():
        line = by_machine[fingerprint]
        medians = line_series.median
        found = []
        todo = candidates(medians, window, tolerance)
        if todo:
            ids = [line[p]["id"] for p in line_series.pos]
            if line_series.values is None:
                values = store.values(bench, ids, metric)
                per_run = [values.get(i, []) for i in ids]
            else:
                per_run = line_series.values
            pts = [{"sha": line[p]["git_sha"], "stamp": line[p]["stamp"], "values": v}
                   for p, v in zip(line_series.pos, per_run)]
            found = change_points(pts, window, tolerance, alpha, todo)
        first, last = float(medians[0]), float(medians[-1])
        entries.append({
            "benchmark": names[bench], "fingerprint": fingerprint,
            "machine_id": line[0]["machine_id"], "metric": metric, "runs": len(medians),
            "first": first, "last": last, "change": last / first - 1 if first else None,
            "change_points": found, "_series": (line, line_series)})
    entries.sort(key=lambda e: (e["machine_id"], e["fingerprint"], e["benchmark"]))
    return entries


def points(entry):
    """The per-run points of an :func:`analyse_store` entry: ``{"stamp", "sha", "path", "n",
    "median", "min", "max", "q1", "q3"}``."""
    line, s = entry["_series"]
    return [{"stamp": line[p]["stamp"], "sha": line[p]["git_sha"], "path": line[p]["path"],
             "n": int(n), "median": float(m), "min": float(lo), "max": float(hi),
             "q1": float(a), "q3": float(b)}
            for p, n, m, lo, hi, a, b in zip(s.pos, s.n, s.median, s.low, s.high, s.q1, s.q3)]


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
        # A year of nightly runs stays one readable figure: bounded width, at most ~30 ticks.
        fig, ax = plt.subplots(figsize=(min(16.0, max(6.4, 0.5 * len(stamps) + 3)), 4))
        every = max(1, math.ceil(len(stamps) / 30))
        scale = 1e6 if group[0]["metric"] == "ops_per_s" else 1.0
        labels = {}
        for entry in group:
            mine = pts[id(entry)]
            xs = [position[p["stamp"]] for p in mine]
            ys = [p["median"] / scale for p in mine]
            err = [[(p["median"] - p["min"]) / scale for p in mine],
                   [(p["max"] - p["median"]) / scale for p in mine]]
            ax.errorbar(xs, ys, yerr=err, marker="o" if len(mine) <= 60 else None, capsize=3,
                        label=entry["machine_id"])
            for p in mine:
                if position[p["stamp"]] % every == 0:
                    labels[position[p["stamp"]]] = f"{p['sha'][:7]}\n{p['stamp'][4:8]}"
            for cp in entry["change_points"]:
                ax.axvline(xs[cp["index"]] - 0.5, color="red", linestyle="--", linewidth=1)
        ax.set_xticks(sorted(labels))
        ax.set_xticklabels([labels[i] for i in sorted(labels)], fontsize="x-small")
        ax.set_ylabel("Mops/s" if scale > 1 else group[0]["metric"])
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
