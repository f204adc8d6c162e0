"""Choose the worker engine and the interpreter that runs it.

- `builtin` runs the built-in worker on this process's interpreter (`sys.executable`:
  Home Assistant's own Python); nothing is probed.
- `pjsua2` needs an interpreter that imports pjsua2 (`find_worker_python`) and raises
  WorkerPythonNotFoundError when there is none.
- `auto` uses pjsua2 when an interpreter with it is configured or found, and the
  built-in engine otherwise; it never raises for a missing interpreter.

The probes run as asyncio subprocesses, so nothing blocks the event loop.
"""

from dataclasses import dataclass
import logging
import platform
import sys

from ..protocol.engines import ENGINE_LIMITS, EngineLimits, EngineName
from .errors import WorkerPythonNotFoundError
from .interpreter import WorkerPython, find_worker_python
from .models import EngineChoice

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SelectedEngine:
    """The engine the workers run, and on which interpreter."""

    name: EngineName
    python: str  # the interpreter's path
    python_version: str
    engine_version: str  # "" until a worker's hello says it

    @property
    def limits(self) -> EngineLimits:
        """What one worker of this engine holds, before its hello says so itself."""
        return ENGINE_LIMITS[self.name]


async def select_engine(
    choice: EngineChoice,
    worker_python: str | None = None,
    candidates: tuple[str, ...] = (),
) -> SelectedEngine:
    """Return the engine to run for `choice`.

    `worker_python` is the configured pjsua2 interpreter, `candidates` the places the
    caller adds to the search (Home Assistant: a venv in its config folder).
    """
    if choice is EngineChoice.BUILTIN:
        return builtin_engine()
    if choice is EngineChoice.PJSUA2:
        return _pjsua2_engine(await find_worker_python(worker_python, candidates))
    try:
        found = await find_worker_python(worker_python, candidates)
    except WorkerPythonNotFoundError as err:
        if worker_python:
            _LOGGER.warning(
                "The configured worker interpreter %s cannot run pjsua2; "
                "using the built-in SIP engine",
                worker_python,
            )
        else:
            _LOGGER.debug("Using the built-in SIP engine: %s", err)
        return builtin_engine()
    return _pjsua2_engine(found)


def builtin_engine() -> SelectedEngine:
    """Return the built-in engine on this process's interpreter."""
    return SelectedEngine(
        name=EngineName.BUILTIN,
        python=sys.executable,
        python_version=platform.python_version(),
        engine_version="",
    )


def _pjsua2_engine(found: WorkerPython) -> SelectedEngine:
    return SelectedEngine(
        name=EngineName.PJSUA2,
        python=found.path,
        python_version=found.python_version,
        engine_version=found.pjsua2_version,
    )
