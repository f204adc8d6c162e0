"""Fixtures for the call tests: a built-in worker process with a registered extension."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    EventName,
    IncomingCall,
    Method,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.netutil import free_port
from tests.worker.client import WorkerClient, account_params, start_params
from tests.worker.conftest import WORKER_FAILURE_MARKS, builtin_python

from .rawpeer import RawPeer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.sipbed.kamailio import Kamailio

EXT = "2040"
EXT_ID = f"ext-{EXT}"

type BuiltinWorkerFactory = Callable[..., WorkerClient]


@pytest.fixture
def builtin_worker_factory(
    tmp_path: Path, socket_enabled: None
) -> Iterator[BuiltinWorkerFactory]:
    """Return a callable that starts built-in workers.

    At teardown each must exit 0 without having logged an exception.
    """
    launched: list[WorkerClient] = []

    def _start(**start_overrides: Any) -> WorkerClient:
        client = WorkerClient(
            builtin_python(),
            tmp_path / f"builtin-{len(launched)}.stderr",
            engine="builtin",
        )
        launched.append(client)
        client.launch()
        first = free_port("127.0.0.1")
        params = start_params(
            port_min=first, port_max=min(first + 20, 65535), **start_overrides
        )
        client.sip_port = client.request(Method.START, params)["sip_port"]
        return client

    yield _start
    statuses = {client.process.pid: client.close() for client in launched}
    assert all(status == 0 for status in statuses.values()), statuses
    # Nothing a call does may fail unseen: a caught exception is logged with its
    # traceback, and that is a bug here.
    failures = [
        line
        for client in launched
        for line in client.stderr_path.read_text(errors="replace").splitlines()
        if any(mark in line for mark in WORKER_FAILURE_MARKS)
    ]
    assert not failures, "a worker logged an exception:\n" + "\n".join(failures)


@pytest.fixture
def registered(
    builtin_worker_factory: BuiltinWorkerFactory, kamailio: Kamailio
) -> WorkerClient:
    """Return a built-in worker with extension 2040 registered at Kamailio."""
    worker = builtin_worker_factory()
    register(worker, kamailio)
    return worker


def register(worker: WorkerClient, kamailio: Kamailio, ext: str = EXT) -> None:
    """Add extension ``ext`` and wait until it is registered."""
    worker.request(
        Method.ADD_ACCOUNT, account_params(ext, kamailio.host, kamailio.port)
    )
    worker.wait_registration(f"ext-{ext}", RegistrationStatus.SUCCESSFUL)


@pytest.fixture
def peer(registered: WorkerClient, raw_peers: RawPeerFactory) -> RawPeer:
    """Return a raw SIP peer aimed at the worker's extension."""
    return raw_peers(registered.sip_port)


type RawPeerFactory = Callable[[int], RawPeer]


@pytest.fixture
def raw_peers() -> Iterator[RawPeerFactory]:
    """Return a callable making raw SIP peers for extension 2040 at a worker's port.

    They are closed at teardown.
    """
    made: list[RawPeer] = []

    def _make(sip_port: int) -> RawPeer:
        made.append(RawPeer(EXT, sip_port))
        return made[-1]

    yield _make
    for raw in made:
        raw.close()


def incoming(worker: WorkerClient) -> IncomingCall:
    """Wait for the next `incoming_call`."""
    return IncomingCall.from_wire(worker.wait_event(EventName.INCOMING_CALL).data)


def ended(worker: WorkerClient, call_id: str, timeout: float = 10.0) -> CallEnded:
    """Wait for the `call_ended` of ``call_id``."""
    event = worker.wait_event(
        EventName.CALL_ENDED, lambda d: d["call_id"] == call_id, timeout=timeout
    )
    return CallEnded.from_wire(event.data)


def confirmed(worker: WorkerClient, call_id: str) -> None:
    """Wait for ``call_id`` to be confirmed."""
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == call_id and d["phase"] == "confirmed",
    )
