#!/usr/bin/python3
"""kbench_results.py: the results tooling behind ./kbench (write, plot, summary, compare, gate,
history, report). Run it with Debian's /usr/bin/python3 (matplotlib, scipy); the logic lives
in tools/kprim_tools/.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kprim_tools.cli import main  # noqa: E402  (needs the path above)

if __name__ == "__main__":
    sys.exit(main())
