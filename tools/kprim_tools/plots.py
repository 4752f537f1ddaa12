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


#: Okabe-Ito, the colour-blind-safe palette (Okabe and Ito 2008), black last; a plot holds
#: at most :data:`MAX_SERIES` lines, so colours never repeat within one panel.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442",
           "#000000")
MARKERS = "osD^vP*X<>"
LINESTYLES = ("-", "--", ":")
#: Lines per panel at most; a workload with more contenders is split into groups
#: (:func:`series_groups`), each its own figure, so no two lines share a colour.
MAX_SERIES = 8
#: Saved resolution: a figure is :data:`FIG_WIDTH_IN` inches wide, so 1240 px, about the
#: page width (1200 px): 10 pt text stays about 13 px high on screen.
DPI = 100
FIG_WIDTH_IN = 12.4


def save_png(fig, path):
    """Save ``fig`` at :data:`DPI` as a 256-colour PNG (a third of the RGBA size; the plots
    use a handful of colours, so nothing visible is lost)."""
    fig.savefig(path, dpi=DPI)
    from PIL import Image
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256)
    small.save(path, optimize=True)


def line_style(index):
    """Distinct colour, marker and dash for the ``index``-th line (the palette's colours
    repeat after eight, so the dash and marker change with them)."""
    n = len(PALETTE)
    return {"color": PALETTE[index % n], "marker": MARKERS[(index // n + index) % len(MARKERS)],
            "markersize": 5, "linestyle": LINESTYLES[(index // n) % len(LINESTYLES)]}


def series_groups(panels, metric="ops_per_s"):
    """Split the contenders of ``panels`` into groups of at most :data:`MAX_SERIES`.

    Contenders are ranked by the geometric mean of their median ``metric`` over every
    point (fastest first, so the first group holds the leaders); groups are balanced
    (19 contenders: 7, 6, 6). Returns ``[[contender]]`` (one group when they fit).
    """
    scores = {}
    for _, contenders in panels:
        for contender, per in contenders.items():
            logs = scores.setdefault(contender, [])
            for case in per.values():
                s = summarize(case.values(metric))
                if s is not None and s.median > 0:
                    logs.append(math.log(s.median))
    order = sorted(scores, key=lambda c: -(sum(scores[c]) / len(scores[c]))
                   if scores[c] else math.inf)
    count = math.ceil(len(order) / MAX_SERIES) or 1
    size, extra = divmod(len(order), count)
    groups, start = [], 0
    for index in range(count):
        stop = start + size + (index < extra)
        groups.append(order[start:stop])
        start = stop
    return groups


def _plain_numbers(ax):
    """Tick labels as plain numbers in the axis unit (no offset, no x1e8 factor)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v:.0f}" if abs(v) >= 1e5 else f"{v:g}"))
    if ax.get_yscale() == "log":
        ax.yaxis.set_minor_formatter(NullFormatter())


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


LEGEND_IN = 3.2


def _figure(plt, rows, cols):
    """A grid of panels plus a strip on the right for the shared legend."""
    panel_w = (FIG_WIDTH_IN - LEGEND_IN) / max(cols, 2)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_w * cols + LEGEND_IN, 3.6 * rows),
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
    fig.legend(handles, labels, loc="center right", fontsize="medium", frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - LEGEND_IN / fig.get_figwidth(), 1))
    save_png(fig, path)
    plt.close(fig)
    return path


def has_metric(panels, metric):
    """True when any case in ``panels`` has a value of ``metric``."""
    return any(case.values(metric) for _, contenders in panels
               for per in contenders.values() for case in per.values())


def clock_ns(results, case):
    """The clock tick of one case in ns: its ``clock_ns`` counter, else the run's
    ``kprim_clock_ns``; 0 when unknown."""
    values = case.values("clock_ns")
    if values:
        return max(values)
    try:
        return float(results.context.get("kprim_clock_ns") or 0)
    except (TypeError, ValueError):
        return 0.0


#: A latency point is resolved when its median is at least this many clock ticks.
RESOLVED_TICKS = 2


def resolved(results, contenders, metric):
    """True when most points of ``metric`` in ``contenders`` lie above the clock's
    resolution (median at least :data:`RESOLVED_TICKS` ticks, and above 0): a panel of p50
    values at 0 or one tick says nothing and is left out."""
    good = total = 0
    for per in contenders.values():
        for case in per.values():
            s = summarize(case.values(metric))
            if s is None:
                continue
            total += 1
            good += s.median > 0 and s.median >= RESOLVED_TICKS * clock_ns(results, case)
    return total > 0 and 2 * good > total


def latency_panels(results, panels):
    """``(drawn, omitted)``: the ``(params, metric, name)`` latency panels above the
    clock's resolution, and those left out (measured but unresolved)."""
    drawn, omitted = [], []
    for params, contenders in panels:
        for metric, name in LATENCY:
            if has_metric([(params, contenders)], metric):
                (drawn if resolved(results, contenders, metric) else omitted).append(
                    (params, metric, name))
    return drawn, omitted


def _subset(panels, group):
    """``panels`` with only the contenders in ``group``."""
    return [(params, {c: per for c, per in contenders.items() if c in group})
            for params, contenders in panels]


def render_family(plt, results, family, workload, panels, out):
    """Write the scaling PNGs of one (family, workload); return their paths.

    ``panels`` is ``[(case_params, {contender: {threads: Case}})]``. A figure whose metric
    no case reports (e.g. latency in a workload that does not sample it) is not drawn, nor
    a latency panel below the clock's resolution (:func:`resolved`). More than
    :data:`MAX_SERIES` contenders are split (:func:`series_groups`): the first group's files
    are ``<stem>_<metric>.png``, the next ``<stem>_<metric>_2.png`` and so on.
    """
    pus = results.pus
    stem = os.path.join(out, slug(f"{family}_{workload}"))
    machine = results.machine_id
    groups = series_groups(panels)
    written = []
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    for number, group in enumerate(groups, 1):
        sub = _subset(panels, group)
        suffix = "" if number == 1 else f"_{number}"
        part = "" if len(groups) == 1 else f" ({number}/{len(groups)})"
        for metric, label, ylabel, scale in (
                ("ops_per_s", "throughput", "Mops/s (all threads)", 1e6),
                ("fairness", "fairness", "Jain fairness index", 1.0)):
            if not has_metric(sub, metric):
                continue
            fig, axes = _figure(plt, rows, cols)
            for ax in axes.flat[len(sub):]:
                ax.set_visible(False)
            for ax, (params, contenders) in zip(axes.flat, sub):
                threads = draw_lines(ax, contenders, metric, scale)
                style_threads_axis(ax, threads, pus)
                if metric == "fairness":
                    ax.set_ylim(0, 1.05)
                else:
                    _wide_range(ax)
                _plain_numbers(ax)
                ax.set_ylabel(ylabel)
                ax.set_title(res.format_params(params) or "default parameters",
                             fontsize="medium")
            written.append(_finish(plt, fig, axes,
                                   f"{family}/{workload} {label}{part} - {machine}",
                                   f"{stem}_{label}{suffix}.png"))
        drawn, _ = latency_panels(results, sub)
        if not drawn:
            continue
        by_params = dict(sub)
        lcols = min(3, len(drawn))
        fig, axes = _figure(plt, math.ceil(len(drawn) / lcols), lcols)
        for ax in axes.flat[len(drawn):]:
            ax.set_visible(False)
        for ax, (params, metric, name) in zip(axes.flat, drawn):
            threads = draw_lines(ax, by_params[params], metric)
            style_threads_axis(ax, threads, pus)
            _wide_range(ax)
            _plain_numbers(ax)
            ax.set_ylabel(f"{name} acquire latency, ns")
            ax.set_title(f"{name} {res.format_params(params)}".strip(), fontsize="medium")
        written.append(_finish(plt, fig, axes, f"{family}/{workload} latency{part} - {machine}",
                               f"{stem}_latency{suffix}.png"))
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
                             figsize=(FIG_WIDTH_IN,
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
            ax.set_title(res.format_params(params), fontsize="small")
    fig.suptitle(f"{family}/{workload} time and memory - {results.machine_id}")
    fig.tight_layout()
    path = os.path.join(out, slug(f"{family}_{workload}") + "_bars.png")
    save_png(fig, path)
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
