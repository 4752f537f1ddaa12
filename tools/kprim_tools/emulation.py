"""Emulated runs (issue 20): a results file whose binaries ran under a user-mode emulator.

The benchmarks record ``kprim_emulated`` (``yes`` when the binary's architecture,
``kprim_arch``, differs from the running kernel's, ``kprim_kernel_arch``: an arm64 build under
qemu-user on an x86-64 host; see results/SCHEMA.md). Such timings measure the emulator's
translation, not the code, and qemu-user keeps the host's memory ordering, so ``compare`` and
``gate`` refuse the file and ``report`` marks it and leaves its timings out. Files written
before these keys existed read as native.
"""

from . import KbenchError


def emulated(results):
    """True when ``results`` (a :class:`~kprim_tools.results.Results`) records an emulated run:
    context ``kprim_emulated`` is ``yes`` (or ``true``/``1``)."""
    return str(results.context.get("kprim_emulated", "")).strip().lower() in ("yes", "true", "1")


def describe(results):
    """``"an aarch64 binary on an x86_64 kernel"`` from the context (``?`` where absent)."""
    ctx = results.context
    return (f"an {ctx.get('kprim_arch') or '?'} binary on an "
            f"{ctx.get('kprim_kernel_arch') or '?'} kernel")


def refuse_emulated(tool, *runs):
    """Raise :class:`KbenchError` (one line: the file, why, what to do) for the first of
    ``runs`` that is emulated; ``tool`` names the refusing command."""
    for results in runs:
        if emulated(results):
            raise KbenchError(f"{tool}: {results.path} is an EMULATED run (kprim_emulated=yes: "
                              f"{describe(results)}, e.g. qemu-user); its timings measure the "
                              "emulator, not the code: refusing to present them as figures. "
                              "Run the benchmarks on real hardware of that architecture")
