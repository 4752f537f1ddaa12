"""``kbench summary``: one table per family/workload, contenders by thread count.

A cell is the median over repetitions, or, when the repetitions fall into several regimes
(:func:`kprim_tools.stats.find_modes`), every mode with its share
(``bimodal: 130 (60%) | 23 (40%)``): never a bare median of a multimodal point. When the run
has A/A control pairs, their table (:mod:`kprim_tools.aa`) follows.
"""

from . import results as res
from .stats import find_modes, median
from .tables import fmt_number, render

#: Metrics the summary can show: (label, divisor applied to the median).
METRICS = {
    "ops_per_s": ("median Mops/s", 1e6),
    "fairness": ("median Jain fairness", 1.0),
    "lat_p50_ns": ("median p50 latency ns", 1.0),
    "lat_p99_ns": ("median p99 latency ns", 1.0),
    "lat_p999_ns": ("median p99.9 latency ns", 1.0),
    "ns_per_op": ("median ns/op", 1.0),
    "overhead_bytes_per_object": ("median allocator overhead, bytes per object", 1.0),
    "rss_peak_kib": ("median peak RSS MiB", 1024.0),
}


def summary_tables(results, metric="ops_per_s"):
    """The summary of one :class:`~kprim_tools.results.Results` as data.

    Returns ``[(title, headers, rows)]``, one per (family, workload, parameters): rows are
    contenders, columns thread counts, cells the formatted median of ``metric`` over
    repetitions (``-`` where not measured). Thread counts above the machine's PUs are
    marked ``*`` (oversubscribed).
    """
    divisor = METRICS[metric][1]
    pus = results.pus
    out = []
    for key, contenders in res.curves(results.cases()).items():
        threads = sorted({t for per in contenders.values() for t in per})
        headers = ["contender"] + [f"{t}*" if pus and t > pus else str(t) for t in threads]
        rows = []
        for contender, per in contenders.items():
            cells = [contender]
            for t in threads:
                cells.append(cell(per[t].values(metric), divisor) if t in per else "-")
            rows.append(cells)
        out.append((res.group_title(key) + " (threads)", headers, rows))
    return out


def cell(values, divisor=1.0):
    """One summary cell: the median of ``values`` / ``divisor`` (``-`` when empty), or the
    modes' label when the values are multimodal."""
    if not values:
        return "-"
    modes = find_modes(values)
    if modes.multimodal:
        return modes.label(scale=divisor)
    return fmt_number(median(values) / divisor)


def multimodal_note(tables):
    """The footnote explaining multimodal cells, or ``None`` when there is none."""
    if any("modal: " in c or " modes: " in c for _, _, rows in tables for r in rows for c in r):
        return ("cells 'bimodal: A (x%) | B (y%)' are points whose repetitions fell into "
                "several regimes: each mode's median and share, not one median")
    return None


def headline(results, metric):
    """One line naming the machine, revision and metric of a summary."""
    return (f"{results.machine_id} ({results.context.get('kprim_cpu_model', '?')}, "
            f"{results.pus or '?'} PUs), git {results.context.get('kprim_git_sha', '?')}: "
            f"{METRICS[metric][0]}")


def oversubscribed_note(results, tables):
    """The footnote explaining ``*`` columns, or ``None`` when no column is marked."""
    if any(h.endswith("*") for _, headers, _ in tables for h in headers):
        return f"thread counts marked * exceed the machine's {results.pus} PUs (oversubscribed)"
    return None


def summary_text(results, metric="ops_per_s", markdown=False):
    """Return the summary of one results file as aligned text or Markdown."""
    tables = summary_tables(results, metric)
    blocks = [headline(results, metric)]
    blocks += [render(headers, rows, markdown, title=title) for title, headers, rows in tables]
    for note in (oversubscribed_note(results, tables), multimodal_note(tables)):
        if note:
            blocks.append(note)
    from .aa import aa_text, pair_rows, repository_tolerances, table_rows
    pairs = pair_rows(results, tolerance_for=repository_tolerances())
    if pairs:
        blocks.append(aa_text(table_rows(pairs), markdown, results))
    return "\n\n".join(blocks)
