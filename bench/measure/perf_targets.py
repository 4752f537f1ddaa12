#!/usr/bin/python3
"""The performance targets of kprim's contended primitives, read from one results file.

Usage: /usr/bin/python3 bench/measure/perf_targets.py RESULTS_FILE [--markdown]

Every figure comes from the one file given (a default ``./kbench run`` writes all of them), so
the contenders of a ratio ran in the same process, interleaved. Each figure is the ratio of
the medians over the repetitions; next to it stands that run's A/A control at the same family
and thread count (contender ``X`` against its twin ``X_aa``, see ``kbench aa``): its change and
the difference the run can resolve there. A ratio whose distance from its target is inside
the A/A ``resolvable`` is a figure this run cannot decide; the table says ``noise`` then,
not met or short.

The targets (what the rows compute):

- qsbr empty read section: ``rcu/read_empty`` ``rcu_qsbr`` ns/op over ``nolock`` (the empty
  harness loop), threads 1; at most 1.2x. memb: ``rcu_memb`` ns/op, threads 1; at most 2 ns.
- RCU hash lookups at 99% reads (``rcu/hash`` writes:1), memb, qsbr and bp: ops/s at threads 2
  over threads 1, at least 1.8x; at nproc threads over ``std_shared_mutex``'s, at least 10x.
- slab 64 B alloc+free pair (``slab/batch`` size:64 live:1, threads 1): ``kprim_kmem_cache``
  ns/object over the fastest ``malloc_*`` row, at most 0.5x, raw and net of the ``noalloc``
  row (the harness loop's own cost). Producer/consumer (``slab/remote`` threads:nproc
  size:64, remote:50 and remote:100): ``malloc_mimalloc`` ns/object over ``kprim_kmem_cache``'s,
  at least 1x.
- kernel mutex contended at nproc (``locks/contended`` cs:0 gap:0 locks:1): ``kprim_mutex``
  ops/s over ``std_mutex``'s, at least 1.3x.
- spinlock_t at 2 threads (same parameters): ``kprim_qspinlock`` ops/s over the better of
  ``pthread_spinlock`` and ``tbb_spin_mutex``, at least 1x, with Jain fairness at least 0.9.

A row whose benchmarks the file lacks says so. Bad input (no such file, not a results file):
one ``kbench:`` line on stderr and exit 2.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

from kprim_tools import KbenchError, aa, results  # noqa: E402
from kprim_tools.names import SUFFIX  # noqa: E402
from kprim_tools.tables import render  # noqa: E402

AT_MOST, AT_LEAST = "<=", ">="


class Missing(Exception):
    """A benchmark the target needs is not in the file."""


class Run:
    """One results file: medians by name, and its A/A pairs."""

    def __init__(self, path):
        self.results = results.load(path)
        self.cases = self.results.cases()
        self.nproc = self.results.pus or 1
        self.pairs = aa.pair_rows(self.results, tolerance_for=aa.repository_tolerances())

    def median(self, stem, metric):
        """Median of ``metric`` over the repetitions of ``stem`` (a name without the suffix)."""
        case = self.cases.get(stem + SUFFIX)
        values = case.values(metric) if case is not None else []
        if not values:
            raise Missing(stem)
        return statistics.median(values)

    def control(self, family, threads, workload):
        """``(text, resolvable)`` of the run's A/A pair nearest the target: the same family
        and thread count, the same workload when it has one; ``resolvable`` is ``None``
        without one."""
        rows = [r for r in self.pairs if r["family"] == family and r["threads"] == threads]
        rows.sort(key=lambda r: r["workload"] != workload)
        if not rows:
            return "no A/A pair", None
        row = rows[0]
        text = (f"{row['contender']}_aa {row['workload']} t:{threads}: "
                f"{row['change'] * 100:+.1f}%, resolves {row['resolvable']:.1%} ({row['verdict']})")
        return text, row["resolvable"]


def verdict(value, goal, sense, noise):
    """``met``, ``short`` or ``noise`` (the distance to the goal is inside the A/A floor)."""
    met = value <= goal if sense == AT_MOST else value >= goal
    if noise is not None and abs(value / goal - 1) < noise:
        return "noise"
    return "met" if met else "short"


def rcu_read_side(run):
    """qsbr over the empty loop; memb in ns."""
    nolock = run.median("rcu/read_empty/nolock/threads:1", "ns_per_op")
    qsbr = run.median("rcu/read_empty/rcu_qsbr/threads:1", "ns_per_op")
    memb = run.median("rcu/read_empty/rcu_memb/threads:1", "ns_per_op")
    return [("qsbr empty read section / empty loop", f"{qsbr:.3f} / {nolock:.3f} ns",
             qsbr / nolock, 1.2, AT_MOST, ("rcu", 1, "read_empty")),
            ("memb empty read section (ns)", f"{memb:.3f} ns", memb, 2.0, AT_MOST,
             ("rcu", 1, "read_empty"))]


def rcu_scaling(run, flavour):
    """One flavour's hash lookups at 1% writes: 2T over 1T."""
    one = run.median(f"rcu/hash/rcu_{flavour}/threads:1/writes:1", "ops_per_s")
    two = run.median(f"rcu/hash/rcu_{flavour}/threads:2/writes:1", "ops_per_s")
    return [(f"hash 1% writes rcu_{flavour} 2T / 1T", f"{two / 1e6:.1f} / {one / 1e6:.1f} Mops/s",
             two / one, 1.8, AT_LEAST, ("rcu", 2, "hash"))]


