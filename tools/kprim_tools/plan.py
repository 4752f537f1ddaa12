"""Run planner of ``./kbench run``: what a run will execute, how long it will take, and how to
make it fit a time budget (``./kbench run --budget MINUTES``).

Listing. Each selected family's binary (each process of ``bench/bench_<family>.runs``, with its
environment and flags) is asked for its benchmarks with ``--benchmark_list_tests=true`` and the
run's kprim flags: fast, runs no trial, and honours ``HWLOC_SYNTHETIC`` / ``HWLOC_XMLFILE`` like
a real run (the default sweep follows hwloc's PU count). A second listing with only the sweep's
largest thread count tells the benchmarks that follow ``--kprim_threads`` (counted per thread
count) from those registered at fixed thread counts (the same name in both listings), so the
planner can price a sweep without listing it again.

Estimate. A run costs, per process, a start-up (``PROCESS_START_S``: loading, calibration,
registration) plus, per trial (one benchmark repetition), the trial itself and its overhead:

    trial_ms + TRIAL_BASE_MS + THREAD_MS x threads + OVERSUB_MS x threads / nproc   (threads > nproc)

``TRIAL_BASE_MS`` covers Google Benchmark's bookkeeping, building the workload, the clock and
/proc/stat reads and the driver's wake-up slack; ``THREAD_MS`` starting and joining one worker
thread; ``OVERSUB_MS`` the drain of an oversubscribed trial (a fair lock hands over once per
scheduler slice after the stop flag, so the drain grows with the threads queued per PU). The
constants were checked against one-repetition runs of 100 ms trials on the 2-vCPU reference VM
(bench_percpu, bench_rwlocks, bench_locks, bench_rcu: wall time within about 10% of the plan,
bench_rcu's grace periods running longest); ``./kbench run`` prints the planned minutes next to
the real ones after the benchmarks. They are estimates: the planner reports minutes.

Budget. Over budget, the planner reduces in this order, each step only as far as needed:
  1. repetitions, down to ``MIN_REPETITIONS`` (3: fewer leaves too little for mode detection
     and the gate's rank test);
  2. trial length, down to ``MIN_TRIAL_MS`` (50 ms);
  3. thread counts of the sweep, keeping 1, nproc, 2x nproc and the largest; the others are
     dropped one at a time, each time the count whose removal leaves the smallest gap (ratio of
     its neighbours) in the sweep, the larger count on a tie, so the sweep thins evenly.
It says exactly what each step changed; if the smallest plan still does not fit, it says so
and the run does not start (exit 2). Values the user set below a floor are never raised.
"""

import json
import math
import os
import re
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from . import KbenchError

DEFAULT_REPETITIONS = 5
DEFAULT_TRIAL_MS = 100
MIN_REPETITIONS = 3
MIN_TRIAL_MS = 50
#: Process start-up: exec, spin/clock calibration, registration (seconds).
PROCESS_START_S = 1.0
#: Per-trial overhead independent of threads (ms).
TRIAL_BASE_MS = 2.0
#: Starting and joining one worker thread (ms).
THREAD_MS = 0.05
#: Drain of an oversubscribed trial, per thread queued per PU (ms).
OVERSUB_MS = 3.0
#: The harness's limit on threads in one trial (topology.hpp max_trial_threads).
MAX_TRIAL_THREADS = 4096

_THREADS_RE = re.compile(r"/threads:(\d+)(?:/|$)")


def default_sweep(nproc):
    """The harness's default thread sweep for ``nproc`` PUs (topology.hpp default_thread_sweep)."""
    n = max(1, nproc)
    if n <= 8:
        sweep = list(range(1, n + 1))
    else:
        sweep, p = [], 1
        while p < n:
            sweep.append(p)
            p *= 2
        sweep.append(n)
    sweep += [m * n for m in (2, 4)]
    return [t for t in sweep if t <= MAX_TRIAL_THREADS]


def infer_nproc(counts):
    """The PU count whose default sweep is ``counts`` (the thread counts a default listing
    showed); else the one with the longest sweep wholly among them, the smaller on a tie
    (benchmarks with fixed thread counts of their own, e.g. sleepwake's herd at 9 and 65
    threads, add counts no sweep has; near the 4096-thread cap the sweeps of n and 2n can
    both fit and are equally long); else the one whose sweep ends at their largest; else None."""
    want = sorted(set(counts))
    if not want:
        return None
    ending = covered = None
    covered_len = 0
    for n in range(1, MAX_TRIAL_THREADS + 1):
        sweep = default_sweep(n)
        if sweep == want:
            return n
        if len(sweep) > covered_len and set(sweep) <= set(want):
            covered, covered_len = n, len(sweep)
        if ending is None and sweep[-1] == want[-1] and set(want) <= set(sweep):
            ending = n
    return covered or ending


