"""Entry point of a SIP worker process."""

import os
import sys


def main() -> int:
    """Move the protocol channel off fd 1, then run the worker until it is told to stop."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # whatever pjlib prints now lands on stderr

    from .runtime import WorkerRuntime

    return WorkerRuntime(sys.stdin.fileno(), os.fdopen(protocol_fd, "wb", 0)).run()


if __name__ == "__main__":
    sys.exit(main())
