"""``kbench plot``: scaling, fairness and latency-percentile plots of one results file.

One PNG per (family, workload) and metric, ``<family>_<workload>_<metric>.png`` with metric
``throughput``, ``fairness`` or ``latency``; one panel per parameter set (``cs``, ``gap``,
...). Workloads that report allocator memory (``overhead_bytes_per_object``) get
``<family>_<workload>_bars.png`` instead: time and memory per contender. Points are medians
over repetitions, error bars span min..max of the repetitions, and thread counts above the
machine's PUs sit in a shaded "oversubscribed" region. A point whose repetitions fall into
several regimes (:func:`kprim_tools.stats.find_modes`) is not drawn as a filled median: it
gets one hollow marker per mode at the mode's median (size growing with the mode's share),
joined by a dotted line, and the legend explains the hollow markers.
"""

import logging
import math
import os

from . import KbenchError
from . import results as res
from .names import slug
from .stats import find_modes, summarize

LATENCY = (("lat_p50_ns", "p50"), ("lat_p99_ns", "p99"), ("lat_p999_ns", "p99.9"))


def pyplot():
    """matplotlib's pyplot on the Agg backend, with its chatter kept off stderr."""
    import matplotlib
    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt
    return plt


MARKERS = "osD^vP*X<>"
LINESTYLES = ("-", "--", ":")