def rcu_vs_rwlock(run, flavour):
    """One flavour's hash lookups at 1% writes at nproc over std::shared_mutex's."""
    n = run.nproc
    mine = run.median(f"rcu/hash/rcu_{flavour}/threads:{n}/writes:1", "ops_per_s")
    peer = run.median(f"rcu/hash/std_shared_mutex/threads:{n}/writes:1", "ops_per_s")
    return [(f"hash 1% writes rcu_{flavour} / std_shared_mutex, {n}T",
             f"{mine / 1e6:.1f} / {peer / 1e6:.1f} Mops/s", mine / peer, 10.0, AT_LEAST,
             ("rcu", n, "hash"))]


def slab_pair(run):
    """The 64 B pair against the fastest general allocator, raw and net of noalloc."""
    batch = "slab/batch/{}/threads:1/size:64/live:1"
    peers = {c: run.median(batch.format(c), "ns_per_object") for c in _allocators(run, batch)}
    if not peers:
        raise Missing(batch.format("malloc_*"))
    best = min(peers, key=peers.get)
    mine = run.median(batch.format("kprim_kmem_cache"), "ns_per_object")
    empty = run.median(batch.format("noalloc"), "ns_per_object")
    return [(f"kmem_cache 64 B pair / fastest ({best})", f"{mine:.2f} / {peers[best]:.2f} ns",
             mine / peers[best], 0.5, AT_MOST, ("slab", 1, "batch")),
            (f"  the same net of noalloc ({empty:.2f} ns)",
             f"{mine - empty:.2f} / {peers[best] - empty:.2f} ns",
             (mine - empty) / (peers[best] - empty), 0.5, AT_MOST, ("slab", 1, "batch"))]


def slab_remote(run, remote):
    """Producer/consumer at ``remote``% remote frees: mimalloc's ns/object over kmem_cache's."""
    n = run.nproc
    stem = f"slab/remote/{{}}/threads:{n}/size:64/remote:{remote}"
    mine = run.median(stem.format("kprim_kmem_cache"), "ns_per_object")
    peer = run.median(stem.format("malloc_mimalloc"), "ns_per_object")
    return [(f"remote:{remote} mimalloc / kmem_cache ns/object, {n}T",
             f"{peer:.1f} / {mine:.1f} ns", peer / mine, 1.0, AT_LEAST, ("slab", n, "remote"))]


