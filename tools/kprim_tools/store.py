"""The results store: every run's samples in SQLite (default) or PostgreSQL (a fleet).

The JSON results files stay the interchange format; the store indexes them so ``history``
(and the report's sparklines) query a year of runs instead of loading every file. It can be
rebuilt from the files at any time (``./kbench ingest results/*/*.json``).

Where (:func:`open_store`): ``--store URL``, else ``$KBENCH_STORE``, else the SQLite file
``results/kbench.sqlite``. A URL is ``postgresql://[user[:password]@][host][:port]/dbname
[?host=/socket/dir]`` (libpq syntax, via Debian's python3-psycopg2), ``sqlite:PATH`` or a
plain file path (SQLite).

Tables (the same on both backends):

- ``machines``: one row per ``kprim_fingerprint`` with its machine id, CPU model, PUs and
  provenance (the machine-describing context keys of its first run, as JSON);
- ``runs``: one row per results file: ``file_sha`` (SHA-256 of the file's bytes, UNIQUE:
  ingesting a file twice is a no-op), path, size and mtime (``history`` skips known files
  without reading them), UTC ``stamp`` (from the file name, else the context's ``date``),
  ``git_sha``, ``dirty``, ``injected`` (a ``--inject`` fault-injection run), ``run_args``,
  schema version, the whole context (JSON) and ``document``: the file's bytes, zlib-compressed
  (about a fifth of the file), from which :meth:`Store.load_run` rebuilds the run exactly as
  :func:`results.load` reads the file;
- ``benchmarks``: one row per base name, its parts parsed (family, workload, contender,
  threads, the other parameters as ``key:value/...``);
- ``samples``: one row per entry of a file (every repetition, aggregates where a file has
  only those): position in the file, repetition index, aggregate name, ``valid`` (completed:
  no error, not abandoned), ``ops_per_s`` and ``ns_per_op``, keyed by (run, benchmark,
  position). The entry's other counters are in the run's ``document``: one JSON string per
  sample cost more than half of an ingest and made the store as large as the files;
- ``cases``: per run and benchmark the summary of the valid repetitions' ``ops_per_s`` (n,
  median, min, max, quartiles, dropped count), the figures ``history`` and
  :meth:`Store.series` read.

Ingest speed (``./kbench ingest`` of many files): worker processes read, hash, parse and
compress the files; the one process holding the connection writes them, one transaction per
file (SQLite: ``executemany`` into WITHOUT ROWID tables in key order; PostgreSQL: ``COPY``).
A file whose bytes are already stored is not parsed. The figures are in the README (results
store) with the command that measures them (``tests/history_scale.py``).

Concurrency: each file is ingested in one transaction (SQLite: WAL journal, ``BEGIN
IMMEDIATE`` and a 10-minute busy timeout, so concurrent writers queue; PostgreSQL: READ
COMMITTED with ``ON CONFLICT DO NOTHING`` on every unique key, rows inserted in name order
so two writers cannot deadlock). Two processes ingesting at once lose nothing, and the same
file ingested by both is stored once.
"""

import datetime
import hashlib
import io
import json
import os
import re
import sys
import time
import zlib

from . import KbenchError
from .names import ROOT, RUN_FILE, SUFFIX
from .results import NOT_DERIVED_KEY, Results, load, metric_value

#: Store schema version (``meta`` table); a newer store is refused, an older one is rebuilt
#: from the files it names (version 1 kept every sample's counters as JSON, no document).
STORE_VERSION = 2

#: Environment variable naming the store when ``--store`` is not given.
ENV = "KBENCH_STORE"

#: Default SQLite file.
DEFAULT_PATH = os.path.join(ROOT, "results", "kbench.sqlite")

#: Context keys describing the machine (stored in ``machines.provenance``).
PROVENANCE_KEYS = ("host_name", "num_cpus", "mhz_per_cpu", "kprim_cpu_model", "kprim_packages",
                   "kprim_cores", "kprim_pus", "kprim_smt", "kprim_caches", "kprim_memory_gib",
                   "kprim_kernel", "kprim_glibc", "kprim_governor", "kprim_turbo", "kprim_thp")

