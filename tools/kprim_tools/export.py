"""``kbench export``: one results file in the native input format of a benchmark tracker.

Formats (described with their fields in results/SCHEMA.md, "Export formats"):

- ``github-action-benchmark``: the action's custom JSON for ``tool: customSmallerIsBetter``
  (a list of ``{name, unit, value, range, extra}``): ns/op and p99 latencies, smaller is
  better; ops/s and fairness ride in ``extra``.
- ``bencher``: Bencher Metric Format (``{benchmark: {measure: {value, lower_value,
  upper_value}}}``) with the built-in measures ``latency`` (ns/op) and ``throughput``
  (ops/s) plus ``fairness`` and p99 latencies.
- ``conbench``: a list of conbench ``BenchmarkResult`` objects (POST each to
  ``/api/benchmark-results/``): ops/s (unit ``i/s``), ns/op and p99 latencies (unit ``ns``),
  every repetition in ``stats.data``; fairness in ``optional_benchmark_info``; compact.
- ``csv``: one row per benchmark, median/min/max of each figure, with a header.

Every figure is the median over the benchmark's repetitions (min and max are the bounds); a
point whose ops/s repetitions fall into several regimes (``stats.find_modes``) says so where
the format has room (``extra``, ``optional_benchmark_info``, the CSV ``modes`` column).
The JSON is strict (no NaN/Infinity). Fault-injection runs and callgrind files are refused:
a tracker would record them as ordinary timings.
"""

import csv
import datetime
import io
import math
import os

from . import KbenchError
from .results import dumps_strict, injected_run, load, round_number, write_new
from .stats import find_modes, median

FORMATS = ("github-action-benchmark", "bencher", "conbench", "csv")

#: (key, label, unit, smaller is better): the figures every format carries, when measured.
FIGURES = (
    ("ops_per_s", "ops/s", "ops/s", False),
    ("ns_per_op", "ns/op", "ns/op", True),
    ("fairness", "fairness", "Jain index", False),
    ("lat_p99_ns", "p99 acquire latency", "ns", True),
    ("handover_p99_ns", "p99 hand-over latency", "ns", True),
)

#: Bencher measure slug of each figure (``latency``/``throughput`` are Bencher's built-ins).
BENCHER_MEASURES = {"ops_per_s": "throughput", "ns_per_op": "latency", "fairness": "fairness",
                    "lat_p99_ns": "p99-latency", "handover_p99_ns": "p99-handover-latency"}

#: conbench unit of each figure it tracks (conbench knows only B/s, s, ns and i/s).
CONBENCH_UNITS = {"ops_per_s": "i/s", "ns_per_op": "ns", "lat_p99_ns": "ns",
                  "handover_p99_ns": "ns"}

class Point:
    """One benchmark of the file: its name and each figure's repetitions."""

    def __init__(self, case):
        self.name = case.name
        self.base = case.name.base
        self.figures = {}
        for key, *_ in FIGURES:
            values = [v for v in case.values(key) if math.isfinite(v)]
            if values:
                self.figures[key] = values
        times = [v for v in case.values("ns_per_op") if math.isfinite(v)]
        self.times = times
        self.repetitions = len(case.entries)
        self.modes = find_modes(self.figures.get("ops_per_s", []))

    def summary(self, key):
        """``(median, min, max, n)`` of figure ``key`` (rounded), or ``None``."""
        values = self.figures.get(key)
        if not values:
            return None
        return (round_number(float(median(values))), round_number(min(values)),
                round_number(max(values)), len(values))


def points(results):
    """The :class:`Point` of every benchmark with at least one completed repetition."""
    out = []
    for case in results.cases().values():
        if case.entries:
            point = Point(case)
            if point.figures:
                out.append(point)
    return out


def _number(value):
    """A figure as text for ``extra`` and CSV cells (6 significant digits)."""
    return "" if value is None else f"{value:.6g}"


