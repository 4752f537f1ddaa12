"""``kbench_results.py callgrind``: instructions per operation of single-thread benchmarks.

Timing on a shared CI machine is noisy; an instruction count is not (``valgrind
--tool=callgrind`` repeats within about 0.002% for a fixed amount of work, METHOD.md). The
harness runs time-bounded trials, so the amount of work varies; the count is therefore taken
per operation: callgrind starts with collection off (``--collect-atstart=no``) and each worker
thread turns it on for exactly its call of the harness's worker loop (a client request,
``CALLGRIND_TOGGLE_COLLECT``, in bench/harness/src/harness.cpp), with latency sampling off
(``--kprim_latency=off``, no clock reads in the loop), and the total ``Ir`` is divided by the
trial's ``ops``. (``--toggle-collect=*worker_loop*`` counted nothing for loops g++ split into a
``[clone .cold]`` part: every jump between the parts toggled collection again, and the
kmem_cache rows read 0.00 instructions per operation.) ``--fair-sched=yes``: with valgrind's
default lock a worker that never blocks kept the driver thread from stopping a 20 ms trial
for about 50 s. A benchmark whose count is below one instruction per operation is an error
(its binary lacks the client request, or collection failed), never a figure. callgrind
serialises threads, so only ``threads:1`` benchmarks are measured: this gates single-thread
fast paths, not contention. The output is a results file (context ``kprim_callgrind``) whose
entries carry ``instructions_per_op`` and ``callgrind_ir``; ``gate`` and ``compare`` of two such
files compare instruction counts.
"""

import os
import re
import subprocess
import tempfile

from . import KbenchError
from .names import ere_escape, short
from .results import load, parse_name, results_text, round_document, write_new

#: How collection is delimited (the context's ``kprim_callgrind_toggle``).
TOGGLE = "client-request:worker_loop"


def _run(argv, what):
    """Run ``argv`` capturing output; raise :class:`KbenchError` naming ``what`` on failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              check=False)
    except OSError as err:
        raise KbenchError(f"callgrind: cannot run {argv[0]}: {err.strerror or err}") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1][:200]
        raise KbenchError(f"callgrind: {what} exited with status {done.returncode}"
                          + (f" ({said})" if said else ""))
    return done.stdout


def list_single_thread(binary, name_filter, bench_args):
    """Names of the ``threads:1`` benchmarks ``binary`` would run (``--benchmark_list_tests``)."""
    argv = [binary, "--benchmark_list_tests=true", "--kprim_threads=1", *bench_args]
    if name_filter:
        argv.append(f"--benchmark_filter={name_filter}")
    names = []
    for line in _run(argv, "listing benchmarks").splitlines():
        line = line.strip()
        if line and parse_name(line).threads == 1:
            names.append(line)
    return names


def read_total_ir(path):
    """The ``Ir`` total of a callgrind output file (its ``totals:``/``summary:`` line).

    Raises :class:`KbenchError` when the file has no such line or counts another event first.
    """
    events, total = None, None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("events:"):
                    events = line.split()[1:]
                elif line.startswith(("totals:", "summary:")):
                    total = int(line.split()[1])
    except (OSError, ValueError, IndexError) as err:
        raise KbenchError(f"callgrind: cannot read {path}: {err}") from None
    if total is None or (events and events[0] != "Ir"):
        raise KbenchError(f"callgrind: {path} has no Ir total")
    return total


def measure_one(binary, name, trial_ms, bench_args, workdir):
    """Run ``name`` once under callgrind; return its iteration entry and the context.

    The entry gains ``callgrind_ir`` and ``instructions_per_op`` (``Ir / ops``).
    """
    shown = short(name)
    stem = os.path.join(workdir, re.sub(r"[^A-Za-z0-9]+", "_", shown))
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={stem}.cg",
            "--collect-atstart=no", "--fair-sched=yes", binary, "--kprim_threads=1", "--kprim_latency=off",
            f"--kprim_trial_ms={trial_ms}", "--benchmark_repetitions=1", *bench_args,
            f"--benchmark_filter=^{ere_escape(shown)}(/.*)?$",
            f"--benchmark_out={stem}.json", "--benchmark_out_format=json"]
    _run(argv, f"valgrind on {shown}")
    results = load(f"{stem}.json")
    entries = [e for e, n in zip(results.benchmarks, results.names)
               if n.base == name and n.aggregate is None]
    if not entries or not entries[0].get("ops"):
        raise KbenchError(f"callgrind: {shown} reported no operations")
    entry = dict(entries[0])
    entry["callgrind_ir"] = read_total_ir(f"{stem}.cg")
    entry["instructions_per_op"] = entry["callgrind_ir"] / float(entry["ops"])
    if entry["instructions_per_op"] < 1:
        raise KbenchError(f"callgrind: {shown}: {entry['callgrind_ir']} instructions over "
                          f"{entry['ops']:.0f} operations: collection did not cover the worker "
                          "loop (a binary built without valgrind/callgrind.h?)")
    return entry, results.context


def valgrind_version():
    """``valgrind --version`` output (e.g. ``valgrind-3.19.0``)."""
    return _run(["valgrind", "--version"], "valgrind --version").strip()


def run_callgrind(args):
    """``callgrind`` subcommand: measure, write ``args.out`` (never overwriting); exit status."""
    version = valgrind_version()
    names = list_single_thread(args.binary, args.filter, args.bench_arg)
    if not names:
        raise KbenchError("callgrind: no threads:1 benchmark matches")
    benchmarks, context = [], None
    with tempfile.TemporaryDirectory(prefix="kbench-callgrind-") as workdir:
        for name in names:
            entry, ctx = measure_one(args.binary, name, args.trial_ms, args.bench_arg, workdir)
            benchmarks.append(entry)
            context = context or dict(ctx)
    context["kprim_callgrind"] = version
    context["kprim_callgrind_toggle"] = TOGGLE
    write_new(args.out, results_text(round_document({"context": context,
                                                     "benchmarks": benchmarks})))
    for entry in benchmarks:
        print(f"{short(parse_name(entry['name']).base)}: "
              f"{entry['instructions_per_op']:.2f} instructions/op")
    print(args.out)
    return 0
