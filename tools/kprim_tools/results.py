"""Results files: load and validate, parse benchmark names, group repetitions, merge and write.

Every reader in this package goes through :func:`load`, so bad input becomes one
:class:`~kprim_tools.KbenchError` with a readable message instead of a traceback.
"""

import datetime
import functools
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field

from . import SCHEMA_VERSION, KbenchError
from .names import SUFFIX

NAME_RE = re.compile(
    r"^(?P<family>[^/]+)/(?P<workload>[^/]+)/(?P<contender>[^/]+)"
    r"(?P<params>(/[a-z_]+:[^/]+)*)/iterations:1/manual_time(_(?P<aggregate>[a-z]+))?$")

#: Context keys that must agree between the files merged into one run.
RUN_KEYS = ("kprim_schema_version", "kprim_machine_id", "kprim_fingerprint", "kprim_git_sha",
            "kprim_git_dirty")

_TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class BenchName:
    """A parsed benchmark name (see the grammar in ``results/SCHEMA.md``).

    ``params`` keeps every ``key:value`` pair in name order, ``threads`` included.
    ``aggregate`` is ``None`` for a repetition and e.g. ``"median"`` for an aggregate entry.
    """

    family: str
    workload: str
    contender: str
    params: tuple
    aggregate: object = None

    @property
    def base(self):
        """The name without its aggregate suffix: the key that matches a benchmark across files."""
        text = "/".join([self.family, self.workload, self.contender]
                        + [f"{k}:{v}" for k, v in self.params])
        return text + SUFFIX

    @property
    def threads(self):
        """Worker thread count from ``threads:N`` (1 when the name has none)."""
        value = dict(self.params).get("threads", "1")
        return int(value) if value.isdigit() else 1

    @property
    def case_params(self):
        """The parameters other than ``threads``: they select one curve of a plot or table."""
        return tuple((k, v) for k, v in self.params if k != "threads")

    @property
    def series(self):
        """(family, workload, contender, case_params): one line of a scaling curve."""
        return (self.family, self.workload, self.contender, self.case_params)

    def without_aggregate(self):
        """The same benchmark as a repetition name (no aggregate suffix)."""
        return BenchName(self.family, self.workload, self.contender, self.params)

    def with_contender(self, contender):
        """The same benchmark for another contender (same run, same parameters)."""
        return BenchName(self.family, self.workload, contender, self.params, self.aggregate)

    def with_threads(self, threads):
        """The same benchmark at another thread count."""
        params = tuple((k, str(threads) if k == "threads" else v) for k, v in self.params)
        return BenchName(self.family, self.workload, self.contender, params, self.aggregate)


@functools.lru_cache(maxsize=1 << 16)
def parse_name(name):
    """Parse a Google Benchmark name of the kprim grammar into a :class:`BenchName`.

    Cached: a :class:`BenchName` is immutable, and ``ingest`` of a year of nightly runs parses
    the same few thousand names in every file. Raises :class:`KbenchError` when the name does
    not follow the grammar (errors are not cached).
    """
    match = NAME_RE.match(name) if isinstance(name, str) else None
    if not match:
        raise KbenchError(f"benchmark name {name!r} does not follow the kprim grammar "
                          "(family/workload/contender/key:value.../iterations:1/manual_time)")
    params = tuple(tuple(p.split(":", 1)) for p in match["params"].split("/") if p)
    return BenchName(match["family"], match["workload"], match["contender"], params,
                     match["aggregate"])


def format_params(params):
    """Render parameters as ``cs:1 gap:0`` (empty string when there are none)."""
    return " ".join(f"{k}:{v}" for k, v in params)


@dataclass
class Case:
    """One benchmark (one base name) of one results file with its per-repetition entries.

    ``entries`` are the ``run_type == "iteration"`` entries that completed (no error, not
    abandoned). When a file holds only aggregates, the ``median`` (else ``mean``) aggregate
    stands in as a single entry and ``from_aggregate`` is true; never when repetitions exist
    but were all dropped (the aggregates would include the invalid trials).
    """

    name: BenchName
    entries: list = field(default_factory=list)
    from_aggregate: bool = False
    dropped: int = 0

    def values(self, metric):
        """Per-repetition values of ``metric`` (entries lacking it are skipped)."""
        out = []
        for entry in self.entries:
            value = metric_value(entry, metric)
            if value is not None:
                out.append(value)
        return out

    def by_repetition(self, metric):
        """``{repetition_index: value}`` of ``metric``, for pairing contenders of one run."""
        out = {}
        for position, entry in enumerate(self.entries):
            value = metric_value(entry, metric)
            if value is not None:
                out[entry.get("repetition_index", position)] = value
        return out


