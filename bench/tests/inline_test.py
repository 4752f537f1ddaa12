#!/usr/bin/python3
"""inline_test: every workload's operation is inlined into the harness's worker loop.

The harness measures an operation as the workload's acquire()/release() pair compiled into
detail::worker_loop (bench/harness/include/kprim/bench/harness.hpp): the contenders' fast paths
are inline header code, as they are in a user's program, and the loop around them costs a
compare and a branch. If g++ keeps a workload's acquire() or release() out of line instead,
every operation also pays a call and the worker's state goes through memory, and each row of
the family reads slower by the same few cycles without any contender having changed: with two
call sites of w.acquire() per loop instantiation (a timed and an untimed copy) g++ 12 did this
for every rwlocks row (threads:1 6-17% slower in issue 16's paired before/after gate) and for
rows of locks, slab, floor and rcu.

An out-of-line copy shows as a defined symbol `<body>::acquire(kprim::bench::worker&)` (or
release) in the binary: this test lists them with `nm -C --defined-only` and fails naming each.
Release builds only (sanitizers change what is inlined), native only (the host's nm).

Usage: inline_test.py BENCH_BINARY...
Exit 0: no out-of-line operation; 1: some (listed), or a binary nm cannot read.
"""
import re
import subprocess
import sys

# The operation itself, not a helper whose template arguments mention it: the demangled name
# ends in ::acquire(kprim::bench::worker&), optionally followed by a clone suffix.
OPERATION = re.compile(r"::(acquire|release)\(kprim::bench::worker&\)( \[clone [^\]]*\])?$")


def out_of_line(binary):
    """The demangled names of the operations `binary` defines out of line."""
    out = subprocess.run(["nm", "-C", "--defined-only", binary], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"nm {binary}: {out.stderr.strip() or 'exit %d' % out.returncode}")
    names = []
    for line in out.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW" and OPERATION.search(parts[2]):
            names.append(parts[2])
    return names


def main(argv):
    if not argv:
        print("usage: inline_test.py BENCH_BINARY...", file=sys.stderr)
        return 2
    failed = False
    for binary in argv:
        try:
            names = out_of_line(binary)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {binary}: {e}")
            failed = True
            continue
        if names:
            failed = True
            print(f"FAIL {binary}: {len(names)} operation(s) out of line:")
            for n in names:
                print(f"  {n[:300]}")
        else:
            print(f"ok   {binary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
