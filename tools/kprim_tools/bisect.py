"""``kbench bisect GOOD BAD --filter REGEX``: the first commit that made a benchmark slower.

The way the kernel's 0-day robot bisects a performance regression:

1. GOOD and BAD are checked (both commits, GOOD an ancestor of BAD, the filter a usable regex,
   the thresholds file valid) before anything is built; bad input is one ``kbench:`` line, exit 2.
2. One ``git worktree`` of the repository is made in a temporary directory, checked out at GOOD.
   Its release build (``cmake --preset release``, one build directory for every commit, so later
   commits rebuild incrementally) makes only the ``bench_<family>`` targets the filter needs.
3. GOOD's filtered benchmark run is the baseline results file.
4. ``git bisect start BAD GOOD`` and ``git bisect run`` in the worktree, with ``bisect-step`` as
   the step: build (failure: exit 125, skip), run the same filtered benchmark, then
   ``./kbench gate`` against GOOD's file, re-running undecided points through ``--rerun``
   (gate exit 0: good; exit 1 with a SLOWER point: bad; exit 1 without one, i.e. points still
   UNKNOWN or without a valid trial: skip; anything else aborts the bisection).
5. The first bad commit (sha and subject) and its verdict table are printed, with the number of
   benchmark runs used. The worktree and its directory are removed at the end, also on failure
   or interrupt (SIGINT, SIGTERM, SIGHUP).

A benchmark run goes the way ``./kbench run`` goes: the checked-out commit's own binaries, with
``./kbench run``'s flags (``--kprim_trial_ms``, ``--kprim_pin=none``, ``--benchmark_repetitions``,
random interleaving, ``--benchmark_filter``, ``--kprim_threads``) and one process per line of the
checked-out commit's ``bench/bench_<family>.runs`` when that file exists (environment words
first, then flags, as ``./kbench run`` splits them), so a committed config file can change what
runs (e.g. add ``--kprim_inject``). The per-process JSON files are merged by
``kbench_results.py write`` into one results file.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from . import KbenchError
from .names import ROOT

#: Prefix of every progress line (the driver echoes these from ``git bisect run``'s output).
TAG = "kbench bisect:"

#: Exit status of a step that ``git bisect run`` treats as "cannot test this commit".
SKIP = 125
#: Exit status of a step that makes ``git bisect run`` abort (>= 128).
ABORT = 255

_THREADS_RE = re.compile(r"^[1-9][0-9]*(,[1-9][0-9]*)*$")
_ENV_WORD = re.compile(r"^[A-Z].*=", re.S)  # ./kbench run's [A-Z]*=* pattern


def positive(text):
    """argparse type: an integer >= 1."""
    import argparse
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def thread_list(text):
    """argparse type: comma-separated positive integers (``--kprim_threads`` syntax)."""
    import argparse
    if not _THREADS_RE.match(text):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of positive integers: "
                                         f"{text!r}")
    return text


def git(repo, *args, check=True):
    """Run ``git -C repo args``; return stdout stripped. Raises KbenchError when it fails."""
    done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                          errors="replace", check=False)
    if check and done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1]
        raise KbenchError(f"git {' '.join(args)} failed: {said}")
    return done.stdout.strip() if check else done


def resolve_commit(repo, rev, which):
    """Full sha of ``rev`` as a commit; KbenchError naming ``which`` (GOOD/BAD) otherwise."""
    done = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise KbenchError(f"bisect: {which} {rev!r} is not a commit of {repo}")
    return done.stdout.strip()


def subject(repo, sha):
    """``<short sha> <subject>`` of a commit."""
    return git(repo, "log", "-1", "--format=%h %s", sha)


def families_at(repo, sha):
    """Benchmark families of commit ``sha``: the ``bench/bench_<family>.cpp`` files it holds."""
    names = git(repo, "ls-tree", "--name-only", sha, "bench/").splitlines()
    out = []
    for name in names:
        match = re.fullmatch(r"bench/bench_([a-z0-9_]+)\.cpp", name)
        if match:
            out.append(match.group(1))
    return out


def families_named(flt, available):
    """The families a Google Benchmark filter names as ``<family>/`` (at its start, or after
    ``^``, ``(`` or ``|``); every family when it names none or is a negative filter (``-...``)."""
    if flt.startswith("-"):
        return list(available)
    named = [f for f in available
             if re.search(r"(^|[\^(|])" + re.escape(f) + "/", flt)]
    return named or list(available)


def validate(args):
    """Check the command line before anything is built; return the bisection's settings dict.

    Raises :class:`KbenchError` (one line) for a GOOD or BAD that is not a commit, GOOD not an
    ancestor of BAD (or the same commit), an empty or invalid filter, an unknown family, or a
    bad thresholds file.
    """
    from .thresholds import load_thresholds
    repo_in = os.path.abspath(args.repo or ROOT)
    top = git(repo_in, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise KbenchError(f"bisect: {repo_in} is not a git repository")
    repo = top.stdout.strip()
    good = resolve_commit(repo, args.good, "GOOD")
    bad = resolve_commit(repo, args.bad, "BAD")
    if good == bad:
        raise KbenchError(f"bisect: GOOD and BAD are the same commit ({good[:12]})")
    anc = git(repo, "merge-base", "--is-ancestor", good, bad, check=False)
    if anc.returncode == 1:
        raise KbenchError(f"bisect: GOOD {args.good} ({good[:12]}) is not an ancestor of "
                          f"BAD {args.bad} ({bad[:12]})")
    if anc.returncode != 0:
        raise KbenchError("bisect: git merge-base --is-ancestor failed: "
                          + (anc.stderr.strip().splitlines() or [""])[-1])
    flt = args.filter
    if not flt or not flt.strip():
        raise KbenchError("bisect: --filter must not be empty (bisect a few benchmarks, not all)")
    try:
        re.compile(flt[1:] if flt.startswith("-") else flt)
    except re.error as err:
        raise KbenchError(f"bisect: --filter: bad regex {flt!r}: {err}") from None
    available = families_at(repo, good)
    if not available:
        raise KbenchError(f"bisect: GOOD {good[:12]} has no bench/bench_*.cpp families")
    if args.families:
        families = [f for f in args.families.split(",") if f]
        for fam in families:
            if fam not in available:
                raise KbenchError(f"bisect: unknown family {fam!r} at GOOD "
                                  f"(have: {' '.join(available)})")
    else:
        families = families_named(flt, available)
    thresholds = os.path.abspath(args.thresholds)
    load_thresholds(thresholds)
    count = int(git(repo, "rev-list", "--count", f"{good}..{bad}"))
    return {"repo": repo, "good": good, "bad": bad, "filter": flt, "families": families,
            "thresholds": thresholds, "repetitions": args.repetitions,
            "trial_ms": args.trial_ms, "threads": args.threads or "", "jobs": args.jobs,
            "commits": count}


# --- child processes -------------------------------------------------------------------------

_CHILDREN = []


def _kill_children():
    """Terminate the process groups of children still running (each runs in its own session)."""
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        _CHILDREN.remove(proc)


def run_logged(cmd, log, cwd=None, env=None):
    """Run ``cmd`` in its own session, stdout and stderr appended to ``log``; return its status.

    The child is killed (its whole process group) when this process is interrupted.
    """
    with open(log, "a", encoding="utf-8", errors="replace") as handle:
        handle.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        handle.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
        _CHILDREN.append(proc)
        try:
            return proc.wait()
        finally:
            _kill_children()


def log_tail(log, lines=3):
    """What went wrong, from a log file: the first compiler/ninja error line when there is one
    (``error:``, ``FAILED:``, ``Killed``), else the last ``lines`` non-empty lines."""
    try:
        with open(log, encoding="utf-8", errors="replace") as handle:
            text = [line.strip() for line in handle if line.strip()]
    except OSError:
        return ""
    for marker in ("error:", "FAILED:", "Killed", "CMake Error"):
        for line in text:
            if marker in line:
                return line[:400]
    return " | ".join(text[-lines:])[-400:]


# --- build and run (shared by GOOD, the steps and the gate's re-runs) --------------------------

def build_dir(state):
    """The one release build directory, inside the worktree (``build/`` is ignored by git)."""
    return os.path.join(state["worktree"], "build", "release")


def build(state, log):
    """Configure (first time) and build the needed bench targets; True when it succeeded."""
    wt, bdir = state["worktree"], build_dir(state)
    if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
        if os.path.exists(os.path.join(wt, "CMakePresets.json")):
            cmd = ["cmake", "-S", wt, "-B", bdir, "--preset", "release"]
        else:
            cmd = ["cmake", "-S", wt, "-B", bdir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                   "-DKPRIM_BUILD_BENCH=ON"]
        if run_logged(cmd, log, cwd=wt) != 0:
            return False
    cmd = ["cmake", "--build", bdir, "--target", *[f"bench_{f}" for f in state["families"]]]
    if state.get("jobs"):
        cmd += ["-j", str(state["jobs"])]
    return run_logged(cmd, log, cwd=wt) == 0


def bench_processes(state, family, flt, out_prefix):
    """``[(env words, argv, json path)]``: the processes ``./kbench run`` starts for ``family``.

    The flags are ``./kbench run``'s; ``bench/bench_<family>.runs`` of the checked-out commit,
    when present, lists one process a line (``VAR=value`` words are its environment, the other
    words flags appended after the run's own).
    """
    binary = os.path.join(build_dir(state), "bench", f"bench_{family}")
    base = [f"--kprim_trial_ms={state['trial_ms']}", "--kprim_pin=none",
            f"--benchmark_repetitions={state['repetitions']}",
            "--benchmark_enable_random_interleaving=true", "--benchmark_out_format=json",
            f"--benchmark_filter={flt}"]
    if state["threads"]:
        base.append(f"--kprim_threads={state['threads']}")
    runs = os.path.join(state["worktree"], "bench", f"bench_{family}.runs")
    if not os.path.exists(runs):
        return [([], [binary, *base, f"--benchmark_out={out_prefix}.json",
                      "--benchmark_display_aggregates_only=true"], f"{out_prefix}.json")]
    out = []
    with open(runs, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            words = line.split()
            envs = [w for w in words if _ENV_WORD.match(w)]
            flags = [w for w in words if not _ENV_WORD.match(w)]
            path = f"{out_prefix}.{len(out) + 1}.json"
            out.append((envs, [binary, *base, f"--benchmark_out={path}", *flags,
                               "--benchmark_display_aggregates_only=true"], path))
    return out


def run_benchmarks(state, flt, kind, log):
    """Run the filtered benchmarks of the checked-out commit; return the results file's path.

    ``kind`` (``baseline``, ``step``, ``rerun``) is recorded in the run count. Raises
    :class:`KbenchError` when a binary fails or the filter matched nothing.
    """
    sha = git(state["worktree"], "rev-parse", "HEAD")
    runs_log = os.path.join(state["dir"], "runs.log")
    with open(runs_log, "a", encoding="utf-8") as handle:
        handle.write(f"{kind} {sha}\n")
    with open(runs_log, encoding="utf-8") as handle:
        number = sum(1 for _ in handle)
    raw = os.path.join(state["dir"], "raw", str(number))
    os.makedirs(raw)
    outs = []
    for family in state["families"]:
        for envs, argv, path in bench_processes(state, family, flt, os.path.join(raw, family)):
            env = dict(os.environ)
            env.update(w.split("=", 1) for w in envs)
            status = run_logged(argv, log, cwd=state["worktree"], env=env)
            if status != 0:
                raise KbenchError(f"bench_{family} exited with status {status} at {sha[:12]} "
                                  f"({log_tail(log, 1)})")
            outs.append(path)
    results_dir = os.path.join(state["dir"], "results", str(number))
    done = subprocess.run([sys.executable, os.path.join(state["tools"], "kbench_results.py"),
                           "write", "--results-dir", results_dir, "--run-args",
                           f"bisect {kind}: --filter {flt}", *outs],
                          capture_output=True, text=True, errors="replace", check=False)
    if done.returncode != 0:
        raise KbenchError(((done.stderr.strip().splitlines() or ["write failed"])[-1])
                          .removeprefix("kbench: ") + f" (at {sha[:12]})")
    return done.stdout.strip().splitlines()[-1]


def run_counts(state):
    """``{kind: count}`` of the benchmark runs made so far (from ``runs.log``)."""
    counts = {}
    try:
        with open(os.path.join(state["dir"], "runs.log"), encoding="utf-8") as handle:
            for line in handle:
                kind = line.split()[0]
                counts[kind] = counts.get(kind, 0) + 1
    except OSError:
        pass
    return counts


def gate(state, current, log):
    """``./kbench gate`` of ``current`` against GOOD's file; ``(status, report text)``.

    The points the gate re-measures (undecided ones, and SLOWER ones it confirms) go through
    ``bisect-bench`` (the same run path, filtered by the gate to those points) as its
    ``--rerun``.
    """
    rerun = " ".join(shlex.quote(w) for w in (
        sys.executable, os.path.join(state["tools"], "kbench_results.py"), "bisect-bench",
        state["path"])) + " --filter {filter} --out {out}"
    cmd = [os.path.join(state["root"], "kbench"), "gate", "--baseline", state["baseline"],
           "--current", current, "--thresholds", state["thresholds"], "--rerun", rerun]
    done = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    with open(log, "a", encoding="utf-8", errors="replace") as handle:
        handle.write(done.stdout + done.stderr)
    return done.returncode, done.stdout if done.returncode in (0, 1) else done.stderr.strip()


def report_rows(report):
    """``[(verdict, benchmark)]`` of the rows of a gate report's Markdown tables."""
    rows = []
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and re.fullmatch(r"[A-Z_]+", cells[0]) and cells[0] != "---":
            rows.append((cells[0], cells[1]))
    return rows


def gate_headline(report):
    """The gate report's status line without its heading marks, plus the points that are not
    SAME (``SLOWER: name, ...``)."""
    status = ""
    for line in report.splitlines():
        match = re.match(r"^#+\s*kbench gate:\s*(.*)$", line)
        if match:
            status = match.group(1).strip()
            break
    notable = {}
    for verdict, name in report_rows(report):
        if verdict not in ("SAME", "FASTER"):
            notable.setdefault(verdict, []).append(name)
    return status + "".join(f"; {v}: {', '.join(n)}" for v, n in sorted(notable.items()))


def test_commit(state, label):
    """Build, run and gate the checked-out commit; return ``(exit status for git bisect, line)``.

    The gate report is kept as ``reports/<sha>.md`` for the final table.
    """
    wt = state["worktree"]
    sha = git(wt, "rev-parse", "HEAD")
    desc = subject(wt, sha)
    log = os.path.join(state["dir"], "logs", f"{sha}.log")
    started = time.monotonic()
    if not build(state, log):
        return SKIP, f"{label}: {desc}: skip (build failed: {log_tail(log, 1)})"
    built = time.monotonic()
    try:
        current = run_benchmarks(state, state["filter"], "step", log)
    except KbenchError as err:
        return SKIP, f"{label}: {desc}: skip (benchmark run failed: {err})"
    status, report = gate(state, current, log)
    timing = f"[build {built - started:.0f} s, run+gate {time.monotonic() - built:.0f} s]"
    if status not in (0, 1):
        return ABORT, f"{label}: {desc}: gate failed: {report.splitlines()[-1] if report else ''}"
    with open(os.path.join(state["dir"], "reports", f"{sha}.md"), "w", encoding="utf-8") as out:
        out.write(report)
    if status == 0:
        return 0, f"{label}: {desc}: good (gate {gate_headline(report)}) {timing}"
    if any(verdict == "SLOWER" for verdict, _ in report_rows(report)):
        return 1, f"{label}: {desc}: bad (gate {gate_headline(report)}) {timing}"
    # The gate failed without a SLOWER point (UNKNOWN after its re-runs, or no valid trial):
    # that fails CI, but says nothing about where a slowdown came in, so the commit is skipped.
    return SKIP, f"{label}: {desc}: skip, undecided (gate {gate_headline(report)}) {timing}"


# --- the subcommands ---------------------------------------------------------------------------

def load_state(path):
    """The bisection's state file (written by :func:`run_bisect`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise KbenchError(f"bisect: cannot read state {path}: {err}") from None


def run_step(args):
    """``bisect-step STATE``: one ``git bisect run`` step; exit 0 good, 1 bad, 125 skip."""
    try:
        state = load_state(args.state)
        steps = os.path.join(state["dir"], "steps")
        with open(steps, "a", encoding="utf-8") as handle:
            handle.write("x\n")
        with open(steps, encoding="utf-8") as handle:
            number = sum(1 for _ in handle)
        status, line = test_commit(state, f"step {number}")
    except Exception as err:  # git bisect run reads exit 2 as "bad": abort instead
        print(f"{TAG} step failed: {err}", flush=True)
        return ABORT
    print(f"{TAG} {line}", flush=True)
    return status


def run_bench(args):
    """``bisect-bench STATE --filter F --out OUT``: the gate's re-run of undecided points."""
    state = load_state(args.state)
    log = os.path.join(state["dir"], "logs", "reruns.log")
    path = run_benchmarks(state, args.filter, "rerun", log)
    shutil.copyfile(path, args.out)
    return 0


def _raise_interrupt(signum, frame):
    """Signal handler: SIGTERM and SIGHUP end the bisection like Ctrl-C (cleanup runs)."""
    del frame
    raise KeyboardInterrupt(f"signal {signum}")


def _bisect_run(state):
    """``git bisect start BAD GOOD`` + ``git bisect run`` in the worktree; returns its output."""
    wt = state["worktree"]
    git(wt, "bisect", "start", state["bad"], state["good"])
    cmd = ["git", "-C", wt, "bisect", "run", sys.executable,
           os.path.join(state["tools"], "kbench_results.py"), "bisect-step", state["path"]]
    log = os.path.join(state["dir"], "logs", "bisect-run.log")
    lines = []
    with open(log, "a", encoding="utf-8", errors="replace") as handle:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                start_new_session=True)
        _CHILDREN.append(proc)
        try:
            for line in proc.stdout:
                handle.write(line)
                lines.append(line.rstrip("\n"))
                if line.startswith(TAG):
                    print(line.rstrip("\n"), flush=True)
            status = proc.wait()
        finally:
            _kill_children()
    return status, lines


def _first_bad(lines):
    """``(sha, None)`` from ``git bisect run``'s output, or ``(None, [candidates])`` when only
    skipped commits are left."""
    for line in lines:
        match = re.match(r"^([0-9a-f]{40}) is the first bad commit", line)
        if match:
            return match.group(1), None
    for i, line in enumerate(lines):
        if "only 'skip'ped commits left" in line:
            return None, [l.split()[0] for l in lines[i + 1:] if re.match(r"^[0-9a-f]{7,40}\b", l)]
    return None, None


def run_bisect(args):
    """``kbench bisect``: returns 0 when a first bad commit was found and reproduced, 1 when
    none could be singled out (only skipped commits left, or BAD does not regress against
    GOOD); bad input and failures raise :class:`KbenchError` (exit 2)."""
    settings = validate(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    tmp = tempfile.mkdtemp(prefix="kbench-bisect-")
    repo = settings["repo"]
    wt = os.path.join(tmp, "worktree")
    state = dict(settings, root=ROOT, tools=os.path.join(ROOT, "tools"),
                 dir=os.path.join(tmp, "state"), worktree=wt,
                 path=os.path.join(tmp, "state", "state.json"))
    for sub in ("logs", "reports", "raw"):
        os.makedirs(os.path.join(state["dir"], sub))
    added = False
    try:
        done = git(repo, "worktree", "add", "--detach", wt, state["good"], check=False)
        if done.returncode != 0:
            raise KbenchError("bisect: git worktree add failed: "
                              + (done.stderr.strip().splitlines() or [""])[-1])
        added = True
        good_desc, bad_desc = subject(repo, state["good"]), subject(repo, state["bad"])
        steps = max(1, (settings["commits"] - 1).bit_length()) if settings["commits"] > 1 else 0
        print(f"{TAG} GOOD {good_desc}", flush=True)
        print(f"{TAG} BAD  {bad_desc}", flush=True)
        print(f"{TAG} {settings['commits']} commits after GOOD, about {steps} steps; filter "
              f"{settings['filter']!r}; families {','.join(settings['families'])}; "
              f"{settings['repetitions']} x {settings['trial_ms']} ms trials"
              + (f"; threads {settings['threads']}" if settings["threads"] else ""), flush=True)
        log = os.path.join(state["dir"], "logs", "good.log")
        started = time.monotonic()
        if not build(state, log):
            raise KbenchError(f"bisect: GOOD {good_desc} does not build ({log_tail(log, 1)})")
        built = time.monotonic()
        state["baseline"] = run_benchmarks(state, state["filter"], "baseline", log)
        print(f"{TAG} GOOD measured: baseline {os.path.basename(state['baseline'])} "
              f"[build {built - started:.0f} s, run {time.monotonic() - built:.0f} s]",
              flush=True)
        with open(state["path"], "w", encoding="utf-8") as handle:
            json.dump(state, handle)

        status, lines = _bisect_run(state)
        first, candidates = _first_bad(lines)
        if first is None:
            if candidates:
                print(f"{TAG} only skipped commits left; the first bad commit is one of: "
                      + ", ".join(subject(repo, c) for c in candidates), flush=True)
                return 1
            tail = " | ".join(l for l in lines[-3:] if l)
            raise KbenchError(f"bisect: git bisect run ended with status {status}: {tail}")
        report_path = os.path.join(state["dir"], "reports", f"{first}.md")
        found = 0
        if not os.path.exists(report_path):
            # The first bad commit is BAD itself, which git bisect never tests: measure it now.
            git(wt, "bisect", "reset", "--quiet", check=False)
            git(wt, "checkout", "--quiet", "--detach", first)
            code, line = test_commit(state, "BAD")
            print(f"{TAG} {line}", flush=True)
            if code != 1:
                why = "does not regress against GOOD" if code == 0 else \
                    "could not be measured or decided" if code == SKIP else "failed"
                print(f"{TAG} BAD {why}: no first bad commit", flush=True)
                found = 1
        counts = run_counts(state)
        main_runs = counts.get("baseline", 0) + counts.get("step", 0)
        print(f"{TAG} benchmark runs: {main_runs} (GOOD + {counts.get('step', 0)} commits "
              f"tested); gate re-runs (filtered to the points it re-measured): "
              f"{counts.get('rerun', 0)}", flush=True)
        if found == 0:
            print(f"{TAG} first bad commit: {first} {git(repo, 'log', '-1', '--format=%s', first)}",
                  flush=True)
            with open(report_path, encoding="utf-8") as handle:
                print(handle.read().rstrip("\n"))
        return found
    finally:
        _kill_children()
        if added:
            git(wt, "bisect", "reset", "--quiet", check=False)
            git(repo, "worktree", "remove", "--force", wt, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        git(repo, "worktree", "prune", check=False)
