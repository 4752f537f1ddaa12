#!/usr/bin/python3
"""loop_align_test: every instantiation of the harness's worker loop starts a 64-byte line.

The harness measures an operation as the workload's acquire()/release() pair inside
detail::worker_loop (bench/harness/include/kprim/bench/harness.hpp). For the cheapest
workloads the loop is a few instructions, and where it lies against the front end's 32- and
64-byte lines decides its speed: in bench_rcu, read_empty's nolock and rcu_qsbr rows compiled
to the same 30-byte loop, one inside a 64-byte line and one across, and the second read 0.60 ns
per operation in most repetitions where the first read 0.41 (a 1.44x between medians of equal
instructions). Where g++ left the loop's top depended on where the linker put the
instantiation; worker_loop asks for 64-byte alignment of the labels only jumps reach
(KPRIM_LOOP_TOP_ALIGNED), which takes in the rotated loop's top.

The loop's top is found in the disassembly (`objdump -d`) of each worker_loop<...> function
(its .cold part aside) as the lowest target of a backward conditional jump before the
function's first return: the outer loop's back edge, or the latch of a branch out of it.
Where g++ rotated the loop (entered it in the middle, so that no instruction falls through
into its top) the top must be a multiple of 64; the test fails naming each instantiation whose
top is not, or in which no backward jump is found. A loop entered at its top is a loop label
to g++, aligned by its loop heuristics (16 bytes at most; counted, not checked: the heavier
rows, rwlocks and the RCU hash, are laid out that way). Release builds only (sanitizers add code to the
loop); x86-64 only, native only (the host's objdump, x86 branch mnemonics).

Usage: loop_align_test.py BENCH_BINARY...
Exit 0: every rotated loop aligned; 1: some not (listed), or a binary objdump cannot read.
"""
import re
import subprocess
import sys

ALIGN = 64
FUNCTION = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
LOOP = "kprim::bench::detail::worker_loop<"
TARGET = re.compile(r"^([0-9a-f]+)\b")


def functions(binary):
    """{demangled name: [(address, mnemonic, operands)]} of the worker loops in `binary`."""
    out = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", binary],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"objdump {binary}: {out.stderr.strip() or 'exit %d' % out.returncode}")
    loops, current = {}, None
    for line in out.stdout.splitlines():
        head = FUNCTION.match(line)
        if head:
            name = head[2]
            current = loops.setdefault(name, []) if LOOP in name and ".cold" not in name else None
            continue
        if current is not None:
            insn = INSN.match(line)
            if insn:
                current.append((int(insn[1], 16), insn[2], insn[3].strip()))
    return loops


def loop_top(insns):
    """(top, back edge) of the outer loop (see the module docstring), or None."""
    best, start = None, insns[0][0] if insns else 0
    for addr, mnemonic, operands in insns:
        if mnemonic.startswith("ret"):
            break
        target = TARGET.match(operands)
        if not mnemonic.startswith("j") or mnemonic == "jmp" or not target:
            continue
        top = int(target[1], 16)
        # Backward within the function (its .cold part lies elsewhere, often below it).
        if start <= top < addr and (best is None or top < best[0]):
            best = (top, addr)
    return best


PADDING = ("nop", "data16", "xchg", "cs")


def jumped_to_only(insns, top):
    """True when no instruction falls through into address ``top`` (the one before it, past
    any padding, is an unconditional jump or a return): the rotated loop's top, which
    KPRIM_LOOP_TOP_ALIGNED aligns. A top reached by fall-through as well is a loop label,
    aligned (or not) by g++'s own loop heuristics."""
    index = next((i for i, insn in enumerate(insns) if insn[0] == top), None)
    if index is None:
        return False
    i = index - 1
    while i >= 0 and insns[i][1].startswith(PADDING):
        i -= 1
    return i >= 0 and (insns[i][1] == "jmp" or insns[i][1].startswith("ret"))


def main(argv):
    if not argv:
        print("usage: loop_align_test.py BENCH_BINARY...", file=sys.stderr)
        return 2
    failed = False
    for binary in argv:
        try:
            loops = functions(binary)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {binary}: {e}")
            failed = True
            continue
        bad, rotated, entered, aligned = [], 0, 0, 0
        for name, insns in sorted(loops.items()):
            top = loop_top(insns)
            if top is None:
                bad.append(f"no outer back edge found: {name[:240]}")
            elif not jumped_to_only(insns, top[0]):
                entered += 1
                aligned += top[0] % ALIGN == 0
            elif top[0] % ALIGN:
                bad.append(f"loop top 0x{top[0]:x} not on a {ALIGN}-byte boundary: {name[:240]}")
            else:
                rotated += 1
        if not loops:
            print(f"ok   {binary}: no harness worker loop")
            continue
        if bad:
            failed = True
            print(f"FAIL {binary}: {len(bad)} of {len(loops)} worker loop(s):")
            for b in bad:
                print(f"  {b}")
        else:
            print(f"ok   {binary}: {len(loops)} worker loops: {rotated} entered in the middle, each "
                  f"top on a {ALIGN}-byte boundary; {entered} entered at the top ({aligned} aligned)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