def github_action_benchmark(results):
    """The action's custom JSON (``tool: customSmallerIsBetter``)."""
    out = []
    for point in points(results):
        extra = [f"{label}: {_number(point.summary(key)[0])}"
                 for key, label, _, smaller in FIGURES
                 if not smaller and point.summary(key)]
        extra.append(f"repetitions: {point.repetitions}")
        if point.modes.multimodal:
            extra.append(f"regimes (Mops/s): {point.modes.label(scale=1e6)}")
        for key, label, unit, smaller in FIGURES:
            summary = point.summary(key)
            if not smaller or summary is None:
                continue
            med, low, high, n = summary
            spread = max(high - med, med - low)
            out.append({"name": f"{point.base} ({label})", "unit": unit, "value": med,
                        "range": f"± {_number(spread)}",
                        "extra": "\n".join(extra + [f"min..max over {n}: "
                                                    f"{_number(low)}..{_number(high)}"])})
    return dumps_strict(out, indent=2)


def bencher(results):
    """Bencher Metric Format."""
    out = {}
    for point in points(results):
        measures = {}
        for key, *_ in FIGURES:
            summary = point.summary(key)
            if summary is not None:
                med, low, high, _ = summary
                measures[BENCHER_MEASURES[key]] = {"value": med, "lower_value": low,
                                                   "upper_value": high}
        out[point.base] = measures
    return dumps_strict(out, indent=2)


def _int(value, default=0):
    """``int(value)`` or ``default`` when it is not an integer."""
    try:
        return int(float(str(value)))
    except ValueError:
        return default


def _cache_bytes(context, level, kind):
    """Size of one cache level from Google Benchmark's ``caches`` list (0 when absent)."""
    for cache in context.get("caches") or []:
        if isinstance(cache, dict) and cache.get("level") == level \
                and cache.get("type") in kind:
            return _int(cache.get("size"))
    return 0


def machine_info(context, machine_id):
    """conbench ``machine_info`` (every field its API requires) from a results context."""
    kernel = str(context.get("kprim_kernel") or "unknown")
    return {
        "name": machine_id,
        "architecture_name": str(context.get("kprim_arch") or "unknown"),
        "kernel_name": kernel,
        "os_name": "Linux",
        "os_version": kernel,
        "cpu_model_name": str(context.get("kprim_cpu_model") or "unknown"),
        "cpu_l1d_cache_bytes": _cache_bytes(context, 1, ("Data",)),
        "cpu_l1i_cache_bytes": _cache_bytes(context, 1, ("Instruction",)),
        "cpu_l2_cache_bytes": _cache_bytes(context, 2, ("Unified", "Data")),
        "cpu_l3_cache_bytes": _cache_bytes(context, 3, ("Unified", "Data")),
        "cpu_core_count": _int(context.get("kprim_cores")),
        "cpu_thread_count": _int(context.get("kprim_pus") or context.get("num_cpus")),
        "cpu_frequency_max_hz": _int(context.get("mhz_per_cpu")) * 1000000,
        "memory_bytes": _int(context.get("kprim_memory_gib")) * 1024 ** 3,
        "gpu_count": 0,
        "gpu_product_names": [],
    }


#: Context keys that can change the figures (conbench ``context``); the rest go to ``info``.
_CONBENCH_CONTEXT = ("kprim_compiler", "kprim_cxx_flags", "kprim_build_type", "kprim_sanitizer",
                     "kprim_pin", "kprim_trial_ms", "kprim_interleaving", "kprim_governor",
                     "kprim_turbo", "kprim_thp")
_CONBENCH_INFO = ("kprim_git_sha", "kprim_git_dirty", "kprim_peers", "kprim_glibc",
                  "kprim_kernel", "kprim_fingerprint", "kprim_schema_version",
                  "kprim_floor_transfer_ns", "kprim_run_args")


