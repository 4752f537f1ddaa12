"""Command line of ``tools/kbench_results.py`` (reached through ``./kbench``).

Every failure ends as one line ``kbench: <message>`` on stderr and exit status 2 (the gate
uses 1 for a regression); no traceback reaches the user.
"""

import argparse
import os
import sys

from . import KbenchError
from .names import ROOT, display_path
from .thresholds import REPOSITORY_THRESHOLDS


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors become a :class:`KbenchError` (one line, exit 2)."""

    def error(self, message):
        """Raise instead of printing usage and exiting."""
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        raise KbenchError(f"{where}{message} (see --help)")


def _fraction(text):
    """argparse type: a float in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1): {text!r}")
    return value


def _alpha(text):
    """argparse type: a significance level in (0, 0.5]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be in (0, 0.5]: {text!r}")
    return value


def _count(text):
    """argparse type: a non-negative integer."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a non-negative integer: {text!r}")
    return int(text)


def _positive_int(text):
    """argparse type: a positive integer."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def _minutes(text):
    """argparse type: a positive, finite number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes: {text!r}")
    return value


def _output_dir(path, what):
    """Refuse, before any work, an output directory that cannot be created or written.

    ``path`` need not exist: its nearest existing ancestor must be a directory in which a file
    can be created (a probe file, removed at once: mode bits alone say nothing as root, and a
    read-only mount shows only on a real write). Raises :class:`KbenchError` naming ``what``.
    """
    probe = os.path.abspath(path)
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise KbenchError(f"{what}: cannot write under {path}: it exists and is not a directory")
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise KbenchError(f"{what}: cannot write under {path}: {display_path(probe)} is not a "
                          "directory")
    import tempfile
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kbench-probe-", dir=probe)
    except OSError as err:
        raise KbenchError(f"{what}: cannot write under {path}: {err.strerror or err}") from None
    os.close(fd)
    os.unlink(tmp)


def _new_file(path, what):
    """Refuse, before any work, an output file that exists or whose directory is unwritable."""
    if os.path.lexists(path):
        raise KbenchError(f"{what}: {path} already exists; refusing to overwrite it")
    _output_dir(os.path.dirname(os.path.abspath(path)), what)


def _cmd_write(args):
    """``write``: merge one run's files into results/, print the path."""
    from .results import write_run
    path, skipped = write_run(args.files, args.results_dir, args.run_args)
    for empty in skipped:
        print(f"kbench: note: {empty} has no benchmarks (filter matched none); left out",
              file=sys.stderr)
    print(path)
    return 0


def _cmd_plot(args):
    """``plot``: render the PNGs of one results file."""
    from . import plots
    from .results import load
    if args.out:
        _output_dir(args.out, "plot --out")
    results = load(args.file)
    out = args.out or os.path.join(ROOT, "plots", results.machine_id)
    written = plots.render_all(results, out)
    print(f"kbench: {len(written)} plots in {display_path(out)}")
    return 0


def _cmd_summary(args):
    """``summary``: print the median table of one results file."""
    from .results import load
    from .summary import summary_text
    print(summary_text(load(args.file), args.metric, args.markdown))
    return 0


def _existing_store(url, what):
    """The open store at ``url`` (see :func:`store.resolve_url`), which must exist already:
    reading from a store that is not there would only create an empty one."""
    from .store import open_store, resolve_url
    where = resolve_url(url)
    if "://" not in where and not os.path.isfile(where.removeprefix("sqlite:")):
        raise KbenchError(f"{what}: {where.removeprefix('sqlite:')} is not a store file "
                          "(./kbench ingest creates one)")
    return open_store(where)


def _stored_runs(args, names, what):
    """``names`` with every ``[MACHINE_ID]@REV`` run selector (an argument that is not an
    existing file) replaced by a copy of that stored file (byte for byte, under its original
    name) in a temporary directory that lives until the command ends."""
    import atexit
    import shutil
    import tempfile
    out, tmp, store = [], None, None
    try:
        for name in names:
            if "@" not in name or os.path.exists(name):
                out.append(name)
                continue
            if store is None:
                store = _existing_store(args.store, f"{what} {name}")
                tmp = tempfile.mkdtemp(prefix="kbench-run-")
                atexit.register(shutil.rmtree, tmp, True)
            try:
                path, raw = store.find_run(name)
            except KbenchError as err:
                raise KbenchError(f"{what}: {err}") from None
            copy = os.path.join(tmp, str(len(out)), os.path.basename(path))
            os.makedirs(os.path.dirname(copy))
            with open(copy, "wb") as handle:
                handle.write(raw)
            out.append(copy)
    finally:
        if store is not None:
            store.close()
    return out


