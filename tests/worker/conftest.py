"""Fixtures for the worker tests: a launched worker process and its SIP settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import Method
from tests.sipbed.netutil import free_port

from .client import WorkerClient, start_params, start_result

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from custom_components.sip_endpoint.protocol.payloads import StartResult

type WorkerFactory = Callable[..., WorkerClient]


@pytest.fixture
def worker_factory(
    worker_python: Path, tmp_path: Path, socket_enabled: None
) -> Iterator[WorkerFactory]:
    """Return a callable that launches workers; all are ended at teardown."""
    launched: list[WorkerClient] = []

    def _launch() -> WorkerClient:
        client = WorkerClient(
            worker_python, tmp_path / f"worker-{len(launched)}.stderr"
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
    # Accounts and calls are not locked: every SIP callback must run on the
    # polling thread (worker/pjsua2/guard.py warns when one does not).
    off_thread = [
        line
        for client in launched
        for line in client.stderr_path.read_text(errors="replace").splitlines()
        if "ran off the polling thread" in line
    ]
    assert not off_thread


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