def metric_value(entry, metric):
    """A benchmark entry's value of ``metric`` as a float, or ``None`` when absent.

    ``ops_per_s`` falls back to 1 / ``real_time`` (``real_time`` is wall time per operation
    over all threads, see SCHEMA.md), so plain files without kprim counters still work.
    """
    value = entry.get(metric)
    if value is None and metric == "ops_per_s":
        real = entry.get("real_time")
        scale = _TIME_UNIT_NS.get(entry.get("time_unit", "ns"))
        if isinstance(real, (int, float)) and real > 0 and scale:
            return 1e9 / (real * scale)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass
class Results:
    """A validated results file: its path, context, benchmark entries and parsed names."""

    path: str
    context: dict
    benchmarks: list
    names: list

    @property
    def machine_id(self):
        """``kprim_machine_id`` from the context (``unknown-machine`` when absent)."""
        return str(self.context.get("kprim_machine_id") or "unknown-machine")

    @property
    def fingerprint(self):
        """``kprim_fingerprint`` from the context (empty when absent)."""
        return str(self.context.get("kprim_fingerprint") or "")

    @property
    def callgrind(self):
        """True for a file written by ``kbench_results.py callgrind`` (instruction counts)."""
        return bool(self.context.get("kprim_callgrind"))

    @property
    def pus(self):
        """Processing units of the machine: ``kprim_pus``, else ``num_cpus``, else ``None``."""
        for key in ("kprim_pus", "num_cpus"):
            try:
                return int(self.context[key])
            except (KeyError, TypeError, ValueError):
                continue
        return None

    def cases(self):
        """``{base name: Case}`` in file order, built from repetitions (see :class:`Case`)."""
        cases, aggregates = {}, {}
        for entry, name in zip(self.benchmarks, self.names):
            case = cases.setdefault(name.base, Case(name.without_aggregate()))
            if name.aggregate is not None or entry.get("run_type") == "aggregate":
                aggregates.setdefault(name.base, {})[name.aggregate or
                                                     entry.get("aggregate_name")] = entry
            elif entry.get("error_occurred") or metric_value(entry, "abandoned"):
                case.dropped += 1
            else:
                case.entries.append(entry)
        for base, case in cases.items():
            if not case.entries and not case.dropped:
                named = aggregates.get(base, {})
                stand_in = named.get("median") or named.get("mean")
                if stand_in is not None:
                    case.entries.append(stand_in)
                    case.from_aggregate = True
        return cases


def _fail(path, message):
    """Raise ``KbenchError("<path>: <message>")``."""
    raise KbenchError(f"{path}: {message}")


