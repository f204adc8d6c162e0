"""Run the reliability suite's soak tests (marker ``soak``) and print their figures.

The soak tests are too slow for CI: 200 calls in a row with memory measured before
and after, and the registrar silently unreachable over TCP. They live in
``tests/reliability`` next to their short CI versions; this script runs only them,
with their output, and prints the figure lines they report plus the machine.

Run: ``SIP_ENDPOINT_WORKER_PYTHON=.venv-worker/bin/python .venv/bin/python bench/soak.py``
(needs root for the network namespaces, like the test suite).
"""

import os
from pathlib import Path
import platform
import subprocess
import sys

REPO = Path(__file__).resolve().parent.parent
FIGURE_MARKERS = ("calls in", "no_reply_from_server after", "flood:", "gaps")


def main() -> int:
    """Run the soak tests; print the figures and the machine; return pytest's status."""
    command = [
        sys.executable, "-m", "pytest", "-p", "no:sugar", "-m", "soak", "-s",
        "--durations=0", *sys.argv[1:], str(REPO / "tests" / "reliability"),
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False
    )
    lines = result.stdout.splitlines()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    )
    print(f"load average before/after: {os.getloadavg()}")
    for line in lines:
        if any(marker in line for marker in FIGURE_MARKERS) or " call " in line:
            print(line.strip())
    print(lines[-1] if lines else result.stderr[-2000:])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