def thread_count(name):
    """The ``threads:N`` of a benchmark name, or None."""
    m = _THREADS_RE.search(name)
    return int(m.group(1)) if m else None


@dataclass
class Process:
    """One benchmark process of a run: a family's binary with extra environment and flags."""
    family: str
    binary: str
    env: dict = field(default_factory=dict)
    flags: list = field(default_factory=list)
    index: int = 0  # 1-based line of bench_<family>.runs, 0 for a family without one

    @property
    def label(self):
        """``bench_slab[2]`` for the second process of a .runs file, else ``bench_locks``."""
        base = f"bench_{self.family}"
        return f"{base}[{self.index}]" if self.index else base


@dataclass
class Listing:
    """What one process registers: benchmarks that follow the sweep, per thread count, and
    benchmarks at fixed thread counts (per thread count too)."""
    process: Process
    swept: Counter
    fixed: Counter


@dataclass(frozen=True)
class Settings:
    """The knobs a plan chooses."""
    repetitions: int
    trial_ms: int
    threads: tuple  # the sweep (--kprim_threads), ascending


def parse_runs(path):
    """``bench_<family>.runs``: one process a line, ``VAR=value`` words are environment, the
    rest flags; blank lines and ``#`` comments skipped. Returns [(env, flags)]."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            env, flags = {}, []
            for word in line.split():
                if re.match(r"[A-Z][A-Za-z0-9_]*=", word):
                    key, value = word.split("=", 1)
                    env[key] = value
                else:
                    flags.append(word)
            out.append((env, flags))
    return out


def processes(bindir, runs_dir, families):
    """The processes of a run of ``families`` (binaries in ``bindir``, .runs files in ``runs_dir``)."""
    out = []
    for fam in families:
        binary = os.path.join(bindir, f"bench_{fam}")
        if not os.access(binary, os.X_OK):
            raise KbenchError(f"plan: no executable {binary} (build first)")
        runs = os.path.join(runs_dir, f"bench_{fam}.runs")
        if os.path.isfile(runs):
            for i, (env, flags) in enumerate(parse_runs(runs), 1):
                out.append(Process(fam, binary, env, flags, i))
        else:
            out.append(Process(fam, binary))
    return out


def list_names(proc, args):
    """Benchmark names ``proc`` registers with extra ``args`` (kprim and filter flags)."""
    cmd = [proc.binary, *args, *proc.flags, "--benchmark_list_tests=true"]
    env = dict(os.environ, **proc.env)
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                             check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KbenchError(f"plan: {proc.label}: listing failed: {err}") from None
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        raise KbenchError(f"plan: {proc.label}: --benchmark_list_tests failed: {why}")
    return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]


def split_listing(proc, full, at_max, largest):
    """A Listing from the full listing and one with only the largest sweep count: names in
    both (other than at the largest count) do not follow the sweep."""
    both = set(full) & set(at_max)
    swept, fixed = Counter(), Counter()
    for name in full:
        t = thread_count(name) or 1
        if name in both and t != largest:
            fixed[t] += 1
        else:
            swept[t] += 1
    return Listing(proc, swept, fixed)


def collect(procs, common_args, threads):
    """List every process twice (sweep ``threads`` or the default when None; its largest count
    alone) in parallel. Returns (listings, sweep, nproc)."""
    sweep_arg = [f"--kprim_threads={','.join(map(str, threads))}"] if threads else []
    with ThreadPoolExecutor(max_workers=4) as pool:
        fulls = list(pool.map(lambda p: list_names(p, common_args + sweep_arg), procs))
        default_counts = set()
        if threads:
            # nproc from one default listing of the first process (filter dropped, so every
            # thread count of the default sweep shows).
            unfiltered = [a for a in common_args if not a.startswith("--benchmark_filter=")]
            default_counts = {thread_count(n) or 1 for n in list_names(procs[0], unfiltered)}
        else:
            for names in fulls:
                default_counts |= {thread_count(n) or 1 for n in names}
        nproc = infer_nproc(default_counts) or os.cpu_count() or 1
        sweep = sorted(set(threads)) if threads else default_sweep(nproc)
        largest = sweep[-1]
        maxes = list(pool.map(lambda p: list_names(p, common_args + [f"--kprim_threads={largest}"]),
                              procs))
    listings = [split_listing(p, f, m, largest) for p, f, m in zip(procs, fulls, maxes)]
    return listings, tuple(sweep), nproc


def trial_overhead_ms(threads, nproc):
    """Estimated cost of one trial beyond its duration (see the module docstring)."""
    ms = TRIAL_BASE_MS + THREAD_MS * threads
    if threads > nproc:
        ms += OVERSUB_MS * threads / max(1, nproc)
    return ms


def _trials(listing, sweep):
    """{threads: benchmarks} that run under ``sweep``."""
    out = Counter(listing.fixed)
    for t in sweep:
        out[t] += listing.swept.get(t, 0)
    return out


def process_estimate(listing, settings, nproc):
    """(benchmarks, trials, seconds) of one process under ``settings``."""
    per_threads = _trials(listing, settings.threads)
    benchmarks = sum(per_threads.values())
    ms = sum(n * (settings.trial_ms + trial_overhead_ms(t, nproc)) for t, n in per_threads.items())
    return benchmarks, benchmarks * settings.repetitions, PROCESS_START_S + settings.repetitions * ms / 1e3


def estimate_s(listings, settings, nproc):
    """Estimated seconds of the whole run."""
    return sum(process_estimate(li, settings, nproc)[2] for li in listings)


def keep_counts(sweep, nproc):
    """Thread counts never dropped: the smallest (1), nproc, 2x nproc and the largest."""
    keep = {sweep[0], sweep[-1], nproc, 2 * nproc} if sweep else set()
    return keep & set(sweep)


def drop_order(sweep, keep):
    """The order thread counts are dropped in: each time the count (not in ``keep``) whose
    removal leaves the smallest ratio between its neighbours, the larger count on a tie."""
    cur, order = sorted(sweep), []
    while True:
        best = None
        for i, t in enumerate(cur):
            if t in keep or i == 0 or i == len(cur) - 1:
                continue
            gap = math.log(cur[i + 1] / cur[i - 1])
            key = (round(gap, 9), -t)
            if best is None or key < best[0]:
                best = (key, t)
        if best is None:
            return order
        order.append(best[1])
        cur.remove(best[1])


def reduce_to_budget(listings, settings, nproc, budget_s):
    """Reduce ``settings`` in the documented order until the estimate fits ``budget_s``.
    Returns (settings, steps, fits); ``steps`` are sentences saying what changed."""
    steps = []

    def est(s):
        return estimate_s(listings, s, nproc)

    if est(settings) <= budget_s:
        return settings, steps, True

    def shrink(field, minimum, step):
        """Lower ``field`` (the estimate is linear in it) to what fits, not below ``minimum``
        and by at least one; record ``step(old, new)``; True when the plan then fits."""
        nonlocal settings
        current = getattr(settings, field)
        if current <= minimum:
            return False
        at0 = est(replace(settings, **{field: 0}))
        per_unit = est(replace(settings, **{field: 1})) - at0
        fit = math.floor((budget_s - at0) / per_unit) if per_unit > 0 else current
        value = max(minimum, min(current - 1, fit))
        steps.append(step(current, value))
        settings = replace(settings, **{field: value})
        return est(settings) <= budget_s

    # 1. Repetitions, 2. trial length.
    if shrink("repetitions", MIN_REPETITIONS, lambda a, b: f"repetitions {a} -> {b}"):
        return settings, steps, True
    if shrink("trial_ms", MIN_TRIAL_MS, lambda a, b: f"trial {a} -> {b} ms"):
        return settings, steps, True

    # 3. Thread counts.
    dropped = []
    for t in drop_order(settings.threads, keep_counts(settings.threads, nproc)):
        dropped.append(t)
        settings = replace(settings, threads=tuple(x for x in settings.threads if x != t))
        if est(settings) <= budget_s:
            break
    if dropped:
        gone = sum(li.swept.get(t, 0) for li in listings for t in dropped)
        steps.append(f"thread counts {','.join(map(str, dropped))} dropped ({gone} benchmarks)")
    return settings, steps, est(settings) <= budget_s


def plan_rows(listings, settings, nproc):
    """Per-family rows: (family, processes, benchmarks, trials, minutes), in listing order."""
    rows = {}
    for li in listings:
        b, n, s = process_estimate(li, settings, nproc)
        r = rows.setdefault(li.process.family, [li.process.family, 0, 0, 0, 0.0])
        r[1] += 1
        r[2] += b
        r[3] += n
        r[4] += s / 60
    return [tuple(r) for r in rows.values()]


def render(rows, settings, nproc, budget_min, initial_min, steps, fits):
    """The plan as text."""
    out = [f"== kbench plan: nproc {nproc}, threads {','.join(map(str, settings.threads))}, "
           f"{settings.repetitions} repetitions x {settings.trial_ms} ms trials",
           f"   {'family':<12}{'processes':>10}{'benchmarks':>12}{'trials':>10}{'minutes':>10}"]
    tot = [0, 0, 0, 0.0]
    for fam, procs, bench, trials, minutes in rows:
        out.append(f"   {fam:<12}{procs:>10}{bench:>12}{trials:>10}{minutes:>10.1f}")
        for i, v in enumerate((procs, bench, trials, minutes)):
            tot[i] += v
    out.append(f"   {'total':<12}{tot[0]:>10}{tot[1]:>12}{tot[2]:>10}{tot[3]:>10.1f}")
    out.append(f"   estimate: per trial its {settings.trial_ms} ms + {TRIAL_BASE_MS:g} ms + "
               f"{THREAD_MS:g} ms/thread (+ {OVERSUB_MS:g} ms x threads/nproc oversubscribed), "
               f"{PROCESS_START_S:g} s per process")
    if budget_min is not None:
        if not steps:
            out.append(f"   budget {budget_min:g} min: fits, nothing dropped")
        else:
            out.append(f"   budget {budget_min:g} min: the plan asked for {initial_min:.1f} min; reduced:")
            out.extend(f"     {s}" for s in steps)
            if not fits:
                out.append(f"   budget {budget_min:g} min: cannot fit; the smallest plan needs "
                           f"{tot[3]:.1f} min; nothing was run")
    out.append(f"   planned duration: {tot[3]:.1f} min")
    return "\n".join(out)


def run_plan(args, root):
    """``plan`` subcommand: list, estimate, reduce, print; write --choices when it fits."""
    bindir = args.bindir or os.path.join(root, "build", "release", "bench")
    runs_dir = args.runs_dir or os.path.join(root, "bench")
    if args.families:
        families = [f for f in args.families.split(",") if f]
    else:
        path = os.path.join(bindir, "families.txt")
        if not os.path.isfile(path):
            raise KbenchError(f"plan: no {path} (build first)")
        with open(path, encoding="utf-8") as fh:
            families = [ln.strip() for ln in fh if ln.strip()]
    if not families:
        raise KbenchError("plan: no families selected")
    threads = None
    if args.threads:
        if not re.fullmatch(r"[1-9][0-9]*(,[1-9][0-9]*)*", args.threads):
            raise KbenchError(f"plan: --threads must be a comma-separated list of positive integers "
                              f"(got {args.threads!r})")
        threads = [int(t) for t in args.threads.split(",")]
    common = [f"--kprim_pin={args.pin}", *args.bench_arg]
    if args.filter:
        common.append(f"--benchmark_filter={args.filter}")

    listings, sweep, nproc = collect(processes(bindir, runs_dir, families), common, threads)
    settings = Settings(args.repetitions, args.trial_ms, sweep)
    initial_s = estimate_s(listings, settings, nproc)
    steps, fits = [], True
    if args.budget is not None:
        settings, steps, fits = reduce_to_budget(listings, settings, nproc, args.budget * 60)
    rows = plan_rows(listings, settings, nproc)
    if args.format == "json":
        print(json.dumps({"nproc": nproc, "repetitions": settings.repetitions,
                          "trial_ms": settings.trial_ms, "threads": list(settings.threads),
                          "budget_min": args.budget, "initial_min": initial_s / 60,
                          "planned_min": estimate_s(listings, settings, nproc) / 60,
                          "steps": steps, "fits": fits,
                          "families": [dict(zip(("family", "processes", "benchmarks", "trials",
                                                 "minutes"), r)) for r in rows]}))
    else:
        print(render(rows, settings, nproc, args.budget, initial_s / 60, steps, fits), flush=True)
    if not fits:
        raise KbenchError(f"plan: cannot fit the run in {args.budget:g} minutes even after "
                          f"{'; '.join(steps)} (needs {estimate_s(listings, settings, nproc) / 60:.1f} min)")
    if args.choices:
        with open(args.choices, "w", encoding="utf-8") as fh:
            fh.write(f"repetitions={settings.repetitions}\ntrial_ms={settings.trial_ms}\n"
                     f"planned_min={estimate_s(listings, settings, nproc) / 60:.1f}\n"
                     f"planned_trials={sum(r[3] for r in rows)}\n")
            # The sweep only when the user chose it or the plan changed it.
            if threads or tuple(settings.threads) != tuple(sweep):
                fh.write(f"threads={','.join(map(str, settings.threads))}\n")
    return 0
