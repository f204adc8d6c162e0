"""Entry point of a SIP worker process: ``launch.py [--engine builtin|pjsua2]``."""

import os
import sys

ENGINES = ("pjsua2", "builtin")
DEFAULT_ENGINE = "pjsua2"


def engine_from_argv(argv: list[str]) -> str:
    """Return the engine named by ``--engine NAME`` or ``--engine=NAME``."""
    engine = DEFAULT_ENGINE
    for index, arg in enumerate(argv):
        if arg == "--engine" and index + 1 < len(argv):
            engine = argv[index + 1]
        elif arg.startswith("--engine="):
            engine = arg.partition("=")[2]
    if engine not in ENGINES:
        raise SystemExit(f"unknown engine {engine[:40]!r}; choose one of {ENGINES}")
    return engine


def main() -> int:
    """Move the protocol channel off fd 1, then run the worker until it is told to stop."""
    engine = engine_from_argv(sys.argv[1:])
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # whatever the engine prints now lands on stderr
    protocol_out = os.fdopen(protocol_fd, "wb", 0)
    if engine == "builtin":
        from .builtin.loop import run_builtin

        return run_builtin(sys.stdin.fileno(), protocol_out)

    from .pjsua2.loop import WorkerRuntime

    status: int = WorkerRuntime(sys.stdin.fileno(), protocol_out).run()
    return status


if __name__ == "__main__":
    sys.exit(main())
