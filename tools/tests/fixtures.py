"""Synthetic kprim results (Google Benchmark 1.7.1 JSON per results/SCHEMA.md) for the tests.

Values are deterministic: contender ``c`` at ``t`` threads runs at ``base * t**scaling``
ops/s times a small per-repetition wobble, so tests can assert verdicts, never timings.
"""

import json
import os

WOBBLE = (1.0, 1.01, 0.99, 1.02, 0.98, 1.015, 0.985, 1.005)


def context(machine="testbox-2c-aaaa1111", fingerprint="aaaa1111bbbb2222", sha="1a2b3c4",
            pus=2, dirty="0", **extra):
    """A Google Benchmark context with the kprim keys; ``extra`` overrides or adds keys."""
    ctx = {
        "date": "2026-11-25T15:01:02+00:00", "host_name": "testbox", "executable": "bench_locks",
        "num_cpus": pus, "mhz_per_cpu": 2450, "cpu_scaling_enabled": False,
        "caches": [], "load_avg": [0.1, 0.1, 0.1], "library_build_type": "debug",
        "kprim_schema_version": "1", "kprim_machine_id": machine,
        "kprim_fingerprint": fingerprint, "kprim_cpu_model": "Test CPU",
        "kprim_packages": "1", "kprim_cores": str(pus), "kprim_pus": str(pus), "kprim_smt": "1",
        "kprim_git_sha": sha, "kprim_git_dirty": dirty, "kprim_pin": "none",
        "kprim_trial_ms": "50",
    }
    ctx.update({k: str(v) if k.startswith("kprim_") else v for k, v in extra.items()})
    return ctx


def entry(name, ops_per_s, threads, repetition, repetitions, fairness=0.95):
    """One ``run_type: iteration`` benchmark entry with the kprim counters."""
    ns = 1e9 / ops_per_s
    return {
        "name": name, "family_index": 0, "per_family_instance_index": 0,
        "run_name": name, "run_type": "iteration", "repetitions": repetitions,
        "repetition_index": repetition, "threads": threads, "iterations": 1,
        "real_time": ns, "cpu_time": 1000.0, "time_unit": "ns",
        "ops_per_s": ops_per_s, "ns_per_op": ns, "ops": ops_per_s * 0.05, "trial_s": 0.05,
        "drain_ms": 0.1, "abandoned": 0, "fairness": fairness, "share_min": 0.9,
        "share_max": 1.1, "lat_p50_ns": ns * threads, "lat_p99_ns": ns * threads * 5,
        "lat_p999_ns": ns * threads * 20, "lat_max_ns": ns * threads * 100,
        "lat_samples": 1000, "clock_ns": 40,
    }


def aggregates(name, values, threads, repetitions):
    """The ``_mean``/``_median``/``_stddev``/``_cv`` aggregate entries Google Benchmark adds."""
    import statistics
    out = []
    mean = statistics.fmean(values)
    for agg, value in (("mean", mean), ("median", statistics.median(values)),
                       ("stddev", statistics.pstdev(values)),
                       ("cv", statistics.pstdev(values) / mean)):
        e = entry(name + "_" + agg, value if agg in ("mean", "median") else mean, threads, 0,
                  repetitions)
        e.update(run_type="aggregate", aggregate_name=agg, aggregate_unit="time")
        del e["repetition_index"]
        out.append(e)
    return out


def benchmarks(family="locks", workload="contended", speeds=None, threads=(1, 2, 4),
               repetitions=3, params="cs:1/gap:0", slow=None, scaling=0.5, wobble_offset=0):
    """Entries for every contender x thread count, repetitions then aggregates.

    ``speeds`` maps contender to single-thread ops/s (default: std_mutex, kprim_qspinlock,
    nolock); ``slow`` maps a contender to a factor applied to its throughput (a deliberately
    slowed contender).
    """
    speeds = speeds or {"std_mutex": 40e6, "kprim_qspinlock": 60e6, "nolock": 300e6}
    slow = slow or {}
    out = []
    for index, (contender, base) in enumerate(speeds.items()):
        for t in threads:
            name = f"{family}/{workload}/{contender}/threads:{t}"
            name += f"/{params}" if params else ""
            name += "/iterations:1/manual_time"
            values = [base * (t ** scaling) * slow.get(contender, 1.0) *
                      WOBBLE[(r + wobble_offset + 3 * index) % len(WOBBLE)]
                      for r in range(repetitions)]
            out += [entry(name, v, t, r, repetitions) for r, v in enumerate(values)]
            out += aggregates(name, values, t, repetitions)
    return out


def document(ctx=None, benches=None):
    """A whole results document."""
    return {"context": ctx or context(), "benchmarks": benches if benches is not None
            else benchmarks()}


def write(directory, name, doc):
    """Write ``doc`` as JSON to ``directory/name``; return the path."""
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
    return path


TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TOOLS)
PYTHON = "/usr/bin/python3"


def cli(*args, cwd=None, timeout=300, env=None):
    """Run ``tools/kbench_results.py ARGS`` with Debian's Python; return the CompletedProcess."""
    import subprocess
    return subprocess.run([PYTHON, os.path.join(TOOLS, "kbench_results.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False, env=env)


class ErrorAssertions:
    """Mixin for unittest.TestCase: the one-line ``kbench:`` error contract."""

    def assertOneLineError(self, proc, *fragments):
        """Exit status 2, exactly one stderr line starting ``kbench: ``, no traceback."""
        lines = proc.stderr.splitlines()
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("kbench: "), lines[0])
        self.assertNotIn("Traceback", proc.stderr + proc.stdout)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