def line_style(index):
    """Distinct colour, marker and dash for the ``index``-th line (tab10 colours repeat
    after ten, so the dash and marker change with them)."""
    return {"color": f"C{index % 10}", "marker": MARKERS[(index // 10 + index) % len(MARKERS)],
            "markersize": 4, "linestyle": LINESTYLES[(index // 10) % len(LINESTYLES)]}


def draw_lines(ax, contenders, metric, scale=1.0):
    """Draw one median line with min..max error bars per contender; return the thread counts.

    ``contenders`` is ``{contender: {threads: Case}}``; values are divided by ``scale``.
    """
    all_threads = set()
    multimodal = False
    for index, (contender, per) in enumerate(contenders.items()):
        xs, ys, lo, hi, regimes = [], [], [], [], {}
        for threads in sorted(per):
            values = [v / scale for v in per[threads].values(metric)]
            s = summarize(values)
            if s is None:
                continue
            modes = find_modes(values)
            if modes.multimodal:
                regimes[len(xs)] = modes
            xs.append(threads)
            ys.append(s.median)
            lo.append(s.median - s.low)
            hi.append(s.high - s.median)
        if xs:
            all_threads.update(xs)
            style = line_style(index)
            filled = [i for i in range(len(xs)) if i not in regimes]
            ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, linewidth=1.2, label=contender,
                        markevery=filled, **style)
            for i, modes in regimes.items():
                draw_modes(ax, xs[i], modes, style)
            multimodal = multimodal or bool(regimes)
    if multimodal:
        ax.plot([], [], linestyle=":", marker="o", markerfacecolor="none", color="0.3",
                label=MODES_LABEL)
    return sorted(all_threads)


#: Legend entry of the hollow mode markers.
MODES_LABEL = "hollow: modes of a multimodal point"


def draw_modes(ax, x, modes, style):
    """Hollow markers at each mode's median at ``x`` (size by share), joined by dots."""
    ys = [m.median for m in modes.modes]
    ax.plot([x] * len(ys), ys, linestyle=":", linewidth=0.8, color=style["color"])
    for mode in modes.modes:
        ax.plot([x], [mode.median], linestyle="none", marker=style["marker"],
                markerfacecolor="none", markeredgecolor=style["color"],
                markersize=3 + 7 * mode.share)


def style_threads_axis(ax, threads, pus):
    """log2 thread axis with integer ticks; shade thread counts above ``pus``."""
    if not threads:
        return
    ax.set_xscale("log", base=2)
    ax.set_xticks(threads)
    ax.set_xticklabels([str(t) for t in threads])
    ax.minorticks_off()
    left, right = threads[0] / 1.3, threads[-1] * 1.3
    ax.set_xlim(left, right)
    above = [t for t in threads if pus and t > pus]
    if above:
        start = math.sqrt(pus * above[0]) if pus >= threads[0] else left
        ax.axvspan(start, right, color="0.88", zorder=0, label=f"oversubscribed (> {pus} PUs)")
    ax.set_xlabel("threads")
    ax.grid(True, which="major", alpha=0.3)


def _wide_range(ax):
    """Switch the y axis to log scale when the plotted data spans more than 30x."""
    low, high = math.inf, 0.0
    for line in ax.get_lines():
        ys = [y for y in line.get_ydata() if y > 0]
        if ys:
            low, high = min(low, min(ys)), max(high, max(ys))
    if high > 0 and low < math.inf and high / low > 30:
        ax.set_yscale("log")


LEGEND_IN = 2.4


def _figure(plt, rows, cols):
    """A grid of panels plus a strip on the right for the shared legend."""
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols + LEGEND_IN, 3.8 * rows),
                             squeeze=False)
    return fig, axes


def _finish(plt, fig, axes, title, path):
    """Add the shared legend and title, save ``path`` and close the figure."""
    handles, labels = [], []
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="center right", fontsize="small", frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - LEGEND_IN / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def has_metric(panels, metric):
    """True when any case in ``panels`` has a value of ``metric``."""
    return any(case.values(metric) for _, contenders in panels
               for per in contenders.values() for case in per.values())


def render_family(plt, results, family, workload, panels, out):
    """Write the scaling PNGs of one (family, workload); return their paths.

    ``panels`` is ``[(case_params, {contender: {threads: Case}})]``. A figure whose metric
    no case reports (e.g. latency in a workload that does not sample it) is not drawn.
    """
    pus = results.pus
    stem = os.path.join(out, slug(f"{family}_{workload}"))
    machine = results.machine_id
    written = []
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    for metric, label, ylabel, scale in (("ops_per_s", "throughput", "Mops/s (all threads)", 1e6),
                                         ("fairness", "fairness", "Jain fairness index", 1.0)):
        if not has_metric(panels, metric):
            continue
        fig, axes = _figure(plt, rows, cols)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (params, contenders) in zip(axes.flat, panels):
            threads = draw_lines(ax, contenders, metric, scale)
            style_threads_axis(ax, threads, pus)
            if metric == "fairness":
                ax.set_ylim(0, 1.05)
            else:
                _wide_range(ax)
            ax.set_ylabel(ylabel)
            ax.set_title(res.format_params(params) or "default parameters", fontsize="small")
        written.append(_finish(plt, fig, axes, f"{family}/{workload} {label} - {machine}",
                               f"{stem}_{label}.png"))
    if not any(has_metric(panels, metric) for metric, _ in LATENCY):
        return written
    fig, axes = _figure(plt, len(panels), len(LATENCY))
    for row, (params, contenders) in enumerate(panels):
        for col, (metric, name) in enumerate(LATENCY):
            ax = axes[row][col]
            threads = draw_lines(ax, contenders, metric)
            style_threads_axis(ax, threads, pus)
            _wide_range(ax)
            ax.set_ylabel(f"{name} acquire latency, ns")
            ax.set_title(f"{name} {res.format_params(params)}".strip(), fontsize="small")
    written.append(_finish(plt, fig, axes, f"{family}/{workload} latency - {machine}",
                           f"{stem}_latency.png"))
    return written


#: Counters of memory workloads (allocators), drawn as bars: (counter, axis label, divisor).
BARS = (("ns_per_op", "ns per operation", 1.0),
        ("overhead_bytes_per_object", "overhead bytes per live object", 1.0),
        ("rss_peak_kib", "peak RSS, MiB", 1024.0),
        ("rss_after_destroy_delta_kib", "RSS kept after destroy, MiB", 1024.0))


def is_memory_workload(panels):
    """True when the workload reports allocator memory figures (bars, not scaling curves)."""
    return has_metric(panels, "overhead_bytes_per_object")


def render_bars(plt, results, family, workload, panels, out):
    """Allocator time-and-memory bars: ``<family>_<workload>_bars.png``; return its path.

    One row of panels per parameter set, one panel per :data:`BARS` counter present; a
    horizontal bar per contender at the median over repetitions, whiskers min..max.
    """
    metrics = [m for m in BARS if has_metric(panels, m[0])]
    bars = max(len(c) for _, c in panels)
    fig, axes = plt.subplots(len(panels), len(metrics), squeeze=False,
                             figsize=(4.2 * len(metrics),
                                      max(2.8, 1.2 + (0.32 * bars + 0.6) * len(panels))))
    for row, (params, contenders) in enumerate(panels):
        names = list(contenders)
        for col, (metric, label, divisor) in enumerate(metrics):
            ax = axes[row][col]
            stats = [summarize([v / divisor for per in [contenders[n]]
                                for case in per.values() for v in case.values(metric)])
                     for n in names]
            ys = list(range(len(names)))
            med = [s.median if s else 0.0 for s in stats]
            err = [[s.median - s.low if s else 0 for s in stats],
                   [s.high - s.median if s else 0 for s in stats]]
            ax.barh(ys, med, xerr=err, capsize=2,
                    color=[line_style(i)["color"] for i in ys])
            ax.set_yticks(ys)
            ax.set_yticklabels(names if col == 0 else [""] * len(names), fontsize="small")
            ax.invert_yaxis()
            ax.set_xlabel(label, fontsize="small")
            ax.grid(True, axis="x", alpha=0.3)
            ax.set_title(res.format_params(params), fontsize="x-small")
    fig.suptitle(f"{family}/{workload} time and memory - {results.machine_id}")
    fig.tight_layout()
    path = os.path.join(out, slug(f"{family}_{workload}") + "_bars.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render_all(results, out):
    """Write every plot of one :class:`~kprim_tools.results.Results` under ``out``.

    Returns the written paths in order. Raises :class:`KbenchError` when ``out`` cannot be
    created.
    """
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise KbenchError(f"cannot create {out}: {err.strerror or err}") from None
    plt = pyplot()
    by_family = {}
    for (family, workload, params), contenders in res.curves(results.cases()).items():
        by_family.setdefault((family, workload), []).append((params, contenders))
    written = []
    for (family, workload), panels in by_family.items():
        if is_memory_workload(panels):
            written.append(render_bars(plt, results, family, workload, panels, out))
        else:
            written += render_family(plt, results, family, workload, panels, out)
    return written


RUN_DASHES = ("-", "--", ":", "-.")


def render_ratio_comparison(runs, reference, out):
    """Cross-machine chart: same-run throughput ratio to ``reference`` versus threads.

    One PNG per (family, workload), ``compare_<family>_<workload>_ratio.png``, one panel per
    parameter set; colour and marker per contender, dash per run (the legend names the
    runs' machines). Medians of the paired per-repetition ratios; contenders without the
    reference in a run are left out of that run. Returns the written paths.
    """
    from .compare import ratio
    metric = ratio(reference)
    os.makedirs(out, exist_ok=True)
    plt = pyplot()
    panels = {}
    for run_index, results in enumerate(runs):
        cases = results.cases()
        for (family, workload, params), contenders in res.curves(cases).items():
            panel = panels.setdefault((family, workload), {}).setdefault(params, {})
            for contender, per in contenders.items():
                for threads, case in per.items():
                    values = metric.one_run(cases, case.name)
                    if values:
                        line = panel.setdefault(contender, {}).setdefault(run_index, {})
                        line[threads] = summarize(values)
    written = []
    for (family, workload), by_params in panels.items():
        cols = min(3, len(by_params))
        fig, axes = _figure(plt, math.ceil(len(by_params) / cols), cols)
        for ax in axes.flat[len(by_params):]:
            ax.set_visible(False)
        for ax, (params, lines) in zip(axes.flat, by_params.items()):
            threads = set()
            for index, (contender, per_run) in enumerate(lines.items()):
                style = line_style(index)
                for run_index, points in per_run.items():
                    xs = sorted(points)
                    threads.update(xs)
                    style["linestyle"] = RUN_DASHES[run_index % len(RUN_DASHES)]
                    ax.errorbar(xs, [points[t].median for t in xs],
                                yerr=[[points[t].median - points[t].low for t in xs],
                                      [points[t].high - points[t].median for t in xs]],
                                capsize=3, label=contender if run_index == 0 else None,
                                **style)
            style_threads_axis(ax, sorted(threads), None)
            ax.axhline(1.0, color="0.5", linewidth=0.8)
            _wide_range(ax)
            ax.set_ylabel(f"throughput / {reference} (same run)")
            ax.set_title(res.format_params(params) or "default parameters", fontsize="small")
        for run_index, results in enumerate(runs):
            axes[0][0].plot([], [], color="0.3", linestyle=RUN_DASHES[run_index % 4],
                            label=f"run {run_index + 1}: {results.machine_id}")
        machines = " vs ".join(r.machine_id for r in runs)
        written.append(_finish(plt, fig, axes, f"{family}/{workload}: ratio to {reference}\n"
                                               f"{machines}",
                               os.path.join(out, slug(f"compare_{family}_{workload}_ratio.png"))))
    return written
