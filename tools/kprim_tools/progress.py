"""``progress``: the live progress line of ``./kbench run``.

The benchmark binaries append one byte per finished trial to ``KPRIM_PROGRESS_FILE``
(bench/harness registry.cpp); this follows that file and prints done/planned trials, the
elapsed time and an ETA. The ETA starts as the run planner's estimate (plan.py) minus the
elapsed time and, once trials finish, is the measured pace over the trials left. On a terminal
the line is rewritten in place about once a second; otherwise (a CI log) a plain line is
printed every ``--every`` seconds or each further 10% of the trials, whichever comes first.
It stops when ``--stop`` exists (kbench creates it when the benchmarks are done).
"""

import os
import sys
import time


def fmt_s(seconds):
    """``1h02m``, ``3m05s`` or ``42s``."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def eta_s(done, planned, elapsed, planned_s):
    """Seconds left: the measured pace once trials finished, the plan's estimate before."""
    if done <= 0:
        return max(0.0, planned_s - elapsed)
    return elapsed / done * max(0, planned - done)


def line(done, planned, elapsed, planned_s):
    """One progress line."""
    pct = 100.0 * done / planned if planned else 100.0
    return (f"== kbench run: {done}/{planned} trials ({pct:.0f}%), {fmt_s(elapsed)} elapsed, "
            f"ETA {fmt_s(eta_s(done, planned, elapsed, planned_s))} "
            f"(planned {fmt_s(planned_s)})")


def _count(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def run_progress(args):
    """Follow ``args.file`` until ``args.stop`` exists; exit status 0."""
    tty = sys.stdout.isatty() if args.tty is None else args.tty == "yes"
    start = time.monotonic()
    last_print, last_pct = start, -1
    planned_s = args.planned_min * 60
    while True:
        # The run's temporary directory gone (kbench exited, e.g. a binary failed): stop too.
        stopping = os.path.exists(args.stop) or not os.path.exists(args.file)
        now = time.monotonic()
        done = _count(args.file)
        text = line(done, args.planned, now - start, planned_s)
        if tty:
            sys.stdout.write("\r\033[K" + text)
            sys.stdout.flush()
        else:
            pct = int(10 * done / args.planned) if args.planned else 10
            if stopping or last_pct < 0 or pct > last_pct or now - last_print >= args.every:
                print(text, flush=True)
                last_print, last_pct = now, pct
        if stopping:
            if tty:
                sys.stdout.write("\n")
                sys.stdout.flush()
            return 0
        time.sleep(args.interval)
