"""Results files: load and validate, parse benchmark names, group repetitions, merge and write.

Every reader in this package goes through :func:`load`, so bad input becomes one
:class:`~kprim_tools.KbenchError` with a readable message instead of a traceback.
"""

import datetime
import json
import os
import re
import tempfile
from dataclasses import dataclass, field

from . import SCHEMA_VERSION, KbenchError

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
        return text + "/iterations:1/manual_time"

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


def parse_name(name):
    """Parse a Google Benchmark name of the kprim grammar into a :class:`BenchName`.

    Raises :class:`KbenchError` when the name does not follow the grammar.
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


def load(path, allow_empty=False):
    """Read and validate one results file; return a :class:`Results`.

    Raises :class:`KbenchError` (one line naming the file) when the file is missing or
    unreadable, is not JSON or is truncated, lacks ``context``/``benchmarks``, comes from a
    schema version newer than :data:`SCHEMA_VERSION`, has no benchmarks (unless
    ``allow_empty``), or holds a name outside the kprim grammar.
    """
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
    names = []
    for position, entry in enumerate(doc["benchmarks"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            _fail(path, f"benchmark entry {position} has no name")
        try:
            names.append(parse_name(entry["name"]))
        except KbenchError as err:
            _fail(path, str(err))
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
    """``<results_dir>/<machine-id>/<UTC stamp>-<sha>[-dirty].json`` for a merged document.

    ``now`` (an aware ``datetime``) defaults to the current UTC time. Raises
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
    return os.path.join(results_dir, machine, f"{stamp}-{sha}{dirty}.json")


def write_new(path, text):
    """Write ``text`` to ``path`` atomically, never replacing an existing file.

    The text goes to a ``.tmp-*`` file in the same directory, is fsynced, then hard-linked to
    ``path`` (``os.link`` fails if ``path`` exists); the temporary file is always removed.
    Raises :class:`KbenchError` when ``path`` exists or the write fails.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    except OSError as err:
        raise KbenchError(f"cannot write under {directory}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
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
    """Load ``paths``, merge them (:func:`merge`) and write the run file.

    A family whose ``--benchmark_filter`` matched nothing leaves an empty file (Google
    Benchmark writes 0 bytes) or an empty ``benchmarks`` list: such inputs are left out.
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
    write_new(path, json.dumps(doc, indent=2) + "\n")
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