def load(path, allow_empty=False, expand=True, raw=None):
    """Read and validate one results file; return a :class:`Results`.

    ``expand=False`` leaves schema-2 entries as written (redundant fields not restored, see
    :func:`expand_entries`): the store keeps them so, and restores them when it rebuilds a run.
    ``raw``: the file's bytes when the caller has read them already (the store hashes them).

    Raises :class:`KbenchError` (one line naming the file) when the file is missing or
    unreadable, is not JSON or is truncated, lacks ``context``/``benchmarks``, comes from a
    schema version newer than :data:`SCHEMA_VERSION`, has no benchmarks (unless
    ``allow_empty``), or holds a name outside the kprim grammar.
    """
    if raw is None:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as err:
            raise KbenchError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        _fail(path, "not UTF-8 text, not a results file")
    except json.JSONDecodeError as err:
        cut = err.pos >= len(raw.rstrip()) or err.msg.startswith("Unterminated")
        what = "truncated JSON" if cut else "malformed JSON"
        _fail(path, f"{what} (line {err.lineno}, column {err.colno}: {err.msg})")
    if not isinstance(doc, dict) or not isinstance(doc.get("context"), dict) \
            or not isinstance(doc.get("benchmarks"), list):
        _fail(path, "not Google Benchmark JSON (needs a 'context' object and a 'benchmarks' list)")
    context = doc["context"]
    version = context.get("kprim_schema_version")
    if version is None:
        _fail(path, "no context.kprim_schema_version: not a kprim results file")
    try:
        version = int(str(version))
    except ValueError:
        _fail(path, f"kprim_schema_version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        _fail(path, f"schema version {version} is newer than this tool's {SCHEMA_VERSION}; "
                    "update tools/ to read it")
    if not doc["benchmarks"] and not allow_empty:
        _fail(path, "no benchmarks in the file (empty run)")
    names, parsed = [], {}
    for position, entry in enumerate(doc["benchmarks"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            _fail(path, f"benchmark entry {position} has no name")
        name = parsed.get(entry["name"])  # each name repeats once per repetition
        if name is None:
            try:
                name = parsed[entry["name"]] = parse_name(entry["name"])
            except KbenchError as err:
                _fail(path, str(err))
        names.append(name)
    if version >= 2 and expand:
        expand_entries(doc["benchmarks"], names, context)
    return Results(str(path), context, doc["benchmarks"], names)


def merge(parts, run_args):
    """Merge the per-family files of one run into one document (a plain dict).

    The context is the first file's plus ``kprim_families`` (families seen in benchmark names,
    in order of appearance) and ``kprim_run_args``; benchmarks are concatenated. Raises
    :class:`KbenchError` when the files disagree on a :data:`RUN_KEYS` key (not one run) or
    when a benchmark name appears in two files.
    """
    if not parts:
        raise KbenchError("write: no input files")
    first = parts[0]
    context = dict(first.context)
    seen, families, benchmarks = {}, [], []
    for part in parts:
        for key in RUN_KEYS:
            if str(part.context.get(key)) != str(context.get(key)):
                raise KbenchError(f"{part.path}: context {key} {part.context.get(key)!r} differs "
                                  f"from {first.path}'s {context.get(key)!r}: not one run")
        for entry, name in zip(part.benchmarks, part.names):
            if entry["name"] in seen and seen[entry["name"]] != part.path:
                raise KbenchError(f"benchmark {entry['name']} is in both {seen[entry['name']]} "
                                  f"and {part.path}")
            seen[entry["name"]] = part.path
            if name.family not in families:
                families.append(name.family)
            benchmarks.append(entry)
    context["kprim_families"] = ",".join(families)
    context["kprim_run_args"] = run_args
    return {"context": context, "benchmarks": benchmarks}


def result_path(doc, results_dir, now=None):
    """``<results_dir>/<machine-id>/<UTC stamp>-<sha>[-dirty][-injected].json`` for a document.

    ``-dirty``: context ``kprim_git_dirty`` is set (tracked files differed from the commit);
    ``-injected``: context ``kprim_inject`` is non-empty (a fault-injection run, never a
    normal one). ``now`` (an aware ``datetime``) defaults to the current UTC time. Raises
    :class:`KbenchError` when the machine id or sha is missing or not a safe path component.
    """
    context = doc["context"]
    machine = str(context.get("kprim_machine_id") or "")
    sha = str(context.get("kprim_git_sha") or "")
    for key, value in (("kprim_machine_id", machine), ("kprim_git_sha", sha)):
        if not _SAFE_COMPONENT.match(value) or ".." in value:
            raise KbenchError(f"context {key} {value!r} is missing or not usable in a file name")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dirty = "-dirty" if str(context.get("kprim_git_dirty", "0")) not in ("0", "", "false") else ""
    injected = "-injected" if injected_run(context) else ""
    return os.path.join(results_dir, machine, f"{stamp}-{sha}{dirty}{injected}.json")


def injected_run(context):
    """True when ``context`` records a fault injection (non-empty ``kprim_inject``)."""
    return bool(str(context.get("kprim_inject") or "").strip())


# --- Strict JSON -------------------------------------------------------------------------

def _finite(value):
    """False for a float NaN or infinity, true for anything else."""
    return not (isinstance(value, float) and not math.isfinite(value))


def json_safe(value):
    """``value`` with every non-finite float replaced by ``None`` (JSON ``null``), recursively.

    For reports (``compare``/``history``/``export`` JSON), whose keys are fixed: a figure that
    is not a number is ``null`` there. Results files leave such counters out instead
    (:func:`round_document`).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps_strict(value, indent=None):
    """Strict JSON text of ``value`` (RFC 8259: no NaN/Infinity; those become ``null``).

    ``indent=None`` gives compact output (no spaces after separators).
    """
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(json_safe(value), indent=indent, separators=separators, allow_nan=False)


#: Significant digits kept for non-integral numbers in results files.
DIGITS = 6

#: Diagnostic counters: read by people and reports, never gated, never an input of another
#: stored figure; kept to :data:`DIAGNOSTIC_DIGITS` significant digits (results/SCHEMA.md).
#: Their run-to-run noise is percents, so the 4th digit is already noise.
DIAGNOSTIC = frozenset(("fairness", "share_min", "share_max", "floor_ratio",
                        "handover_floor_ratio", "cpu_util", "steal_pct"))
DIAGNOSTIC_DIGITS = 4
#: ``drain_ms`` (stop flag to the last worker's exit: a scheduler wake-up, 0.3-0.7 ms from one
#: trial to the next) to 3.
COARSE = frozenset(("drain_ms",))
COARSE_DIGITS = 3


def round_number(value, digits=DIGITS):
    """A results-file number: integral floats exact as ints, others to ``digits`` digits."""
    if isinstance(value, bool) or not isinstance(value, float):
        return value
    if value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    rounded = float(f"{value:.{digits}g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded


def round_document(value, key=None):
    """``value`` rounded (:func:`round_number`; members named in :data:`DIAGNOSTIC` to
    :data:`DIAGNOSTIC_DIGITS`, in :data:`COARSE` to :data:`COARSE_DIGITS`) with non-finite
    numbers left out.

    An object member whose value is NaN or infinite is dropped; in a list such a value
    becomes ``null`` (a position cannot be left out).
    """
    if isinstance(value, dict):
        return {k: round_document(v, k) for k, v in value.items() if _finite(v)}
    if isinstance(value, (list, tuple)):
        return [round_document(v) if _finite(v) else None for v in value]
    digits = COARSE_DIGITS if key in COARSE else DIAGNOSTIC_DIGITS if key in DIAGNOSTIC else DIGITS
    return round_number(value, digits)


# --- Redundant fields: left out when written, restored when loaded (schema 2) -------------

#: Relative difference within which a recomputed field counts as the stored one: rounding
#: each input to 6 significant digits moves a product or quotient of two by up to 1e-5.
DERIVED_RTOL = 2e-5
#: The same for a :data:`DIAGNOSTIC` field (4 digits: each rounding moves it by up to 5e-4).
DIAGNOSTIC_RTOL = 1.5e-3

#: Google Benchmark fields never written: per-binary indices, meaningless in a merged file.
NOT_WRITTEN = ("family_index", "per_family_instance_index")


def _num(entry, key):
    """``entry[key]`` as a float when it is a finite number, else ``None``."""
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _positive(value):
    """``value`` when it is a number above 0, else ``None``."""
    return value if value is not None and value > 0 else None


def _harness_trial(entry):
    """True for a harness trial: every such entry carries ``drain_ms``."""
    return "drain_ms" in entry


def _derive_ns_per_op(entry, name, context):
    """``ns_per_op`` = ``real_time`` in ns (wall time per operation, all threads)."""
    real = _positive(_num(entry, "real_time"))
    scale = _TIME_UNIT_NS.get(entry.get("time_unit", "ns"))
    return real * scale if real and scale else None


def _derive_ops_per_s(entry, name, context):
    """``ops_per_s`` = 1e9 / ``ns_per_op``."""
    ns = _positive(_num(entry, "ns_per_op"))
    return 1e9 / ns if ns else None


def _derive_trial_s(entry, name, context):
    """``trial_s`` = ``ops`` x ``ns_per_op`` / 1e9 (harness trials)."""
    ops, ns = _positive(_num(entry, "ops")), _positive(_num(entry, "ns_per_op"))
    return ops * ns / 1e9 if ops and ns and _harness_trial(entry) else None


def _derive_kprim_threads(entry, name, context):
    """``kprim_threads`` = the name's ``threads:N`` (harness trials)."""
    return float(name.threads) if _harness_trial(entry) else None


def _derive_worker_cpu_s(entry, name, context):
    """``worker_cpu_s`` = ``cpu_time`` (workers' CPU ns per operation) x ``ops`` / 1e9."""
    cpu, ops = _num(entry, "cpu_time"), _positive(_num(entry, "ops"))
    scale = _TIME_UNIT_NS.get(entry.get("time_unit", "ns"))
    if cpu is None or not ops or not scale or not _harness_trial(entry):
        return None
    return cpu * scale * ops / 1e9


def _derive_cpu_util(entry, name, context):
    """``cpu_util`` = ``worker_cpu_s`` / (``kprim_threads`` x ``trial_s``)."""
    cpu_s, threads = _num(entry, "worker_cpu_s"), _positive(_num(entry, "kprim_threads"))
    trial = _positive(_num(entry, "trial_s"))
    if cpu_s is None or not threads or not trial or not _harness_trial(entry):
        return None
    return cpu_s / (threads * trial)


#: Context key: ``family:clock_ns,...``, each family's most common ``clock_ns`` (each binary
#: measures its clock once; a merged run holds several binaries), then
#: ``family/contender:clock_ns`` for a contender whose most common one differs (bench_slab
#: runs one process per general allocator).
CLOCK_BY_FAMILY_KEY = "kprim_clock_ns_by_family"


def _clock_by_family(context):
    """``{family: clock_ns}`` from context :data:`CLOCK_BY_FAMILY_KEY` (empty when absent)."""
    out = {}
    for item in str(context.get(CLOCK_BY_FAMILY_KEY) or "").split(","):
        family, _, value = item.partition(":")
        try:
            out[family] = float(value)
        except ValueError:
            continue
    return out


def _derive_clock_ns(entry, name, context):
    """``clock_ns`` = the family's in context :data:`CLOCK_BY_FAMILY_KEY`, else context
    ``kprim_clock_ns`` (harness trials)."""
    clocks = _clock_by_family(context)
    value = clocks.get(f"{name.family}/{name.contender}", clocks.get(name.family))
    if value is None:
        try:
            value = float(context.get("kprim_clock_ns"))
        except (TypeError, ValueError):
            return None
    return value if math.isfinite(value) and _harness_trial(entry) else None


def _derive_floor_ratio(entry, name, context):
    """``floor_ratio`` = ``ns_per_op`` / context ``kprim_floor_transfer_ns`` (contended)."""
    try:
        floor = float(context.get("kprim_floor_transfer_ns"))
    except (TypeError, ValueError):
        return None
    ns = _num(entry, "ns_per_op")
    if name.workload != "contended" or ns is None or not math.isfinite(floor) or floor <= 0:
        return None
    return ns / floor


def _derive_objects_per_op(entry, name, context):
    """``objects_per_op`` = the name's ``live:N``, else 1 (bench_slab harness trials)."""
    if name.family != "slab" or not _harness_trial(entry):
        return None
    live = dict(name.params).get("live", "1")
    return float(live) if live.isdigit() else None


def _derive_ns_per_object(entry, name, context):
    """``ns_per_object`` = ``ns_per_op`` / ``objects_per_op`` (bench_slab)."""
    ns, objects = _num(entry, "ns_per_op"), _positive(_num(entry, "objects_per_op"))
    return ns / objects if ns is not None and objects else None


def _derive_zero(entry, name, context):
    """0 on harness trials (``abandoned``, ``steal_pct``: absent means none)."""
    return 0.0 if _harness_trial(entry) else None


def _derive_one_thread_fair(entry, name, context):
    """1 on one-thread harness trials that completed operations (fairness, shares)."""
    ops = _positive(_num(entry, "ops"))
    return 1.0 if ops and name.threads == 1 and _harness_trial(entry) else None


def _derive_fairness(entry, name, context):
    """``fairness``: 1 on one-thread trials (:func:`_derive_one_thread_fair`); at two threads
    Jain's index of the two shares, 2 / (``share_min``^2 + (2 - ``share_min``)^2)."""
    one = _derive_one_thread_fair(entry, name, context)
    low = _num(entry, "share_min")
    if one is not None or name.threads != 2 or low is None or not _harness_trial(entry):
        return one
    high = 2.0 - low
    return 2.0 / (low * low + high * high) if low > 0 else None


def _derive_share_max(entry, name, context):
    """``share_max``: 1 on one-thread trials; 2 - ``share_min`` at two threads (the two shares
    sum to the thread count)."""
    one = _derive_one_thread_fair(entry, name, context)
    low = _num(entry, "share_min")
    if one is not None or name.threads != 2 or low is None or not _harness_trial(entry):
        return one
    return 2.0 - low if low > 0 else None


def _derive_p999(entry, name, context):
    """``lat_p999_ns`` = ``lat_p99_ns`` (left out only where the two are equal)."""
    return _num(entry, "lat_p99_ns") if _harness_trial(entry) else None


def _derive_lat_samples(entry, name, context):
    """``lat_samples`` = ``ops`` (left out only where every operation was timed)."""
    return _num(entry, "ops") if _harness_trial(entry) and "lat_p50_ns" in entry else None


def _derive_one(entry, name, context):
    """Google Benchmark's ``threads`` and ``iterations``: 1 for every kprim trial."""
    return 1.0


#: (key, recompute) in restoring order: each rule may use the keys restored before it.
#: A key is left out of a written entry only when its rule gives back the stored value.
DERIVED = (
    ("threads", _derive_one),
    ("iterations", _derive_one),
    ("ns_per_op", _derive_ns_per_op),
    ("ops_per_s", _derive_ops_per_s),
    ("trial_s", _derive_trial_s),
    ("kprim_threads", _derive_kprim_threads),
    ("worker_cpu_s", _derive_worker_cpu_s),
    ("cpu_util", _derive_cpu_util),
    ("objects_per_op", _derive_objects_per_op),
    ("ns_per_object", _derive_ns_per_object),
    ("clock_ns", _derive_clock_ns),
    ("floor_ratio", _derive_floor_ratio),
    ("lat_p999_ns", _derive_p999),
    ("lat_samples", _derive_lat_samples),
    ("abandoned", _derive_zero),
    ("steal_pct", _derive_zero),
    ("share_min", _derive_one_thread_fair),
    ("fairness", _derive_fairness),
    ("share_max", _derive_share_max),
)


#: The latency summary of a harness trial, written as one list member (schema 4): the five
#: keys cost 70 bytes per entry as members and 9 as ``"lat":[...]``, a sixth of a default run's
#: file. The loader gives the five members back; readers of loaded entries never see ``lat``.
LAT_KEY = "lat"
LAT_FIELDS = ("lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns", "lat_samples")


def _pack_latency(entry):
    """Replace the five :data:`LAT_FIELDS` of ``entry`` by ``lat: [p50, p99, p999, max,
    samples]`` (in place) when it has all five as numbers; otherwise leave them as members.
    Raises :class:`KbenchError` for an entry that publishes a counter named :data:`LAT_KEY`."""
    if LAT_KEY in entry:
        raise KbenchError(f"benchmark {entry.get('name')}: counter '{LAT_KEY}' is reserved by "
                          "results files (the packed latency summary); rename it")
    if any(_num(entry, key) is None for key in LAT_FIELDS):
        return
    entry[LAT_KEY] = [entry.pop(key) for key in LAT_FIELDS]


def _unpack_latency(entry):
    """Give back the :data:`LAT_FIELDS` members of a packed ``lat`` list (in place)."""
    packed = entry.get(LAT_KEY)
    if isinstance(packed, list) and len(packed) == len(LAT_FIELDS):
        del entry[LAT_KEY]
        for key, value in zip(LAT_FIELDS, packed):
            if value is not None:
                entry.setdefault(key, value)


#: Context key naming the :data:`DERIVED` keys :func:`expand_entries` must not fill in (the
#: run did not measure them, e.g. a file from before ``steal_pct`` existed).
NOT_DERIVED_KEY = "kprim_not_derived"


def _skipped(context):
    """The set of keys listed in context :data:`NOT_DERIVED_KEY`."""
    return {k for k in str(context.get(NOT_DERIVED_KEY) or "").split(",") if k}


def _restore(entry, name, context, skip=frozenset()):
    """Fill in every :data:`DERIVED` key ``entry`` lacks and can be recomputed (in place)."""
    for key, rule in DERIVED:
        if key not in entry and key not in skip:
            value = rule(entry, name, context)
            if value is not None:
                entry[key] = value


def _same(a, b, key=None):
    """True when two stored values agree (numbers within :data:`DERIVED_RTOL`, or
    :data:`DIAGNOSTIC_RTOL` for a :data:`DIAGNOSTIC` ``key``)."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if not numbers:
        return a == b
    rtol = DIAGNOSTIC_RTOL if key in DIAGNOSTIC else DERIVED_RTOL
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))


def _is_aggregate(entry, name):
    """True for a Google Benchmark aggregate entry (``_mean``, ``_median``, ...)."""
    return entry.get("run_type") == "aggregate" or name.aggregate is not None


def compact_entry(entry, name, context, repetitions=None, position=None):
    """A written (rounded) entry without the fields :func:`expand_entries` gives back.

    An aggregate entry is kept whole (less :data:`NOT_WRITTEN`). From a repetition entry are
    left out: ``run_name`` when it equals ``name``, ``repetitions`` when it equals the
    number of entries of the name (``repetitions`` argument), ``repetition_index`` when it
    equals the entry's position among them (``position``; Google Benchmark reports a
    benchmark's repetitions together, in index order, also when interleaved),
    :data:`NOT_WRITTEN`, and every :data:`DERIVED` key whose recomputation from the entry as
    written reproduces the stored value; the latency summary is packed into one ``lat`` list
    (:func:`_pack_latency`). ``context`` is the written context (its :data:`NOT_DERIVED_KEY` is
    honoured).
    """
    skip = _skipped(context)
    if _is_aggregate(entry, name):
        return {k: v for k, v in entry.items() if k not in NOT_WRITTEN}
    kept = {k: v for k, v in entry.items() if k not in NOT_WRITTEN
            and not (k == "run_name" and v == entry.get("name"))
            and not (k == "repetitions" and repetitions is not None and v == repetitions)
            and not (k == "repetition_index" and position is not None and v == position)}
    _pack_latency(kept)
    for key, _ in DERIVED:
        if key not in kept or key in skip:
            continue
        trial = {k: v for k, v in kept.items() if k != key}
        _restore(trial, name, context, skip)
        if key in trial and _same(trial[key], kept[key], key):
            del kept[key]
    return kept


def expand_entries(entries, names, context):
    """Restore the fields a schema-2 writer left out of repetition entries (in place; see
    :func:`compact_entry`). Aggregate entries are written whole and left as they are."""
    skip = _skipped(context)
    counts, positions = {}, {}
    for entry in entries:
        if entry.get("run_type") != "aggregate":
            counts[entry["name"]] = counts.get(entry["name"], 0) + 1
    for entry, name in zip(entries, names):
        if _is_aggregate(entry, name):
            continue
        entry.setdefault("run_name", entry["name"])
        position = positions.get(entry["name"], 0)
        positions[entry["name"]] = position + 1
        entry.setdefault("repetitions", counts.get(entry["name"], 1))
        entry.setdefault("repetition_index", position)
        _unpack_latency(entry)
        _restore(entry, name, context, skip)


# --- Fields computed when a run is written ------------------------------------------------

def floor_transfer_ns(entries, names):
    """The run's transfer floor: min over ``floor/transfer/<class>`` of the median
    ``transfer_ns`` over that class's repetitions; ``None`` when the run has none."""
    per_class = {}
    for entry, name in zip(entries, names):
        if name.family != "floor" or name.workload != "transfer" or name.aggregate \
                or entry.get("run_type") == "aggregate" or entry.get("error_occurred"):
            continue
        value = _positive(_num(entry, "transfer_ns"))
        if value:
            per_class.setdefault(name.contender, []).append(value)
    if not per_class:
        return None
    medians = []
    for values in per_class.values():
        values = sorted(values)
        mid = len(values) // 2
        medians.append(values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2)
    return min(medians)


def add_floor_units(doc, names):
    """Floor units (in place): context ``kprim_floor_transfer_ns``; ``handover_floor_ratio``
    (``handover_p50_ns`` / floor) on handover entries and ``floor_ratio`` (``ns_per_op`` /
    floor) on contended entries. Nothing when the run has no ``floor/transfer`` entries."""
    floor = floor_transfer_ns(doc["benchmarks"], names)
    if floor is None:
        return
    doc["context"]["kprim_floor_transfer_ns"] = f"{floor:.{DIGITS}g}"
    for entry, name in zip(doc["benchmarks"], names):
        if entry.get("run_type") == "aggregate" or name.aggregate:
            continue
        handover = _num(entry, "handover_p50_ns")
        # A handover trial that measured its own floor (handover_floor_ns, the machine's state
        # at that trial) keeps its own ratio; the run's floor serves the others.
        if name.workload == "handover" and handover is not None \
                and _num(entry, "handover_floor_ratio") is None:
            entry["handover_floor_ratio"] = handover / floor
        ns = _num(entry, "ns_per_op")
        if ns is None:
            ns = _derive_ns_per_op(entry, name, doc["context"])
        if name.workload == "contended" and ns is not None:
            entry["floor_ratio"] = ns / floor


def written_document(doc):
    """The schema-2 form of a merged document: what :func:`write_run` stores.

    Repetition entries only (an aggregate entry is kept only for a benchmark that has no
    repetitions in the file), floor units added, numbers rounded, non-finite counters and
    redundant fields left out (:func:`compact_entry`), context ``kprim_schema_version`` 2.
    """
    benchmarks, names = [], []
    with_reps = {parse_name(e["name"]).base for e in doc["benchmarks"]
                 if e.get("run_type") != "aggregate" and parse_name(e["name"]).aggregate is None}
    for entry in doc["benchmarks"]:
        name = parse_name(entry["name"])
        aggregate = entry.get("run_type") == "aggregate" or name.aggregate is not None
        if aggregate and name.base in with_reps:
            continue
        benchmarks.append(dict(entry))
        names.append(name)
    context = dict(doc["context"])
    context["kprim_schema_version"] = str(SCHEMA_VERSION)
    context.pop(NOT_DERIVED_KEY, None)
    if "kprim_clock_ns" not in context:
        clocks = [_num(e, "clock_ns") for e in benchmarks if _num(e, "clock_ns") is not None]
        if clocks:
            context["kprim_clock_ns"] = f"{max(set(clocks), key=clocks.count):g}"
    context.pop(CLOCK_BY_FAMILY_KEY, None)
    per_family, per_contender = {}, {}
    for entry, name in zip(benchmarks, names):
        clock = _num(entry, "clock_ns")
        if clock is not None:
            per_family.setdefault(name.family, []).append(clock)
            per_contender.setdefault((name.family, name.contender), []).append(clock)
    mode = {key: float(f"{max(set(v), key=v.count):.{DIGITS}g}")
            for key, v in list(per_family.items()) + list(per_contender.items())}
    items = [f"{family}:{mode[family]:g}" for family in per_family]
    items += [f"{family}/{contender}:{mode[(family, contender)]:g}"
              for family, contender in per_contender if mode[(family, contender)] != mode[family]]
    if items:
        context[CLOCK_BY_FAMILY_KEY] = ",".join(items)
    out = {"context": context, "benchmarks": benchmarks}
    add_floor_units(out, names)
    out = round_document(out)
    spurious = set()
    for entry, name in zip(out["benchmarks"], names):
        if _is_aggregate(entry, name):
            continue
        probe = dict(entry)
        _restore(probe, name, out["context"])
        spurious.update(k for k in probe if k not in entry)
    if spurious:
        out["context"][NOT_DERIVED_KEY] = ",".join(k for k, _ in DERIVED if k in spurious)
    counts, positions = {}, []
    for entry in out["benchmarks"]:
        if entry.get("run_type") != "aggregate":
            positions.append(counts.get(entry["name"], 0))
            counts[entry["name"]] = positions[-1] + 1
        else:
            positions.append(None)
    out["benchmarks"] = [compact_entry(e, n, out["context"],
                                       None if p is None else counts[e["name"]], p)
                         for e, n, p in zip(out["benchmarks"], names, positions)]
    return out


def results_text(doc):
    """Compact strict JSON of a written document plus a final newline."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n"


def write_new(path, text):
    """Write ``text`` to ``path`` atomically with mode 0644, never replacing an existing file.

    The text goes to a ``.tmp-*`` file in the same directory, is fsynced, then hard-linked to
    ``path`` (``os.link`` fails if ``path`` exists); the temporary file is always removed.
    Raises :class:`KbenchError` when ``path`` exists or the write fails.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path):
        raise KbenchError(f"{path} already exists; refusing to overwrite it")
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    except OSError as err:
        raise KbenchError(f"cannot write under {directory}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except FileExistsError:
        raise KbenchError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as err:
        raise KbenchError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def write_run(paths, results_dir, run_args, now=None):
    """Load ``paths``, merge them (:func:`merge`) and write the run file (schema 2).

    A family whose ``--benchmark_filter`` matched nothing leaves an empty file (Google
    Benchmark writes 0 bytes) or an empty ``benchmarks`` list: such inputs are left out.
    The file is :func:`written_document` of the merge, as compact strict JSON.
    Returns ``(path written, [inputs left out])``; raises :class:`KbenchError` when every
    input is empty or any other input is unusable.
    """
    parts, skipped = [], []
    for p in paths:
        try:
            empty = os.path.getsize(p) == 0
        except OSError:
            empty = False  # load() reports the real problem
        part = None if empty else load(p, allow_empty=True)
        if part is None or not part.benchmarks:
            skipped.append(p)
        else:
            parts.append(part)
    if not parts:
        raise KbenchError("write: no benchmarks in any input (did --filter match nothing?)")
    doc = merge(parts, run_args)
    path = result_path(doc, results_dir, now)
    text = results_text(written_document(doc))
    try:
        write_new(path, text)
    except KbenchError as err:
        if os.path.lexists(path):
            raise
        # A finished run is never thrown away: an unwritable results directory (read-only
        # mount, a path under a regular file, a full disk) sends it to a fallback under
        # $TMPDIR with the same <machine-id>/<file> layout, and says where.
        import sys
        fallback = os.path.join(tempfile.gettempdir(), "kbench-results",
                                os.path.relpath(path, results_dir))
        write_new(fallback, text)
        print(f"kbench: warning: {err}; the run was written to {fallback} instead "
              f"(move it under {results_dir} later)", file=sys.stderr)
        path = fallback
    return path, skipped


def curves(cases):
    """Group cases into scaling curves.

    Returns ``{(family, workload, case_params): {contender: {threads: Case}}}`` with groups,
    contenders and threads in file order, from a ``{base name: Case}`` mapping.
    """
    out = {}
    for case in cases.values():
        name = case.name
        group = out.setdefault((name.family, name.workload, name.case_params), {})
        group.setdefault(name.contender, {})[name.threads] = case
    return out


def group_title(key):
    """``family/workload [params]`` for a :func:`curves` group key."""
    family, workload, params = key
    extra = format_params(params)
    return f"{family}/{workload}" + (f" [{extra}]" if extra else "")
