"""Names shared by every tool: the repository root, benchmark-name and file-name forms.

A leaf of the package's import graph (``tests/test_imports.py``): it imports no other module
of the package, so any of them can use it.
"""

import os
import re

#: Repository root: the parent of ``tools/``.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Tail of every benchmark name the harness registers (manual time, one iteration per trial).
SUFFIX = "/iterations:1/manual_time"

#: A run file ``./kbench run`` writes: ``<YYYYmmddTHHMMSSZ>-<sha>[-dirty].json``.
RUN_FILE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<sha>[A-Za-z0-9._]+?)(-dirty)?\.json$")


def short(base):
    """A benchmark name without the ``/iterations:1/manual_time`` tail."""
    return base.replace(SUFFIX, "")


def ere_escape(text):
    """Escape ``text`` for a POSIX extended regex (Google Benchmark's filter dialect)."""
    return re.sub(r"([.\[\]{}()\\*+?^$|])", r"\\\1", text)


def slug(text):
    """A file-name-safe form of ``text`` (``[A-Za-z0-9_.-]``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def display_path(path):
    """``path`` relative to the working directory when below it, else absolute."""
    rel = os.path.relpath(path)
    return os.path.abspath(path) if rel.startswith("..") else rel