LOCK = "locks/contended/{}/threads:{}/cs:0/gap:0/locks:1"


def mutex(run):
    """kprim_mutex over std_mutex at nproc."""
    n = run.nproc
    mine = run.median(LOCK.format("kprim_mutex", n), "ops_per_s")
    peer = run.median(LOCK.format("std_mutex", n), "ops_per_s")
    return [(f"kprim_mutex / std_mutex, {n}T", f"{mine / 1e6:.1f} / {peer / 1e6:.1f} Mops/s",
             mine / peer, 1.3, AT_LEAST, ("locks", n, "contended"))]


def spinlock(run):
    """spinlock_t over the better spinning peer at 2 threads, and its fairness."""
    mine = run.median(LOCK.format("kprim_qspinlock", 2), "ops_per_s")
    others = {c: run.median(LOCK.format(c, 2), "ops_per_s")
              for c in ("pthread_spinlock", "tbb_spin_mutex")}
    best = max(others, key=others.get)
    fair = run.median(LOCK.format("kprim_qspinlock", 2), "fairness")
    return [(f"kprim_qspinlock / best peer ({best}), 2T",
             f"{mine / 1e6:.1f} / {others[best] / 1e6:.1f} Mops/s", mine / others[best], 1.0,
             AT_LEAST, ("locks", 2, "contended")),
            ("kprim_qspinlock Jain fairness, 2T", f"{fair:.3f}", fair, 0.9, AT_LEAST, None)]


#: Each target's rows: ``(target, figure text, value, goal, sense, control)``; ``control`` is the
#: ``(family, threads, workload)`` whose A/A pair stands beside a ratio of throughputs or times,
#: ``None`` for a figure that is not one (fairness).
TARGETS = [rcu_read_side] + [lambda run, f=f: rcu_scaling(run, f) for f in ("memb", "qsbr", "bp")] \
    + [lambda run, f=f: rcu_vs_rwlock(run, f) for f in ("memb", "qsbr", "bp")] \
    + [slab_pair] + [lambda run, r=r: slab_remote(run, r) for r in (50, 100)] + [mutex, spinlock]


def _allocators(run, pattern):
    """The ``malloc_*`` contenders the file holds at ``pattern``'s parameters."""
    prefix, rest = pattern.split("{}")
    out = []
    for base in run.cases:
        if base.startswith(prefix + "malloc_") and base.endswith(rest + SUFFIX):
            out.append(base[len(prefix):-len(rest + SUFFIX)])
    return sorted(out)


def table(run, markdown=False):
    """The targets table of ``run`` as text."""
    rows = []
    for target in TARGETS:
        try:
            found = target(run)
        except Missing as err:
            rows.append([f"(not in this file: {err})", "-", "-", "-", "-", "-"])
            continue
        for name, figure, value, goal, sense, control in found:
            text, noise = run.control(*control) if control else ("-", None)
            rows.append([name, figure, f"{value:.3g}", f"{sense} {goal:g}",
                         verdict(value, goal, sense, noise), text])
    context = run.results.context
    title = (f"performance targets: {os.path.basename(run.results.path)} "
             f"({run.results.machine_id}, nproc {run.nproc}, {context.get('kprim_git_sha', '?')})")
    return render(["target", "figure", "ratio", "goal", "verdict", "A/A control of this run"],
                  rows, markdown, title=title)


def main(argv):
    args = [a for a in argv if a != "--markdown"]
    if len(args) != 1 or args[0].startswith("-"):
        print("kbench: perf_targets: usage: perf_targets.py RESULTS_FILE [--markdown]",
              file=sys.stderr)
        return 2
    try:
        run = Run(args[0])
    except KbenchError as err:
        print(f"kbench: {err}", file=sys.stderr)
        return 2
    print(table(run, "--markdown" in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