def _cmd_compare(args):
    """``compare``: compare runs against the first; optional ratio chart."""
    from . import compare
    from .results import load
    if args.plot:
        _output_dir(args.plot, "compare --plot")
    docs = [load(p) for p in _stored_runs(args, args.files, "compare")]
    report = compare.compare_runs(docs, reference=args.reference, absolute=args.absolute,
                                  tolerance=args.tolerance, alpha=args.alpha,
                                  name_filter=args.filter)
    print(compare.render(report, args.format))
    if args.plot:
        from .plots import render_ratio_comparison
        written = render_ratio_comparison(docs, args.reference, args.plot)
        print(f"kbench: {len(written)} comparison plots in {display_path(args.plot)}",
              file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def _cmd_gate(args):
    """``gate``: the CI regression gate (exit 0, 1 or 2)."""
    from . import gate
    if args.report:
        if os.path.isdir(args.report):
            raise KbenchError(f"gate --report: {args.report} is a directory")
        _output_dir(os.path.dirname(os.path.abspath(args.report)), "gate --report")
    args.baseline, args.current = _stored_runs(args, [args.baseline, args.current], "gate")
    return gate.run_gate(args)


def _cmd_bisect(args):
    """``bisect``: first commit between GOOD and BAD that made the filtered benchmarks slower."""
    from . import bisect
    return bisect.run_bisect(args)


def _cmd_bisect_step(args):
    """``bisect-step`` (internal): one ``git bisect run`` step of ``bisect``."""
    from . import bisect
    return bisect.run_step(args)


def _cmd_bisect_bench(args):
    """``bisect-bench`` (internal): the gate's re-run of undecided points during ``bisect``."""
    from . import bisect
    return bisect.run_bench(args)


def _cmd_history(args):
    """``history``: trends and change points over a results directory."""
    from . import history
    if args.out:
        _output_dir(args.out, "history --out")
    return history.run_history(args, ROOT)


def _cmd_ingest(args):
    """``ingest``: store results files (idempotent per file), print one line per file."""
    from .store import open_store
    for path in args.files:
        if not os.path.isfile(path):
            raise KbenchError(f"ingest: {path} is not a file")
    with open_store(args.store) as store:
        for path, run, new in store.ingest_many(args.files):
            if not args.quiet:
                print(f"kbench: {'ingested' if new else 'already stored'} {path} (run {run})")
    return 0


def _cmd_callgrind(args):
    """``callgrind``: instructions per operation of threads:1 benchmarks, to a results file."""
    from . import callgrind
    _new_file(args.out, "callgrind --out")
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        raise KbenchError(f"callgrind --binary: {args.binary} is not an executable file")
    return callgrind.run_callgrind(args)


def _cmd_aa(args):
    """``aa``: the A/A control table (exit 0 for any readable file)."""
    from . import aa
    return aa.run_aa(args)


def _cmd_report(args):
    """``report``: plots plus index.html; print the page's path."""
    from . import report
    if args.out:
        _output_dir(args.out, "report --out")
    if args.store:
        # A store named explicitly must be usable (checked before the plots are drawn); the
        # default one may be absent: the page then says so instead of showing sparklines.
        _existing_store(args.store, "report --store").close()
    path = report.build_report(args.file, args.out, ROOT, store=args.store)
    print(path)
    return 0


def _cmd_export(args):
    """``export``: one results file in a tracker's native format (stdout or ``--out``)."""
    from . import export
    if args.out:
        _new_file(args.out, "export --out")
    return export.run_export(args)


def _cmd_plan(args):
    """``plan``: list the run's benchmarks, estimate its duration, fit --budget."""
    from . import plan
    return plan.run_plan(args, ROOT)


def _cmd_progress(args):
    """``progress`` (internal): ./kbench run's progress line (see kprim_tools/progress.py)."""
    from . import progress
    return progress.run_progress(args)


def build_parser():
    """The argument parser of every subcommand."""
    parser = Parser(prog="kbench", description="kprim results tooling (see results/SCHEMA.md)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("write", help="merge one run's per-family JSON files into results/")
    p.add_argument("--results-dir", required=True, help="results root (results/)")
    p.add_argument("--run-args", default="", help="the ./kbench run arguments, recorded")
    p.add_argument("files", nargs="+", help="Google Benchmark JSON files of one run")
    p.set_defaults(func=_cmd_write)

    p = sub.add_parser("plot", help="scaling, fairness and latency plots of one results file")
    p.add_argument("file", help="a results file (results/<machine-id>/*.json)")
    p.add_argument("--out", help="output directory (default plots/<machine-id>/)")
    p.set_defaults(func=_cmd_plot)

    from .summary import METRICS
    p = sub.add_parser("summary", help="table of median throughput per contender and threads")
    p.add_argument("file", help="a results file")
    p.add_argument("--markdown", action="store_true", help="Markdown tables")
    p.add_argument("--metric", choices=sorted(METRICS), default="ops_per_s",
                   help="counter tabulated (default ops_per_s)")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("compare", help="compare runs: absolute on one machine, ratios across")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="baseline first, then the others; a results file, or a run of the "
                        "store: [MACHINE_ID]@latest or [MACHINE_ID]@<git sha prefix> (the newest "
                        "such run, fault-injection runs left out)")
    p.add_argument("--store", metavar="URL",
                   help="results store of the MACHINE_ID@REV run selectors: postgresql://..., "
                        "sqlite:PATH or a file (default $KBENCH_STORE, else results/kbench.sqlite)")
    p.add_argument("--reference", default="std_mutex",
                   help="contender that cross-machine ratios divide by (default std_mutex)")
    p.add_argument("--absolute", action="store_true",
                   help="also compare absolute throughput across different machines (labelled)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output format (default table)")
    p.add_argument("--tolerance", type=_fraction, default=0.05,
                   help="relative change below which a benchmark is SAME (default 0.05)")
    p.add_argument("--alpha", type=_alpha, default=0.05,
                   help="Mann-Whitney significance level, (0, 0.5] (default 0.05)")
    p.add_argument("--filter", help="only benchmarks whose name matches this regex")
    p.add_argument("--plot", metavar="DIR",
                   help="also draw the ratio-to-reference chart of every run into DIR")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("gate", help="CI regression gate: exit 0 ok, 1 regression, 2 bad input")
    p.add_argument("--baseline", required=True, metavar="FILE",
                   help="results file of the reference build (e.g. main's last run), or a run "
                        "of the store: [MACHINE_ID]@latest or [MACHINE_ID]@<git sha prefix>")
    p.add_argument("--current", required=True, metavar="FILE",
                   help="results file of the build under test (or a store run, as --baseline)")
    p.add_argument("--store", metavar="URL",
                   help="results store of the MACHINE_ID@REV run selectors: postgresql://..., "
                        "sqlite:PATH or a file (default $KBENCH_STORE, else results/kbench.sqlite)")
    p.add_argument("--thresholds", default=REPOSITORY_THRESHOLDS, metavar="FILE",
                   help="per-benchmark tolerances (default results/thresholds.json)")
    p.add_argument("--rerun", metavar="CMD",
                   help="shell command re-measuring UNKNOWN benchmarks: gets {filter} and {out} "
                        "(also $KBENCH_GATE_FILTER, $KBENCH_GATE_OUT) and writes results JSON")
    p.add_argument("--rerun-baseline", metavar="CMD",
                   help="with --rerun: the baseline build's command (same {filter} and {out}); "
                        "each re-run then measures baseline and current back to back and the "
                        "undecided or SLOWER points are judged on those paired re-runs")
    p.add_argument("--max-reruns", type=_count, help="bound on re-runs (default from thresholds)")
    p.add_argument("--report", metavar="FILE.md", help="also write the Markdown report here")
    p.add_argument("--strict", action="store_true",
                   help="informational benchmarks (thresholds rule) fail the gate too; UNKNOWN "
                        "after the re-runs fails it in any case")
    p.set_defaults(func=_cmd_gate)

    from .bisect import positive, thread_list
    p = sub.add_parser("bisect", help="first commit between GOOD and BAD that made the filtered "
                                      "benchmarks slower (git bisect run + gate)")
    p.add_argument("good", metavar="GOOD", help="a commit without the regression")
    p.add_argument("bad", metavar="BAD", help="a later commit with it (GOOD is its ancestor)")
    p.add_argument("--filter", required=True, help="Google Benchmark filter of the benchmarks")
    p.add_argument("--repetitions", type=positive, default=5, help="per run (default 5)")
    p.add_argument("--trial-ms", type=positive, default=100, help="trial length (default 100)")
    p.add_argument("--threads", type=thread_list, help="thread counts (default: the sweep)")
    p.add_argument("--families", help="bench_* families (default: those the filter names)")
    p.add_argument("--thresholds", default=REPOSITORY_THRESHOLDS, metavar="FILE",
                   help="gate thresholds (default results/thresholds.json)")
    p.add_argument("--jobs", type=positive, help="build parallelism (default: ninja's)")
    p.add_argument("--repo", help="repository to bisect (default: this one)")
    p.set_defaults(func=_cmd_bisect)
    p = sub.add_parser("bisect-step", help="(internal) one git bisect run step of bisect")
    p.add_argument("state", help="bisect state file")
    p.set_defaults(func=_cmd_bisect_step)
    p = sub.add_parser("bisect-bench", help="(internal) the gate's re-run during bisect")
    p.add_argument("state", help="bisect state file")
    p.add_argument("--filter", required=True, help="benchmarks to re-run")
    p.add_argument("--out", required=True, help="results file to write")
    p.set_defaults(func=_cmd_bisect_bench)

    p = sub.add_parser("ingest", help="store results files in the results store (idempotent; "
                                      "rebuild it with ./kbench ingest results/*/*.json)")
    p.add_argument("files", nargs="+", metavar="FILE", help="results files (any machine)")
    p.add_argument("--store", metavar="URL",
                   help="postgresql://..., sqlite:PATH or a file (default $KBENCH_STORE, else "
                        "results/kbench.sqlite)")
    p.add_argument("--quiet", action="store_true", help="no line per file")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("history", help="trend per benchmark from the results store (new files "
                                       "under DIR ingested first), change points")
    p.add_argument("dir", nargs="?", default=os.path.join(ROOT, "results"), metavar="DIR",
                   help="results directory whose new files are ingested first (default results/)")
    p.add_argument("--store", metavar="URL",
                   help="postgresql://..., sqlite:PATH or a file (default $KBENCH_STORE, else "
                        "DIR/kbench.sqlite)")
    p.add_argument("--plot", action="store_true",
                   help="draw PNGs of the series with a change point (with --filter: of every "
                        "matching series)")
    p.add_argument("--out", help="plot directory (default plots/history/)")
    p.add_argument("--no-plots", action="store_true",
                   help="no plots (the default; kept for old scripts)")
    p.add_argument("--filter", help="only benchmarks whose name matches this regex")
    p.add_argument("--metric", default="ops_per_s", help="counter followed (default ops_per_s)")
    p.add_argument("--window", type=_positive_int, default=3,
                   help="runs pooled on each side of a candidate change point (default 3)")
    p.add_argument("--tolerance", type=_fraction, default=0.10,
                   help="relative step below which no change point is called, [0, 1) "
                        "(default 0.10)")
    p.add_argument("--alpha", type=_alpha, default=0.05,
                   help="Mann-Whitney significance level, (0, 0.5] (default 0.05)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output format (default table)")
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser("callgrind",
                       help="instructions/op of threads:1 benchmarks under valgrind (for gate)")
    p.add_argument("--binary", required=True, help="a bench_* binary")
    p.add_argument("--out", required=True, help="results file to write (never overwritten)")
    p.add_argument("--filter", help="Google Benchmark filter regex")
    p.add_argument("--trial-ms", type=_positive_int, default=50,
                   help="trial length in ms, at least 1 (default 50)")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for the binary (repeatable), e.g. --bench-arg "
                        "--kprim_cs=10")
    p.set_defaults(func=_cmd_callgrind)

    p = sub.add_parser("aa", help="A/A control pairs: differences this machine can resolve")
    p.add_argument("file", help="a results file")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output format (default table)")
    p.add_argument("--alpha", type=_alpha, default=0.05,
                   help="confidence level 1 - alpha of the intervals (default 0.05)")
    p.add_argument("--thresholds", default=REPOSITORY_THRESHOLDS,
                   help="tolerances of the pair verdicts (default results/thresholds.json)")
    p.set_defaults(func=_cmd_aa)

    p = sub.add_parser("report", help="static HTML report plots/<machine-id>/index.html")
    p.add_argument("file", nargs="?", help="results file (default: newest under results/)")
    p.add_argument("--out", help="output directory (default plots/<machine-id>/)")
    p.add_argument("--store", metavar="URL",
                   help="results store the history sparklines are read from: postgresql://..., "
                        "sqlite:PATH or a file (default $KBENCH_STORE, else results/"
                        "kbench.sqlite; a missing default store means no sparklines, a missing "
                        "--store is an error)")
    p.set_defaults(func=_cmd_report)

    from .export import FORMATS
    p = sub.add_parser("export", help="one results file as a tracker's input: "
                                      + ", ".join(FORMATS))
    p.add_argument("file", help="a results file")
    p.add_argument("--format", required=True, choices=FORMATS, help="the tracker's format")
    p.add_argument("--out", help="file to write (never overwritten; default stdout)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("plan", help="what ./kbench run will run and how long it takes; fit a "
                                    "--budget (see kprim_tools/plan.py for the estimate)")
    p.add_argument("--bindir", help="bench binaries and families.txt (default build/release/bench)")
    p.add_argument("--runs-dir", help="where bench_<family>.runs files live (default bench/)")
    p.add_argument("--families", help="comma-separated families (default: families.txt)")
    p.add_argument("--filter", help="Google Benchmark filter regex, as the run passes it")
    p.add_argument("--threads", help="thread sweep (default: the binaries' default sweep)")
    p.add_argument("--repetitions", type=_positive_int, default=5, help="default 5")
    p.add_argument("--trial-ms", type=_positive_int, default=100, help="default 100")
    p.add_argument("--pin", choices=("none", "compact", "spread"), default="none",
                   help="thread placement passed to the binaries (default none)")
    p.add_argument("--budget", type=_minutes, metavar="MINUTES",
                   help="reduce repetitions, trial length, then thread counts to fit")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for every binary (repeatable)")
    p.add_argument("--choices", metavar="FILE",
                   help="write the chosen repetitions=, trial_ms= (and threads=) lines here")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output format (default table)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("progress", help="(internal) ./kbench run's progress line: follows the "
                                        "binaries' KPRIM_PROGRESS_FILE")
    p.add_argument("--file", required=True, help="the KPRIM_PROGRESS_FILE (one byte per trial)")
    p.add_argument("--stop", required=True, help="stop (after a last line) once this file exists")
    p.add_argument("--planned", type=_positive_int, required=True, help="planned trials")
    p.add_argument("--planned-min", type=_minutes, required=True, help="planned minutes")
    p.add_argument("--every", type=_minutes, default=30,
                   help="not a terminal: a line every this many seconds (and each 10%%; default 30)")
    p.add_argument("--interval", type=_minutes, default=1, help="poll interval, s (default 1)")
    p.add_argument("--tty", choices=("yes", "no"), help="override stdout's terminal check")
    p.set_defaults(func=_cmd_progress)
    return parser


#: Options whose value may itself start with ``--`` (recorded command lines).
_VERBATIM_OPTIONS = ("--run-args", "--rerun", "--rerun-baseline", "--bench-arg")


def _join_verbatim(argv):
    """Rewrite ``--run-args X`` as ``--run-args=X`` so argparse accepts X starting with ``-``."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _VERBATIM_OPTIONS and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    """Run one subcommand; return the exit status (0 ok, 1 gate regression, 2 bad input)."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser().parse_args(_join_verbatim(argv))
        if os.environ.get("KBENCH_PARSE_ONLY"):
            print("kbench: parse-only: ok")  # the command line is valid; nothing is done
            return 0
        return args.func(args)
    except KbenchError as err:
        print(f"kbench: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("kbench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the contract is one line, never a traceback
        print(f"kbench: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
