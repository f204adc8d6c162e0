"""The built-in engine's main loop (being written; see docs/builtin-engine.md)."""

import sys
from typing import BinaryIO


def run_builtin(stdin_fd: int, protocol_out: BinaryIO) -> int:
    """Run the built-in engine until it is told to stop; return the exit status."""
    del stdin_fd, protocol_out
    sys.stderr.write("the built-in engine is not ready yet\n")
    return 1
