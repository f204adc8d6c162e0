"""Find a Python interpreter that can run the pjsua2 engine (one that imports pjsua2).

Only the `pjsua2` and `auto` engine options search (engine/selection.py); the built-in
engine runs on this process's own interpreter.

Every check runs the candidate in an asyncio subprocess, so nothing blocks the event
loop. The order is:

1. the interpreter configured by the user (an error when it cannot import pjsua2);
2. the interpreter running this code (never the case inside Home Assistant 2025.2+);
3. the environment variable `SIP_ENDPOINT_WORKER_PYTHON`;
4. the candidates the caller passes (Home Assistant: a venv in its config folder);
5. `python3.12` on PATH, then `$(pyenv prefix 3.12)/bin/python3.12`.
"""

import asyncio
from dataclasses import dataclass
import json
import logging
import os
import sys

from .errors import WorkerPythonNotFoundError

_LOGGER = logging.getLogger(__name__)

WORKER_PYTHON_ENV = "SIP_ENDPOINT_WORKER_PYTHON"
PROBE_TIMEOUT = 15.0

# Prints the versions as one JSON line; fails (non-zero exit) without pjsua2.
_PROBE_CODE = (
    "import json, sys, pjsua2\n"
    "print(json.dumps({'python': sys.version.split()[0],"
    " 'pjsua2': str(getattr(pjsua2, '__version__', 'unknown'))}))\n"
)


@dataclass(frozen=True, slots=True)
class WorkerPython:
    """An interpreter that imports pjsua2."""

    path: str
    python_version: str
    pjsua2_version: str


async def find_worker_python(
    configured: str | None = None, candidates: tuple[str, ...] = ()
) -> WorkerPython:
    """Return the first interpreter that can import pjsua2.

    Raises WorkerPythonNotFoundError listing every place looked at.
    """
    if configured:
        found = await probe_interpreter(configured)
        if found is None:
            raise WorkerPythonNotFoundError([f"{configured} (configured)"])
        return found
    searched: list[str] = []
    for path in _fixed_candidates(candidates):
        found = await probe_interpreter(path)
        if found is not None:
            return found
        searched.append(path)
    pyenv_python = await _pyenv_python()
    if pyenv_python is not None:
        found = await probe_interpreter(pyenv_python)
        if found is not None:
            return found
        searched.append(pyenv_python)
    else:
        searched.append("$(pyenv prefix 3.12)/bin/python3.12")
    raise WorkerPythonNotFoundError(searched)


def _fixed_candidates(candidates: tuple[str, ...]) -> list[str]:
    """Candidates in search order, without duplicates."""
    ordered = [sys.executable, os.environ.get(WORKER_PYTHON_ENV, ""), *candidates]
    ordered.append("python3.12")
    unique: list[str] = []
    for path in ordered:
        if path and path not in unique:
            unique.append(path)
    return unique


async def probe_interpreter(path: str) -> WorkerPython | None:
    """Return the versions if `path` runs and imports pjsua2, else None."""
    output = await _run(path, "-I", "-c", _PROBE_CODE)
    if output is None:
        return None
    try:
        versions = json.loads(output.strip().splitlines()[-1])
        return WorkerPython(
            path=path,
            python_version=str(versions["python"]),
            pjsua2_version=str(versions["pjsua2"]),
        )
    except (ValueError, IndexError, KeyError, TypeError):
        _LOGGER.debug("Unexpected probe output from %s", path)
        return None


async def _pyenv_python() -> str | None:
    """Return pyenv's CPython 3.12 interpreter path, if pyenv knows one."""
    output = await _run("pyenv", "prefix", "3.12")
    if output is None:
        return None
    lines = output.strip().splitlines()
    if not lines:
        return None
    return os.path.join(lines[0].strip(), "bin", "python3.12")


async def _run(program: str, *args: str) -> str | None:
    """Run a program; return its stdout when it exits 0 in time, else None."""
    try:
        process = await asyncio.create_subprocess_exec(
            program,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as err:
        _LOGGER.debug("Cannot run %s: %s", program, err)
        return None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            stdout, _ = await process.communicate()
    except TimeoutError:
        _LOGGER.debug("%s did not answer within %s s", program, PROBE_TIMEOUT)
        return None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        _LOGGER.debug("%s exited with %s", program, process.returncode)
        return None
    return stdout.decode(errors="replace")
