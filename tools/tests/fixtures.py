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


# --- Schema-2 files with seeded noise (for the verdict rule, gate and A/A tests) -----------

#: Per-repetition log-normal noise by thread count (threads:1 quiet, oversubscribed noisy).
SIGMA = {1: 0.01, 2: 0.04, 4: 0.12}

#: (workload, contender, threads, params, single-thread ops/s) of :func:`schema2_benchmarks`.
SCHEMA2_POINTS = tuple(
    [("contended", c, t, "cs:0/gap:0/locks:1", base) for c, base in
     (("std_mutex", 40e6), ("kprim_qspinlock", 60e6), ("kprim_qspinlock_aa", 60e6),
      ("nolock", 300e6)) for t in (1, 2, 4)]
    + [("uncontended", c, 1, "cs:0/gap:0/locks:per_thread", base) for c, base in
       (("std_mutex", 70e6), ("kprim_qspinlock", 120e6), ("kprim_qspinlock_aa", 120e6))])


def point_name(workload, contender, threads, params, family="locks"):
    """The full benchmark name of one point."""
    return f"{family}/{workload}/{contender}/threads:{threads}/{params}/iterations:1/manual_time"


def schema2_entry(name, ops_per_s, threads, repetition, trial_s=0.1):
    """One schema-2 repetition entry: Google Benchmark's fields untouched (``threads`` and
    ``iterations`` 1), the worker count in ``kprim_threads``, no NaN anywhere."""
    ns = 1e9 / ops_per_s
    return {"name": name, "family_index": 0, "per_family_instance_index": 0, "run_name": name,
            "run_type": "iteration", "repetitions": 5, "repetition_index": repetition,
            "threads": 1, "iterations": 1, "real_time": ns, "cpu_time": ns * threads * 0.98,
            "time_unit": "ns", "ops_per_s": ops_per_s, "ns_per_op": ns,
            "ops": ops_per_s * trial_s, "trial_s": trial_s, "kprim_threads": threads,
            "cpu_util": 0.98, "worker_cpu_s": 0.98 * threads * trial_s, "steal_pct": 0.0,
            "drain_ms": 0.1, "abandoned": 0, "fairness": 0.95, "share_min": 0.9,
            "share_max": 1.1, "lat_p50_ns": ns * threads, "lat_p99_ns": ns * threads * 5,
            "lat_p999_ns": ns * threads * 20, "lat_max_ns": ns * threads * 100,
            "lat_samples": 1000}


def schema2_benchmarks(seed=0, repetitions=5, sigma=None, bimodal=None, points=SCHEMA2_POINTS):
    """Interleaved (shuffled) schema-2 repetition entries, no aggregates, seeded noise.

    ``sigma`` overrides :data:`SIGMA`; ``bimodal`` maps a benchmark name to ``(fast ops/s,
    slow ops/s, share of fast)``: each repetition draws its regime.
    """
    import numpy
    rng = numpy.random.default_rng(seed)
    sigma = {**SIGMA, **(sigma or {})}
    bimodal = bimodal or {}
    out = []
    for workload, contender, threads, params, base in points:
        name = point_name(workload, contender, threads, params)
        for rep in range(repetitions):
            if name in bimodal:
                fast, slow, share = bimodal[name]
                value = fast if rng.random() < share else slow
            else:
                value = base * threads ** 0.5
            value *= float(numpy.exp(rng.normal(0.0, sigma[threads])))
            out.append(schema2_entry(name, value, threads, rep))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def schema2_context(**extra):
    """A schema-2 context: version 2, no injection, random interleaving."""
    keys = {"kprim_schema_version": "2", "kprim_inject": "", "kprim_interleaving": "random",
            "kprim_clock_ns": "20"}
    keys.update(extra)
    return context(**keys)


def schema2_document(seed=0, ctx=None, **kwargs):
    """A whole schema-2 results document (see :func:`schema2_benchmarks`)."""
    return {"context": ctx or schema2_context(), "benchmarks": schema2_benchmarks(seed, **kwargs)}


def scaled(doc, factors):
    """A copy of ``doc`` with the repetitions of each benchmark in ``factors`` ({name prefix:
    factor}) multiplied in throughput (time fields divided)."""
    import copy
    out = copy.deepcopy(doc)
    for entry in out["benchmarks"]:
        for prefix, factor in factors.items():
            if entry["name"].startswith(prefix) and entry.get("run_type") != "aggregate":
                entry["ops_per_s"] *= factor
                for key in ("real_time", "ns_per_op", "cpu_time"):
                    if key in entry:
                        entry[key] /= factor
                if "ops" in entry:
                    entry["ops"] *= factor
    return out


def resampled(doc, seed):
    """A copy of ``doc`` whose repetition entries of each benchmark are drawn with
    replacement from that benchmark's own (a bootstrap copy: same distributions)."""
    import copy
    import numpy
    rng = numpy.random.default_rng(seed)
    groups = {}
    for entry in doc["benchmarks"]:
        if entry.get("run_type") != "aggregate":
            groups.setdefault(entry["name"], []).append(entry)
    out = []
    for name, entries in groups.items():
        for rep in range(len(entries)):
            e = copy.deepcopy(entries[int(rng.integers(len(entries)))])
            e["repetition_index"] = rep
            out.append(e)
    return {"context": dict(doc["context"]), "benchmarks": out}
