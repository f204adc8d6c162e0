"""Fixtures for account tests: a loopback host and accounts on it."""

from __future__ import annotations

import logging
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Any, Final

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    KeepaliveMethod,
    Method,
)
from custom_components.sip_endpoint.worker.builtin.registration.account import (
    BuiltinAccount,
)
from tests.sipbed.netutil import free_port
from tests.sipbed.users import password_for
from tests.worker.client import WorkerClient, start_params, start_result

from .fakeregistrar import Answer, FakeRegistrar
from .loophost import LoopbackHost

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test when the built-in engine logged an error (a swallowed exception)."""
    yield
    errors = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.levelno >= logging.ERROR
        and record.name.startswith("custom_components.sip_endpoint.worker.builtin")
    ]
    assert not errors


@pytest.fixture
async def host(socket_enabled: None) -> AsyncIterator[LoopbackHost]:
    """Return a started loopback host; its accounts are closed at teardown."""
    loop_host = LoopbackHost()
    await loop_host.start()
    yield loop_host
    await loop_host.close()


def params(ext: str, domain: str, port: int | None, **changes: Any) -> AccountParams:
    """Return account settings for test user ``ext`` (its standard password)."""
    values: dict[str, Any] = {
        "account_id": f"ext-{ext}",
        "extension": ext,
        "auth_id": ext,
        "password": password_for(ext),
        "domain": domain,
        "port": port,
        "retry_interval": 1,
    }
    values.update(changes)
    return AccountParams(**values)


# Account settings for an OPTIONS liveness probe every second.
PROBE_EVERY_SECOND: Final[dict[str, Any]] = {
    "keepalive": KeepaliveMethod.SIP_OPTIONS,
    "keepalive_interval": 1,
}


type RegistrarFactory = Callable[[Answer], Awaitable[FakeRegistrar]]


@pytest.fixture
async def fake_registrar(socket_enabled: None) -> AsyncIterator[RegistrarFactory]:
    """Return a callable starting scripted registrars; all are closed at teardown."""
    started: list[FakeRegistrar] = []

    async def _start(answer: Answer) -> FakeRegistrar:
        registrar = await FakeRegistrar.start(answer)
        started.append(registrar)
        return registrar

    yield _start
    for registrar in started:
        registrar.close()


type AccountFactory = Callable[..., BuiltinAccount]


@pytest.fixture
def add_account(host: LoopbackHost) -> AccountFactory:
    """Return a callable that creates an account on ``host`` and registers it."""

    def _add(
        ext: str,
        domain: str,
        port: int | None,
        *,
        on: LoopbackHost | None = None,
        **changes: Any,
    ) -> BuiltinAccount:
        target = on or host
        account = BuiltinAccount(target, params(ext, domain, port, **changes))
        target.accounts[account.account_id] = account
        account.register()
        return account

    return _add


type BuiltinWorker = Callable[..., WorkerClient]


@pytest.fixture
def builtin_worker(tmp_path: Path, socket_enabled: None) -> Iterator[BuiltinWorker]:
    """Return a callable launching and starting built-in workers; all must exit 0."""
    launched: list[WorkerClient] = []

    def _launch(**start: object) -> WorkerClient:
        client = WorkerClient(
            Path(sys.executable),
            tmp_path / f"builtin-{len(launched)}.stderr",
            engine="builtin",
        )
        launched.append(client)
        client.launch()
        first = free_port("127.0.0.1")
        result = start_result(
            client.request(
                Method.START,
                start_params(port_min=first, port_max=min(first + 20, 65535), **start),
            )
        )
        client.sip_port = result.sip_port
        return client

    yield _launch
    statuses = [client.close() for client in launched]
    assert statuses == [0] * len(launched)
    # Nothing may fail unseen inside a worker: no traceback in any stderr.
    tracebacks = [
        client.stderr_path
        for client in launched
        if "Traceback" in client.stderr_path.read_text(errors="replace")
    ]
    assert not tracebacks
