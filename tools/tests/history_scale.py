"""History at scale: synthetic nightly runs made from a real results file, and the measurement.

:func:`make_runs` copies ``results/oxide-virtual-turin-like-2c-c0ab8b91/20261201T204526Z-
16ea0e7060d1.json`` (9,245 repetitions of 1,849 benchmarks) ``count`` times, one day apart
(file stamp, context ``date`` and ``kprim_git_sha`` shifted), every run's throughput scaled by
a seeded run-to-run factor within +-``jitter`` (day-to-day drift below the tolerance), and the
``step`` benchmark slowed to ``factor`` from run ``step_run`` on: exactly one real change.

Full measurement (365 runs x every benchmark), from tools/::

    /usr/bin/python3 -m tests.history_scale [--runs 365] [--work DIR]

prints the ingest time of ``./kbench ingest`` over all files, and the wall time and peak RSS
(``/usr/bin/time -v``) of ``./kbench history`` on the filled store, and checks that the one
change point found is the injected one. ``tests/test_history_scale.py`` runs a reduced copy.
"""

import argparse
import datetime
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TOOLS)
REAL = os.path.join(ROOT, "results", "oxide-virtual-turin-like-2c-c0ab8b91",
                    "20261201T204526Z-16ea0e7060d1.json")
STEP = "locks/contended/kprim_qspinlock/threads:2/cs:0/gap:0/locks:1/iterations:1/manual_time"
START = datetime.datetime(2026, 1, 1, 3, 0, 0, tzinfo=datetime.timezone.utc)


def sha_of(i):
    """The synthetic commit of run ``i``."""
    return f"n{i:04d}0000000"[:12]


def make_runs(directory, count=365, step_run=200, step=STEP, factor=0.7, jitter=0.02,
              keep=None, seed=17):
    """Write ``count`` run files under ``directory/<machine-id>/``; return their paths.

    ``keep``: a regex; only benchmarks whose name matches it are copied (a smaller test).
    """
    with open(REAL, encoding="utf-8") as handle:
        doc = json.load(handle)
    entries = doc["benchmarks"]
    if keep:
        pattern = re.compile(keep)
        entries = [e for e in entries if pattern.search(e["name"])]
    if not any(e["name"] == step for e in entries):
        raise ValueError(f"step benchmark {step} not among the copied entries")
    machine = os.path.join(directory, doc["context"]["kprim_machine_id"])
    os.makedirs(machine, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        when = START + datetime.timedelta(days=i)
        drift = 1.0 + rng.uniform(-jitter, jitter)
        context = dict(doc["context"], date=when.isoformat(), kprim_git_sha=sha_of(i))
        out = []
        for entry in entries:
            scale = drift * (factor if i >= step_run and entry["name"] == step else 1.0)
            copy = dict(entry)
            for key in ("real_time", "ns_per_op", "cpu_time"):
                if key in copy:
                    copy[key] = copy[key] / scale
            if "ops_per_s" in copy:
                copy["ops_per_s"] *= scale
            out.append(copy)
        path = os.path.join(machine, f"{when:%Y%m%dT%H%M%SZ}-{sha_of(i)}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"context": context, "benchmarks": out}, handle, separators=(",", ":"))
        paths.append(path)
    return paths


def _time_v(cmd):
    """Run ``cmd`` under ``/usr/bin/time -v``; return (CompletedProcess, wall s, peak RSS MiB)."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True,
                          check=False)
    wall = time.monotonic() - start
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)",
                                           proc.stderr))
    return proc, wall, (int(match[1]) / 1024 if match else float("nan")), cpu


def main(argv=None):
    """The full scale measurement (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--keep", help="only benchmarks matching this regex (default: all)")
    parser.add_argument("--work", help="keep the generated runs in this directory and reuse "
                                       "them next time (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.work or scratch
        results_dir = os.path.join(tmp, "results")
        start = time.monotonic()
        paths = sorted(glob.glob(os.path.join(results_dir, "*", "*.json")))
        if len(paths) != args.runs or args.keep:
            shutil.rmtree(results_dir, ignore_errors=True)
            paths = make_runs(results_dir, args.runs, step_run=args.runs * 200 // 365,
                              keep=args.keep)
        print(f"{len(paths)} runs ready in {time.monotonic() - start:.1f} s "
              f"({sum(os.path.getsize(p) for p in paths) / 2**20:.0f} MiB)")
        store = os.path.join(tmp, "store.sqlite")
        for old in glob.glob(store + "*"):
            os.unlink(old)
        kbench = [sys.executable, os.path.join(TOOLS, "kbench_results.py")]
        proc, wall, rss, cpu = _time_v(kbench + ["ingest", "--quiet", "--store", store] + paths)
        if proc.returncode:
            sys.exit(f"ingest failed: {proc.stderr}")
        print(f"ingest: {len(paths)} runs in {wall:.1f} s ({wall / len(paths) * 1000:.0f} ms "
              f"a run; CPU {cpu:.1f} s in all processes), peak RSS {rss:.0f} MiB, store "
              f"{os.path.getsize(store) / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
        proc, wall, rss, cpu = _time_v(kbench + ["history", results_dir, "--store", store])
        if proc.returncode:
            sys.exit(f"history failed: {proc.stderr}")
        rows = [line for line in proc.stdout.splitlines() if "/" in line and "oxide" in line]
        changed = [line for line in rows if not line.rstrip().endswith(" -")]
        print(f"history: {len(rows)} series in {wall:.2f} s (CPU {cpu:.2f} s), peak RSS "
              f"{rss:.0f} MiB; "
              f"series with change points: {len(changed)}")
        for line in changed:
            print("  " + line.strip())
        ok = len(changed) == 1 and changed[0].startswith(STEP.replace(
            "/iterations:1/manual_time", "")) and sha_of(args.runs * 200 // 365)[:7] in changed[0]
        print("the injected step is the only change point:", "yes" if ok else "NO")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