_ID = "@ID@"
_REAL = "@REAL@"
_BLOB = "@BLOB@"
_KEYED = "@KEYED@"  # SQLite: WITHOUT ROWID (the primary key is the table's only b-tree)
_TABLES = ("samples", "cases", "runs", "benchmarks", "machines")
_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    f"CREATE TABLE IF NOT EXISTS machines (id {_ID}, fingerprint TEXT NOT NULL UNIQUE, "
    "machine_id TEXT, cpu_model TEXT, pus INTEGER, provenance TEXT)",
    f"CREATE TABLE IF NOT EXISTS runs (id {_ID}, machine BIGINT NOT NULL REFERENCES machines(id),"
    " file_sha TEXT NOT NULL UNIQUE, path TEXT, size BIGINT, mtime_ns BIGINT, stamp TEXT NOT NULL,"
    " git_sha TEXT, dirty INTEGER, injected INTEGER, inject TEXT, run_args TEXT,"
    f" schema_version INTEGER, context TEXT, ingested TEXT, document {_BLOB})",
    "CREATE INDEX IF NOT EXISTS runs_by_machine ON runs (machine, stamp)",
    f"CREATE TABLE IF NOT EXISTS benchmarks (id {_ID}, name TEXT NOT NULL UNIQUE, family TEXT,"
    " workload TEXT, contender TEXT, threads INTEGER, params TEXT)",
    f"CREATE TABLE IF NOT EXISTS cases (run BIGINT NOT NULL REFERENCES runs(id), benchmark BIGINT"
    f" NOT NULL REFERENCES benchmarks(id), n INTEGER, dropped INTEGER, from_aggregate INTEGER,"
    f" median {_REAL}, low {_REAL}, high {_REAL}, q1 {_REAL}, q3 {_REAL},"
    f" PRIMARY KEY (run, benchmark)) {_KEYED}",
    "CREATE INDEX IF NOT EXISTS cases_by_benchmark ON cases (benchmark)",
    f"CREATE TABLE IF NOT EXISTS samples (run BIGINT NOT NULL REFERENCES runs(id), benchmark"
    " BIGINT NOT NULL REFERENCES benchmarks(id), position INTEGER NOT NULL, repetition INTEGER,"
    f" aggregate TEXT, valid INTEGER, ops_per_s {_REAL}, ns_per_op {_REAL},"
    f" PRIMARY KEY (run, benchmark, position)) {_KEYED}",
)
_SAMPLE_COLUMNS = ("run", "benchmark", "position", "repetition", "aggregate", "valid",
                   "ops_per_s", "ns_per_op")
_CASE_COLUMNS = ("run", "benchmark", "n", "dropped", "from_aggregate", "median", "low", "high",
                 "q1", "q3")

_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def resolve_url(url=None, default_path=None):
    """The store URL in effect: ``url``, else ``$KBENCH_STORE``, else the SQLite file
    ``default_path`` (default ``results/kbench.sqlite``)."""
    if url:
        return url
    return os.environ.get(ENV) or (default_path or DEFAULT_PATH)


def open_store(url=None, default_path=None):
    """Open (creating the tables when needed) the store at ``url`` (see :func:`resolve_url`).

    Raises :class:`KbenchError` for an unknown scheme, an unopenable SQLite file, a
    PostgreSQL server that cannot be reached, or a store written by a newer kbench.
    """
    url = resolve_url(url, default_path)
    match = _URL_RE.match(url)
    scheme = match["scheme"].lower() if match else None
    if scheme in ("postgresql", "postgres"):
        return Store(_connect_pg(url), url, postgres=True)
    if scheme == "sqlite":
        path = url[len("sqlite://"):]
    elif scheme is not None:
        raise KbenchError(f"store {url!r}: unknown scheme {scheme!r} (postgresql://... , "
                          "sqlite:PATH or a file path)")
    elif url.startswith("sqlite:"):
        path = url[len("sqlite:"):]
    else:
        path = url
    if not path:
        raise KbenchError(f"store {url!r}: no SQLite file path")
    return Store(_connect_sqlite(path), url, postgres=False)


def _connect_sqlite(path):
    """A sqlite3 connection in autocommit mode (transactions are explicit), WAL journal."""
    import sqlite3
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise KbenchError(f"store {path}: directory {directory} does not exist")
    # Two processes creating the store at once: switching a new file to WAL needs a lock that
    # SQLite can refuse at once with "database is locked" without waiting on busy_timeout
    # (tools_python's two-ingests test failed so in a CI run). Those openings are retried,
    # bounded at about 60 s; any other error ends it.
    deadline = time.monotonic() + 60
    while True:
        try:
            return _open_sqlite(sqlite3, path)
        except sqlite3.OperationalError as err:
            said = str(err)
            if ("locked" not in said and "busy" not in said) or time.monotonic() > deadline:
                raise KbenchError(f"store {path}: cannot open SQLite database: {err}") from None
            time.sleep(0.05)
        except sqlite3.Error as err:
            raise KbenchError(f"store {path}: cannot open SQLite database: {err}") from None


