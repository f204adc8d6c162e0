"""Fixtures for the worker tests: a launched worker process and its SIP settings.

The worker tests are the conformance suite of both engines: every test that launches
a worker runs once per engine (the `engine` fixture). ``SIP_ENDPOINT_TEST_ENGINES``
("builtin", "pjsua2" or "builtin,pjsua2") restricts the engines, e.g. where no
pjsua2 interpreter exists. The pjsua2 engine runs on the `worker_python` fixture's
interpreter; the built-in engine on ``SIP_ENDPOINT_BUILTIN_PYTHON`` (or, unset, the
interpreter running the tests). A test that only makes sense for one engine says so
with ``@pytest.mark.engines("pjsua2", reason=...)``.
"""

from __future__ import annotations

import os
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Final

import pytest

from custom_components.sip_endpoint.protocol.payloads import Method
from tests.sipbed.netutil import free_port

from .client import WorkerClient, start_params, start_result

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from custom_components.sip_endpoint.protocol.payloads import StartResult

type WorkerFactory = Callable[..., WorkerClient]

ENGINES: Final = ("pjsua2", "builtin")
ENGINES_ENV: Final = "SIP_ENDPOINT_TEST_ENGINES"
BUILTIN_PYTHON_ENV: Final = "SIP_ENDPOINT_BUILTIN_PYTHON"


def selected_engines() -> list[str]:
    """Return the engines to test: all, or those ``SIP_ENDPOINT_TEST_ENGINES`` names."""
    configured = os.environ.get(ENGINES_ENV, "").strip()
    if not configured:
        return list(ENGINES)
    names = [name.strip() for name in configured.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise pytest.UsageError(f"{ENGINES_ENV}: unknown engines {unknown}")
    return [name for name in ENGINES if name in names]


def pytest_configure(config: pytest.Config) -> None:
    """Register the `engines` marker."""
    config.addinivalue_line(
        "markers",
        "engines(*names, reason): the test applies to these worker engines only",
    )


@pytest.fixture(params=selected_engines())
def engine(request: pytest.FixtureRequest) -> str:
    """Return the engine under test ("pjsua2" or "builtin")."""
    name: str = request.param
    marker = request.node.get_closest_marker("engines")
    if marker is not None and name not in marker.args:
        reason = marker.kwargs.get("reason", "")
        pytest.skip(f"{'/'.join(marker.args)} only: {reason}")
    return name


def builtin_python() -> Path:
    """Return the interpreter of the built-in engine."""
    configured = os.environ.get(BUILTIN_PYTHON_ENV)
    if not configured:
        return Path(sys.executable)
    path = Path(configured)
    if not path.exists():
        pytest.fail(f"{BUILTIN_PYTHON_ENV}={configured} does not exist")
    return path


@pytest.fixture
def engine_python(engine: str, request: pytest.FixtureRequest) -> Path:
    """Return the interpreter that runs ``engine``."""
    if engine == "builtin":
        return builtin_python()
    python: Path = request.getfixturevalue("worker_python")
    return python


@pytest.fixture
def worker_factory(
    engine: str, engine_python: Path, tmp_path: Path, socket_enabled: None
) -> Iterator[WorkerFactory]:
    """Return a callable that launches workers; all are ended at teardown."""
    launched: list[WorkerClient] = []

    def _launch(python: Path | None = None) -> WorkerClient:
        client = WorkerClient(
            python or engine_python,
            tmp_path / f"worker-{len(launched)}.stderr",
            engine=engine,
        )
        launched.append(client)
        client.launch()
        return client

    yield _launch
    statuses = {client.process.pid: client.close() for client in launched}
    unclean = {pid: status for pid, status in statuses.items() if status != 0}
    if unclean:
        # A C assert in pjsua aborts with -6; None means it hung and was killed.
        pytest.fail(f"workers did not exit cleanly: {unclean}")
    stderr_lines = [
        line
        for client in launched
        for line in client.stderr_path.read_text(errors="replace").splitlines()
    ]
    # Accounts and calls are not locked: every SIP callback must run on the
    # polling thread (worker/pjsua2/guard.py warns when one does not).
    off_thread = [line for line in stderr_lines if "ran off the polling thread" in line]
    assert not off_thread
    # A SIP callback or task must never fail unseen: the pjsua2 guard logs "Error in
    # SIP callback ...", both engines log every caught exception with its traceback.
    failures = [line for line in stderr_lines if _is_worker_failure(line)]
    assert not failures, "a worker logged an exception:\n" + "\n".join(failures)


WORKER_FAILURE_MARKS: Final = (
    "Traceback (most recent call last)",
    "Error in SIP callback",
    "Error in worker task",
    "exception was never retrieved",
)


def _is_worker_failure(line: str) -> bool:
    """Return whether a worker stderr line shows an exception (a bug, not an input)."""
    return any(mark in line for mark in WORKER_FAILURE_MARKS)


@pytest.fixture
def launched_worker(worker_factory: WorkerFactory) -> WorkerClient:
    """Return a worker that said hello but is not started."""
    return worker_factory()


@pytest.fixture
def sip_ports() -> tuple[int, int]:
    """Return a port range on 127.0.0.1 whose first port is free for UDP and TCP."""
    first = free_port("127.0.0.1")
    return first, min(first + 20, 65535)


@pytest.fixture
def worker(launched_worker: WorkerClient, sip_ports: tuple[int, int]) -> WorkerClient:
    """Return a started worker on 127.0.0.1 that accepts SIP from 127.0.0.1 only."""
    result: StartResult = start_result(
        launched_worker.request(
            Method.START, start_params(port_min=sip_ports[0], port_max=sip_ports[1])
        )
    )
    launched_worker.sip_port = result.sip_port
    return launched_worker