def conbench(results):
    """A list of conbench ``BenchmarkResult`` objects, one per benchmark and tracked figure."""
    context = results.context
    stamp = str(context.get("date") or "") or datetime.datetime.fromtimestamp(
        os.path.getmtime(results.path), datetime.timezone.utc).isoformat(timespec="seconds")
    run_id = "kprim-" + "-".join(str(context.get(k) or "") for k in
                                 ("kprim_machine_id", "kprim_git_sha")) + "-" + \
        "".join(c for c in stamp if c.isdigit())[:14]
    bench_context = {"benchmark_language": "C++"}
    bench_context.update({k[len("kprim_"):]: str(context[k]) for k in _CONBENCH_CONTEXT
                          if k in context})
    info = {k[len("kprim_"):]: str(context[k]) for k in _CONBENCH_INFO if k in context}
    machine = machine_info(context, results.machine_id)
    out = []
    for point in points(results):
        name = point.name
        tags = {"name": f"{name.family}/{name.workload}", "suite": "kprim",
                "contender": name.contender}
        tags.update({k: v for k, v in name.params})
        optional = {"kprim_benchmark": point.base, "ops_per_s_modes": point.modes.as_dict()}
        fairness = point.summary("fairness")
        if fairness is not None:
            optional["fairness"] = fairness[0]
            optional["fairness_data"] = [round_number(v) for v in point.figures["fairness"]]
        for key, unit in CONBENCH_UNITS.items():
            values = point.figures.get(key)
            if not values:
                continue
            out.append({
                "run_id": run_id, "run_name": f"kprim {context.get('kprim_git_sha', '?')}",
                "batch_id": f"{run_id}-{name.family}", "timestamp": stamp,
                "stats": {"data": [round_number(v) for v in values], "unit": unit,
                          "times": [round_number(v) for v in point.times], "time_unit": "ns",
                          "iterations": len(values)},
                "tags": dict(tags, metric=key), "context": bench_context, "info": info,
                "machine_info": machine, "optional_benchmark_info": optional,
            })
    return dumps_strict(out)


def csv_text(results):
    """One row per benchmark: median, min and max of each figure (empty when not measured)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["benchmark", "family", "workload", "contender", "threads", "params",
              "repetitions", "modes"]
    for key, *_ in FIGURES:
        header += [key, f"{key}_min", f"{key}_max"]
    writer.writerow(header)
    for point in points(results):
        name = point.name
        row = [point.base, name.family, name.workload, name.contender, name.threads,
               "/".join(f"{k}:{v}" for k, v in name.case_params), point.repetitions,
               point.modes.label(scale=1e6) or point.modes.count]
        for key, *_ in FIGURES:
            summary = point.summary(key)
            row += ["", "", ""] if summary is None else [_number(v) for v in summary[:3]]
        writer.writerow(row)
    return buffer.getvalue().rstrip("\n")


RENDER = {"github-action-benchmark": github_action_benchmark, "bencher": bencher,
          "conbench": conbench, "csv": csv_text}


def export_text(path, fmt):
    """The export of results file ``path`` in format ``fmt`` (text without a final newline).

    Raises :class:`KbenchError` for an unknown format, an unusable file, a fault-injection
    run or a callgrind file.
    """
    if fmt not in RENDER:
        raise KbenchError(f"export: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    results = load(path)
    if injected_run(results.context):
        raise KbenchError(f"export: {path} is a fault-injection run (kprim_inject="
                          f"{results.context.get('kprim_inject')}); a tracker would record it "
                          "as an ordinary run")
    if results.callgrind:
        raise KbenchError(f"export: {path} is a callgrind file (instruction counts, its "
                          "timings are valgrind's); export a timed run")
    return RENDER[fmt](results)


def run_export(args):
    """``export`` subcommand: print the export, or write it to ``--out`` (never overwriting)."""
    out = args.out
    if out is not None:
        if os.path.lexists(out):
            raise KbenchError(f"export: {out} already exists; refusing to overwrite it")
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent):
            raise KbenchError(f"export: cannot write {out}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise KbenchError(f"export: cannot write {out}: directory {parent} is not writable")
    text = export_text(args.file, args.format)
    if out is None:
        print(text)
    else:
        write_new(out, text + "\n")
    return 0
