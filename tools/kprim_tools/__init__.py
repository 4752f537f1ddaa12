"""kprim results tooling: load, merge, summarise, plot, compare, gate and report benchmark JSON.

Reached through ``./kbench`` (``tools/kbench_results.py``); see ``results/SCHEMA.md`` for the
file format. Use Google Benchmark's own ``tools/compare.py`` instead when you only need raw
per-benchmark time deltas without counters, machines or verdicts.
"""

#: Newest ``kprim_schema_version`` of results files this package understands.
SCHEMA_VERSION = 4

#: Newest ``thresholds_version`` of ``results/thresholds.json`` this package understands.
THRESHOLDS_VERSION = 2


class KbenchError(Exception):
    """Unusable input or a failed operation; the CLI prints ``kbench: <message>`` and exits 2."""