def _open_sqlite(sqlite3, path):
    """One attempt of :func:`_connect_sqlite`: the connection and its PRAGMAs."""
    conn = sqlite3.connect(path, timeout=600, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 600000")
        # 16 KiB pages (set before WAL, effective only for a new file): a run's 1.2 MB of rows
        # is a quarter of the page writes and b-tree splits of the 4 KiB default.
        conn.execute("PRAGMA page_size = 16384")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (the store can be
        # rebuilt from the files after a power loss in any case).
        conn.execute("PRAGMA synchronous = NORMAL")
        # Foreign keys are declared but not enforced: the ids a sample or case row carries
        # come from the rows this transaction just read or wrote, and the per-row parent
        # lookups were a quarter of an ingest's writing time. (PostgreSQL enforces them.)
        # A 64 MiB page cache: one ingest transaction writes a few MiB of b-tree pages.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Checkpoint every 64 MiB of WAL (default 4 MiB: after every few files of an ingest).
        conn.execute("PRAGMA wal_autocheckpoint = 4096")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_pg(url):
    """A psycopg2 connection to ``url``; one ``KbenchError`` line when it fails."""
    try:
        import psycopg2
    except ImportError:
        raise KbenchError("a postgresql:// store needs python3-psycopg2 (./kbench deps)") from None
    try:
        conn = psycopg2.connect(url, connect_timeout=10)
    except psycopg2.Error as err:
        first = (str(err).strip().splitlines() or ["unknown error"])[0]
        raise KbenchError(f"store {_redact(url)}: cannot connect: {first}") from None
    return conn


def _redact(url):
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _stamp_of(path, context):
    """The run's UTC stamp ``YYYYmmddTHHMMSSZ``: from the file name, else context ``date``."""
    match = RUN_FILE.match(os.path.basename(path))
    if match:
        return match["stamp"]
    text = str(context.get("date") or "")
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise KbenchError(f"{path}: neither a <stamp>-<sha>.json name nor a context date "
                          f"({text!r}) to order the run by") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _read(path):
    """``(bytes, sha256 hex, size, mtime_ns)`` of a file (read once: hashed, then parsed);
    :class:`KbenchError` when unreadable."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            raw = handle.read()
    except OSError as err:
        raise KbenchError(f"cannot read {path}: {err.strerror or err}") from None
    return raw, hashlib.sha256(raw).hexdigest(), st.st_size, st.st_mtime_ns


def _quantile(ordered, q):
    """Linear-interpolation quantile of a sorted list (numpy.percentile's default)."""
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _summary(values):
    """``(n, median, min, max, q1, q3)`` of the values as :func:`stats.summarize` gives them
    (pure Python: a few values per case, where numpy's per-call cost dominates)."""
    if not values:
        return (0, None, None, None, None, None)
    ordered = sorted(values)
    return (len(ordered), _quantile(ordered, 0.5), ordered[0], ordered[-1],
            _quantile(ordered, 0.25), _quantile(ordered, 0.75))


_SCALE_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def _number(entry, key):
    """``metric_value(entry, key)`` for the two columns, inlined (called twice per sample)."""
    value = entry.get(key)
    if value is None or value is True or value is False or not isinstance(value, (int, float)):
        return None
    return float(value)


def _throughput(entry, skip):
    """``(ops_per_s, ns_per_op)`` of an entry as written, as :func:`results.load` restores
    them: a stored ``ns_per_op`` (e.g. per object) wins over ``real_time``, ``ops_per_s`` =
    1e9 / ``ns_per_op`` unless stored; a key the run did not derive (context
    ``kprim_not_derived``) is not recomputed."""
    ns = _number(entry, "ns_per_op")
    if ns is None and "ns_per_op" not in skip:
        real = _number(entry, "real_time")
        scale = _SCALE_NS.get(entry.get("time_unit", "ns"))
        ns = real * scale if real and real > 0 and scale else None
    ops = _number(entry, "ops_per_s")
    if ops is None and "ops_per_s" in entry:
        ops = metric_value(entry, "ops_per_s")
    if ops is None and "ops_per_s" not in skip and ns and ns > 0:
        ops = 1e9 / ns
    elif ops is None:
        ops = metric_value(entry, "ops_per_s")  # 1 / real_time, as Case.values() falls back
    return ops, ns


def _rows(results):
    """Sample rows ``(base, position, repetition, aggregate, valid, ops_per_s, ns_per_op)``
    and ``{base: summary row}`` of a file loaded without expansion."""
    samples, counts, cases = [], {}, {}
    skip = {k for k in str(results.context.get(NOT_DERIVED_KEY) or "").split(",") if k}
    reps, dropped, stand_in, bases = {}, {}, {}, {}
    fast = "ns_per_op" not in skip and "ops_per_s" not in skip
    for position, (entry, name) in enumerate(zip(results.benchmarks, results.names)):
        key = entry["name"]
        base = bases.get(key)
        if base is None:
            base = bases[key] = name.base
        aggregate = name.aggregate  # the name's _<aggregate> suffix (None: a repetition)
        rep = entry.get("repetition_index")
        if rep is None:
            rep = counts.get(key, 0)
        if entry.get("run_type") != "aggregate":
            counts[key] = counts.get(key, 0) + 1
        get = entry.get
        abandoned = get("abandoned")
        valid = not get("error_occurred") and (abandoned is None
                                               or not metric_value(entry, "abandoned"))
        # The common entry (schema 2: real_time only) inline; _throughput for the others.
        real = get("real_time")
        if (fast and get("ns_per_op") is None and get("ops_per_s") is None
                and (type(real) is float or type(real) is int) and real > 0
                and get("time_unit", "ns") == "ns"):
            ns = float(real)
            ops = 1e9 / ns
        else:
            ops, ns = _throughput(entry, skip)
        samples.append((base, position, rep if isinstance(rep, int) else None, aggregate,
                        int(valid), ops, ns))
        # Per base name the summary of the valid repetitions, as Results.cases() selects
        # them: completed repetitions; the median (else mean) aggregate only for a benchmark
        # with no repetition at all (never when repetitions exist but were all dropped).
        if aggregate is not None:
            if aggregate in ("median", "mean") and ops is not None:
                stand_in.setdefault(base, {})[aggregate] = ops
        elif valid:
            values = reps.get(base)
            if values is None:
                values = reps[base] = []
            if ops is not None:
                values.append(ops)
        else:
            dropped[base] = dropped.get(base, 0) + 1
    for base in bases.values():
        values, from_aggregate = reps.get(base), 0
        if values is None and base not in dropped and base in stand_in:
            named = stand_in[base]
            values, from_aggregate = [named.get("median", named.get("mean"))], 1
        n, *summary = _summary(values or [])
        cases[base] = (n, dropped.get(base, 0), from_aggregate, *summary)
    return samples, cases


#: What a worker of :meth:`Store.ingest_many` returns for a file already stored.
_KNOWN = "known"


def _prepare(path, known=frozenset(), read=None):
    """Read (unless ``read`` is :func:`_read`'s result), hash, parse and compress one file:
    the arguments of :meth:`Store._insert`, or ``(_KNOWN, sha)`` when ``known`` holds its
    SHA-256 (no store access: runs in a worker process for :meth:`Store.ingest_many`)."""
    raw, sha, size, mtime_ns = read or _read(path)
    if sha in known:
        return (_KNOWN, sha)
    parsed = load(path, expand=False, raw=raw)
    stamp = _stamp_of(path, parsed.context)
    samples, cases = _rows(parsed)
    light = Results(parsed.path, parsed.context, [], [])  # what _insert reads, cheap to pickle
    # Level 1: 3.6 MB -> 0.8 MB in 30 ms; level 6 saves a fifth more for twice the time.
    return (path, sha, size, mtime_ns, stamp, light, samples, cases, zlib.compress(raw, 1))


_WORKER_KNOWN = frozenset()


def _worker_init(known):
    """Pool initializer of :meth:`Store.ingest_many`: the SHA-256s stored when it started."""
    global _WORKER_KNOWN
    _WORKER_KNOWN = known


def _worker_prepare(path):
    """One file in a worker: :func:`_prepare`'s result or the :class:`KbenchError`."""
    try:
        return _prepare(path, _WORKER_KNOWN)
    except KbenchError as err:
        return err


_PG_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _ahead(pool, paths, depth):
    """:func:`_worker_prepare` of each path in order, at most ``depth`` files in flight (a
    parsed file is a few MiB: the workers must not run a year of runs ahead of the writer)."""
    import collections
    pending, todo = collections.deque(), iter(paths)
    for path in todo:
        pending.append(pool.apply_async(_worker_prepare, (path,)))
        if len(pending) >= depth:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _copy_text(rows):
    """``rows`` in PostgreSQL's COPY text format (None -> ``\\N``; the strings are
    benchmark-name parts and aggregate names, escaped all the same)."""
    out = io.StringIO()
    for row in rows:
        cells = []
        for value in row:
            if value is None:
                cells.append("\\N")
            elif isinstance(value, float):
                text = repr(value)
                cells.append(_PG_SPECIAL.get(text, text))
            elif isinstance(value, str):
                cells.append(value.replace("\\", "\\\\").replace("\t", "\\t")
                             .replace("\n", "\\n").replace("\r", "\\r"))
            else:
                cells.append(str(value))
        out.write("\t".join(cells))
        out.write("\n")
    out.seek(0)
    return out


class Store:
    """An open store (see the module docstring); close it with :meth:`close` or ``with``."""

    def __init__(self, conn, url, postgres):
        self.conn, self.url, self.postgres = conn, url, postgres
        self._bench_ids = {}
        stale = self._schema()
        if stale:
            self._rebuild(stale)

    # --- plumbing ------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the connection."""
        self.conn.close()

    def _sql(self, text):
        """``text`` with ``?`` placeholders in the backend's form."""
        return text.replace("?", "%s") if self.postgres else text

    def _errors(self):
        """The backend's exception base class."""
        if self.postgres:
            import psycopg2
            return psycopg2.Error
        import sqlite3
        return sqlite3.Error

    def _begin(self):
        """Start a write transaction; return a cursor."""
        cur = self.conn.cursor()
        if not self.postgres:
            cur.execute("BEGIN IMMEDIATE")
        return cur

    def _commit(self):
        """Commit the open transaction."""
        self.conn.execute("COMMIT") if not self.postgres else self.conn.commit()

    def _rollback(self):
        """Roll back the open transaction (none open: nothing)."""
        try:
            if self.postgres:
                self.conn.rollback()
            elif self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except self._errors():
            pass

    def _query(self, text, params=()):
        """All rows of a read query (PostgreSQL: then ends the read transaction)."""
        cur = self.conn.cursor()
        cur.execute(self._sql(text), params)
        rows = cur.fetchall()
        if self.postgres:
            self.conn.rollback()
        return rows

    def _iter(self, text, params=()):
        """Rows of a read query one at a time (bounded memory for large results)."""
        if self.postgres:
            cur = self.conn.cursor(name=f"kbench_{id(text)}")
            cur.itersize = 20000
        else:
            cur = self.conn.cursor()
        cur.execute(self._sql(text), params)
        yield from cur
        cur.close()
        if self.postgres:
            self.conn.rollback()

    def _many(self, cur, head, rows, width, tail=""):
        """Insert ``rows`` (``width`` columns) with ``head`` = ``INSERT INTO t (cols)``."""
        if not rows:
            return
        if self.postgres:
            from psycopg2.extras import execute_values
            execute_values(cur, f"{head} VALUES %s {tail}", rows, page_size=5000)
        else:
            cur.executemany(f"{head} VALUES ({','.join('?' * width)}) {tail}", rows)

    def _fail(self, what, err):
        """Roll back and raise ``KbenchError`` for a backend error."""
        self._rollback()
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise KbenchError(f"store {_redact(self.url)}: {what}: {first}") from None

    def _schema(self):
        """Create the tables (idempotent; concurrent openers serialised by a lock). A store
        of an older version is emptied: return the paths of its runs (to re-ingest)."""
        stale = []
        try:
            cur = self._begin()
            if self.postgres:
                cur.execute("SELECT pg_advisory_xact_lock(4711017)")
            cur.execute(_DDL[0])
            cur.execute(self._sql("SELECT value FROM meta WHERE key = ?"), ("store_version",))
            row = cur.fetchone()
            if row is not None and int(row[0]) > STORE_VERSION:
                self._rollback()
                raise KbenchError(f"store {_redact(self.url)}: version {row[0]} is newer than "
                                  f"this tool's {STORE_VERSION}; update tools/")
            if row is not None and int(row[0]) < STORE_VERSION:
                cur.execute("SELECT path FROM runs ORDER BY stamp, id")
                stale = [path for (path,) in cur.fetchall()]
                for table in _TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(self._sql("DELETE FROM meta WHERE key = ?"), ("store_version",))
                row = None
            for ddl in _DDL[1:]:
                cur.execute(ddl.replace(_ID, "BIGSERIAL PRIMARY KEY" if self.postgres
                                        else "INTEGER PRIMARY KEY")
                            .replace(_REAL, "DOUBLE PRECISION" if self.postgres else "REAL")
                            .replace(_BLOB, "BYTEA" if self.postgres else "BLOB")
                            .replace(_KEYED, "" if self.postgres else "WITHOUT ROWID"))
            if row is None:
                cur.execute(self._sql("INSERT INTO meta (key, value) VALUES (?, ?)"),
                            ("store_version", str(STORE_VERSION)))
            self._commit()
        except self._errors() as err:
            self._fail("cannot create the tables", err)
        return stale

    def _rebuild(self, paths):
        """Re-ingest the files an older store held (those still readable); one note line."""
        present = [p for p in paths if os.path.isfile(p)]
        print(f"kbench: store {_redact(self.url)}: rebuilt for store version {STORE_VERSION}; "
              f"re-ingesting {len(present)} of its {len(paths)} results files",
              file=sys.stderr)
        for _ in self.ingest_many(present, on_error=lambda err: print(
                f"kbench: warning: not re-ingested: {err}", file=sys.stderr)):
            pass

    # --- writing -------------------------------------------------------------------------
    def run_id_of_sha(self, sha):
        """The id of the run whose file has SHA-256 ``sha``, or ``None``."""
        rows = self._query("SELECT id FROM runs WHERE file_sha = ?", (sha,))
        return rows[0][0] if rows else None

    def ingest(self, path):
        """Store one results file; return its run id (the existing one when a file with the
        same bytes is already stored). Raises :class:`KbenchError` for a file that is not a
        kprim results file (nothing is stored then)."""
        return self._ingest(path)[0]

    def _ingest(self, path):
        """:meth:`ingest`, returning ``(run id, new)``."""
        read = _read(path)
        known = self.run_id_of_sha(read[1])
        if known is not None:
            return known, False
        return self._write(_prepare(path, read=read))

    def _write(self, prepared):
        """Store one :func:`_prepare` result; return ``(run id, new)``."""
        if prepared[0] == _KNOWN:
            known = self.run_id_of_sha(prepared[1])
            if known is not None:
                return known, False
            raise KbenchError(f"store {_redact(self.url)}: a stored run vanished meanwhile")
        try:
            return self._insert(*prepared)
        except self._errors() as err:
            self._fail(f"cannot ingest {prepared[0]}", err)

    def ingest_many(self, paths, jobs=None, on_error=None):
        """Store several files (see :meth:`ingest`); yield ``(path, run id, new)`` in order.

        With several files, ``jobs`` worker processes (default: the CPU count, at most 4) read,
        hash, parse and compress them while this process writes them, one transaction per
        file. An unusable file raises :class:`KbenchError` once every other file has been
        tried (those are stored; the message counts them), unless ``on_error`` is given: then
        it is called with the error and the other files go on."""
        paths = list(paths)
        jobs = min(jobs or os.cpu_count() or 1, 4, len(paths))
        if jobs > 1:
            import multiprocessing
            known = frozenset(sha for (sha,) in self._query("SELECT file_sha FROM runs"))
            pool = multiprocessing.get_context("fork").Pool(
                jobs, initializer=_worker_init, initargs=(known,))
            done = (item if isinstance(item, KbenchError) else self._write_or_error(item)
                    for item in _ahead(pool, paths, 2 * jobs))
        else:
            pool, done = None, (self._ingest_or_error(p) for p in paths)
        failed, stored = None, 0
        try:
            for path, item in zip(paths, done):
                if isinstance(item, KbenchError):
                    if on_error is not None:
                        on_error(item)
                    failed = failed or item
                    continue
                stored += 1
                yield (path, *item)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        if failed is not None and on_error is None:
            others = f" ({stored} other file{'s' if stored != 1 else ''} stored)" if stored else ""
            raise KbenchError(f"{failed}{others}")

    def _ingest_or_error(self, path):
        """:meth:`_ingest`, a :class:`KbenchError` returned instead of raised."""
        try:
            return self._ingest(path)
        except KbenchError as err:
            return err

    def _write_or_error(self, prepared):
        """:meth:`_write`, a :class:`KbenchError` returned instead of raised."""
        try:
            return self._write(prepared)
        except KbenchError as err:
            return err

    def _insert(self, path, sha, size, mtime_ns, stamp, results, samples, cases, document):
        """The ingest transaction of :meth:`ingest`: ``(run id, new)``."""
        ctx = results.context
        cur = self._begin()
        fingerprint = results.fingerprint or results.machine_id
        provenance = json.dumps({k: ctx[k] for k in PROVENANCE_KEYS if k in ctx},
                                separators=(",", ":"))
        cur.execute(self._sql("INSERT INTO machines (fingerprint, machine_id, cpu_model, pus, "
                              "provenance) VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint) "
                              "DO NOTHING"),
                    (fingerprint, results.machine_id, str(ctx.get("kprim_cpu_model", "")).strip(),
                     results.pus, provenance))
        cur.execute(self._sql("SELECT id FROM machines WHERE fingerprint = ?"), (fingerprint,))
        machine = cur.fetchone()[0]
        inject = str(ctx.get("kprim_inject") or "")
        try:
            version = int(str(ctx.get("kprim_schema_version")))
        except ValueError:
            version = None
        if self.postgres:
            import psycopg2
            document = psycopg2.Binary(document)
        cur.execute(self._sql(
            "INSERT INTO runs (machine, file_sha, path, size, mtime_ns, stamp, git_sha, dirty, "
            "injected, inject, run_args, schema_version, context, ingested, document) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (file_sha) DO NOTHING "
            "RETURNING id"),
            (machine, sha, os.path.abspath(path), size, mtime_ns, stamp,
             str(ctx.get("kprim_git_sha", "")), int(str(ctx.get("kprim_git_dirty", "0")) == "1"),
             int(bool(inject)), inject, str(ctx.get("kprim_run_args", "")), version,
             json.dumps(ctx, separators=(",", ":")),
             datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
             document))
        row = cur.fetchone()
        if row is None:  # another process stored the same file meanwhile
            self._rollback()
            return self.run_id_of_sha(sha), False
        run = row[0]
        ids = self._benchmark_ids(cur, {s[0] for s in samples} | set(cases))
        # No sorting: every key starts with the new run id, so all of a file's rows land in
        # the right-most pages of the (run, ...) b-trees, which stay in the page cache.
        self._bulk(cur, "cases", _CASE_COLUMNS, [(run, ids[b], *c) for b, c in cases.items()])
        self._bulk(cur, "samples", _SAMPLE_COLUMNS, [(run, ids[s[0]], *s[1:]) for s in samples])
        self._commit()
        return run, True

    def _bulk(self, cur, table, columns, rows):
        """Insert ``rows`` into a table of a run just created (no conflicts possible)."""
        if not rows:
            return
        if self.postgres:
            cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", _copy_text(rows))
        else:
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                            f"({','.join('?' * len(columns))})", rows)

    def _benchmark_ids(self, cur, bases):
        """``{base name: id}`` for ``bases``, inserting the new ones (in name order)."""
        from .results import parse_name
        missing = sorted(b for b in bases if b not in self._bench_ids)
        if missing:
            rows = []
            for base in missing:
                name = parse_name(base)
                rows.append((base, name.family, name.workload, name.contender, name.threads,
                             "/".join(f"{k}:{v}" for k, v in name.case_params)))
            self._many(cur, "INSERT INTO benchmarks (name, family, workload, contender, threads, "
                       "params)", rows, 6, "ON CONFLICT (name) DO NOTHING")
            cur.execute("SELECT id, name FROM benchmarks")
            self._bench_ids = {name: ident for ident, name in cur.fetchall()}
        return {b: self._bench_ids[b] for b in bases}

    # --- reading -------------------------------------------------------------------------
    def machines(self):
        """``[{fingerprint, machine_id, cpu_model, pus, provenance, runs, first, last}]``."""
        rows = self._query(
            "SELECT m.fingerprint, m.machine_id, m.cpu_model, m.pus, m.provenance, COUNT(r.id), "
            "MIN(r.stamp), MAX(r.stamp) FROM machines m LEFT JOIN runs r ON r.machine = m.id "
            "GROUP BY m.id, m.fingerprint, m.machine_id, m.cpu_model, m.pus, m.provenance "
            "ORDER BY m.machine_id")
        return [{"fingerprint": r[0], "machine_id": r[1], "cpu_model": r[2], "pus": r[3],
                 "provenance": json.loads(r[4] or "{}"), "runs": r[5], "first": r[6],
                 "last": r[7]} for r in rows]

    def runs(self, fingerprint=None):
        """Runs oldest first: ``[{id, fingerprint, machine_id, stamp, git_sha, dirty,
        injected, inject, run_args, path, file_sha, size, mtime_ns}]``."""
        where, params = ("WHERE m.fingerprint = ?", (fingerprint,)) if fingerprint else ("", ())
        rows = self._query(
            "SELECT r.id, m.fingerprint, m.machine_id, r.stamp, r.git_sha, r.dirty, r.injected, "
            "r.inject, r.run_args, r.path, r.file_sha, r.size, r.mtime_ns FROM runs r JOIN "
            f"machines m ON m.id = r.machine {where} ORDER BY r.stamp, r.id", params)
        keys = ("id", "fingerprint", "machine_id", "stamp", "git_sha", "dirty", "injected",
                "inject", "run_args", "path", "file_sha", "size", "mtime_ns")
        return [dict(zip(keys, r)) for r in rows]

    def series(self, fingerprint, benchmark_name):
        """``[(stamp, median ops_per_s)]`` oldest first for one benchmark on one machine
        (runs where it has no valid repetition are left out; fault-injection runs too)."""
        name = benchmark_name if benchmark_name.endswith(SUFFIX) else benchmark_name + SUFFIX
        rows = self._query(
            "SELECT r.stamp, c.median FROM cases c JOIN runs r ON r.id = c.run JOIN machines m "
            "ON m.id = r.machine JOIN benchmarks b ON b.id = c.benchmark WHERE m.fingerprint = ? "
            "AND b.name = ? AND c.median IS NOT NULL AND r.injected = 0 ORDER BY r.stamp, r.id",
            (fingerprint, name))
        return [(stamp, float(value)) for stamp, value in rows]

    def benchmark_names(self):
        """``{benchmark id: base name}``."""
        return dict(self._query("SELECT id, name FROM benchmarks"))

    def summaries(self):
        """Every run's per-benchmark summary, streamed: ``(run, benchmark, n, median, min,
        max, q1, q3)`` rows (``n`` > 0 only)."""
        return self._iter("SELECT run, benchmark, n, median, low, high, q1, q3 FROM cases "
                          "WHERE n > 0")

    def values(self, benchmark, run_ids, metric="ops_per_s"):
        """``{run: [value]}`` of the valid repetitions of one benchmark in ``run_ids``
        (``metric`` a column, ``ops_per_s`` or ``ns_per_op``; others via :meth:`load_run`)."""
        if metric not in ("ops_per_s", "ns_per_op"):
            raise KbenchError(f"store: metric {metric!r} is not a column")
        out, run_ids = {}, list(run_ids)
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start:start + 500]
            rows = self._query(
                f"SELECT run, {metric} FROM samples WHERE benchmark = ? AND valid = 1 AND run IN "
                f"({','.join('?' * len(chunk))}) AND {metric} IS NOT NULL ORDER BY run, position",
                (benchmark, *chunk))
            for run, value in rows:
                out.setdefault(run, []).append(float(value))
        return out

    def load_run(self, run_id):
        """The run as :func:`results.load` gives it (redundant counters restored), rebuilt
        from the stored document."""
        rows = self._query("SELECT path, document FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise KbenchError(f"store: no run {run_id}")
        path, document = rows[0]
        return load(path, raw=zlib.decompress(bytes(document)))

    def find_run(self, selector):
        """The run a ``[MACHINE_ID]@REV`` selector names: REV ``latest`` (the newest run) or a
        git SHA prefix (the newest run of that commit), MACHINE_ID (optional) one machine's
        runs only. Fault-injection runs are never selected. Returns ``(original path,
        the file's bytes)``; :class:`KbenchError` when nothing or more than one machine
        matches."""
        machine, _, rev = selector.rpartition("@")
        if not rev or not re.fullmatch(r"latest|[0-9a-fA-F]{4,40}", rev):
            raise KbenchError(f"run {selector!r}: expected [MACHINE_ID]@latest or "
                              "[MACHINE_ID]@<git sha prefix of 4+ hex digits>")
        runs = [r for r in self.runs() if not r["injected"]
                and (not machine or r["machine_id"] == machine)
                and (rev == "latest" or str(r["git_sha"]).lower().startswith(rev.lower()))]
        if not runs:
            raise KbenchError(f"run {selector!r}: no such run in the store "
                              f"{_redact(self.url)}")
        machines = sorted({r["machine_id"] for r in runs})
        if len(machines) > 1:
            raise KbenchError(f"run {selector!r}: runs of {len(machines)} machines match "
                              f"({', '.join(machines)}); name one: MACHINE_ID@{rev}")
        rows = self._query("SELECT path, document FROM runs WHERE id = ?", (runs[-1]["id"],))
        return rows[0][0], zlib.decompress(bytes(rows[0][1]))

    def counts(self):
        """``{table: rows}`` of machines, runs, benchmarks, cases and samples."""
        return {t: self._query(f"SELECT COUNT(*) FROM {t}")[0][0]
                for t in ("machines", "runs", "benchmarks", "cases", "samples")}

    def known_files(self):
        """``{absolute path: (size, mtime_ns)}`` of the stored runs."""
        return {p: (s, m) for p, s, m in self._query("SELECT path, size, mtime_ns FROM runs")}

