"""``kbench summary``: one table per family/workload, contenders by thread count."""

from . import results as res
from .stats import median
from .tables import fmt_number, render

#: Metrics the summary can show: (context-free label, divisor applied to the median).
METRICS = {
    "ops_per_s": ("median Mops/s", 1e6),
    "fairness": ("median Jain fairness", 1.0),
    "lat_p50_ns": ("median p50 latency ns", 1.0),
    "lat_p99_ns": ("median p99 latency ns", 1.0),
    "lat_p999_ns": ("median p99.9 latency ns", 1.0),
    "ns_per_op": ("median ns/op", 1.0),
}


def summary_text(results, metric="ops_per_s", markdown=False):
    """Return the summary of one :class:`~kprim_tools.results.Results` as text.

    One table per (family, workload, parameters): rows are contenders, columns thread counts,
    cells the median of ``metric`` over repetitions (``-`` where not measured). Thread counts
    above the machine's PUs are marked ``*`` (oversubscribed).
    """
    label, divisor = METRICS[metric]
    pus = results.pus
    blocks = [f"{results.machine_id} ({results.context.get('kprim_cpu_model', '?')}, "
              f"{pus or '?'} PUs), git {results.context.get('kprim_git_sha', '?')}: {label}"]
    oversubscribed = False
    for key, contenders in res.curves(results.cases()).items():
        threads = sorted({t for per in contenders.values() for t in per})
        oversubscribed |= bool(pus) and threads[-1] > pus
        headers = ["contender"] + [f"{t}*" if pus and t > pus else str(t) for t in threads]
        rows = []
        for contender, per in contenders.items():
            cells = [contender]
            for t in threads:
                value = median(per[t].values(metric)) if t in per else None
                cells.append(fmt_number(None if value is None else value / divisor))
            rows.append(cells)
        blocks.append(render(headers, rows, markdown, title=res.group_title(key) + " (threads)"))
    if oversubscribed:
        blocks.append(f"thread counts marked * exceed the machine's {pus} PUs (oversubscribed)")
    return "\n\n".join(blocks)
