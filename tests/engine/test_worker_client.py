"""The worker client against fake workers that misbehave on purpose."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.engine.errors import (
    EngineNotRunningError,
    RequestFailedError,
    WorkerStartError,
)
from custom_components.sip_endpoint.engine.worker_client import (
    WorkerClient,
    describe_exit,
)
from custom_components.sip_endpoint.protocol import PROTOCOL_VERSION
from custom_components.sip_endpoint.protocol.engines import EngineLimits, EngineName
from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    AccountRef,
    EventName,
    Method,
    RegistrationState,
    StartParams,
)

from .conftest import FakePythonFactory, pid_alive

if TYPE_CHECKING:
    from pathlib import Path

    from custom_components.sip_endpoint.protocol.wire import Event

START = StartParams(bind_host="127.0.0.1", port_min=5800, port_max=5899)


def _account(ext: str, password: str | None = None) -> AccountParams:
    return AccountParams(
        account_id=f"id-{ext}",
        extension=ext,
        auth_id=ext,
        password=password or f"pw-{ext}",
        domain="127.0.0.1",
    )


async def test_start_request_and_events(fake_python: FakePythonFactory) -> None:
    """Handshake, start, a request, its events, then a clean shutdown."""
    events: list[Event] = []
    registered = asyncio.Event()

    def on_event(event: Event) -> None:
        events.append(event)
        if (
            event.name == EventName.REGISTRATION
            and event.data["status"] == "successful"
        ):
            registered.set()

    client = WorkerClient(fake_python(), name="fake", on_event=on_event)
    result = await client.start(START)
    assert result.sip_port == 5800
    assert client.hello is not None
    assert (client.hello.engine, client.hello.engine_version) == ("pjsua2", "0.0-fake")
    assert client.limits == EngineLimits(max_accounts=8, max_calls=4)
    pid = client.pid
    assert pid is not None and pid_alive(pid)
    assert await client.request(Method.ADD_ACCOUNT, _account("2000")) == {}
    async with asyncio.timeout(10):
        await registered.wait()
    state = RegistrationState.from_wire(events[-1].data)
    assert state.account_id == "id-2000"
    await client.stop()
    assert client.returncode == 0
    assert not pid_alive(pid)


async def test_engine_asked_for_and_limits_kept(fake_python: FakePythonFactory) -> None:
    """The launcher is asked for the engine; the hello's engine and limits are kept."""
    client = WorkerClient(
        fake_python("--max-accounts", "3", "--max-calls", "2"),
        name="fake",
        on_event=print,
        engine=EngineName.BUILTIN,
    )
    await client.start(START)
    assert client.hello is not None and client.hello.engine == "builtin"
    assert client.limits == EngineLimits(max_accounts=3, max_calls=2)
    await client.stop()


async def test_worker_of_another_engine_is_refused(
    fake_python: FakePythonFactory,
) -> None:
    """A worker whose hello names another engine than asked is ended."""
    client = WorkerClient(
        fake_python("--hello-engine", "pjsua2"),
        name="fake",
        on_event=print,
        engine=EngineName.BUILTIN,
    )
    with pytest.raises(WorkerStartError, match="runs engine 'pjsua2', not 'builtin'"):
        await client.start(START)
    assert client.pid is not None
    assert not pid_alive(client.pid)


@pytest.mark.parametrize("flag", ["--max-accounts", "--max-calls"])
async def test_worker_without_room_is_refused(
    fake_python: FakePythonFactory, flag: str
) -> None:
    """A hello that admits no account or no call is a start error."""
    client = WorkerClient(fake_python(flag, "0"), name="fake", on_event=print)
    with pytest.raises(WorkerStartError, match="holds no accounts or calls"):
        await client.start(START)
    assert client.limits is None


async def test_garbage_lines_are_skipped(
    fake_python: FakePythonFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Non-protocol lines, oversized lines and stray responses never break the client."""
    events: list[Event] = []
    client = WorkerClient(fake_python("--garbage"), name="fake", on_event=events.append)
    await client.start(START)
    await client.request(Method.ADD_ACCOUNT, _account("2001"))
    status = await client.request(Method.STATUS)
    assert status["accounts"] == 1
    await client.stop()
    assert "not protocol" in caplog.text
    assert "line too long" in caplog.text
    assert "over 1048576 bytes" in caplog.text


async def test_protocol_mismatch(fake_python: FakePythonFactory) -> None:
    """A worker speaking another protocol version is ended with a clear error."""
    client = WorkerClient(fake_python("--protocol", "99"), name="fake", on_event=print)
    with pytest.raises(
        WorkerStartError,
        match=f"speaks protocol 99, this integration speaks {PROTOCOL_VERSION}",
    ):
        await client.start(START)
    assert client.pid is not None
    assert not pid_alive(client.pid)


async def test_worker_dies_before_hello(fake_python: FakePythonFactory) -> None:
    """The error says how the worker ended and what it printed."""
    client = WorkerClient(
        fake_python("--die-before-hello"), name="fake", on_event=print
    )
    with pytest.raises(WorkerStartError) as caught:
        await client.start(START)
    assert "exit code 3" in str(caught.value)
    assert "fatal: fake worker cannot start" in str(caught.value)


async def test_worker_aborts_on_start(fake_python: FakePythonFactory) -> None:
    """A C assert (SIGABRT) while starting is reported as such."""
    client = WorkerClient(fake_python("--abort-on-start"), name="fake", on_event=print)
    with pytest.raises(WorkerStartError, match="SIGABRT"):
        await client.start(START)


async def test_interpreter_missing(tmp_path: Path) -> None:
    """A worker interpreter that does not exist fails to start, clearly."""
    client = WorkerClient(str(tmp_path / "nope"), name="fake", on_event=print)
    with pytest.raises(WorkerStartError, match="cannot launch"):
        await client.start(START)


async def test_slow_answer_times_out(fake_python: FakePythonFactory) -> None:
    """A request not answered in time fails; the client stays usable for stop."""
    client = WorkerClient(fake_python("--slow", "0.5"), name="fake", on_event=print)
    await client.start(START)
    with pytest.raises(EngineNotRunningError, match="did not answer"):
        await client.request(Method.STATUS, timeout=0.05)
    await client.stop()


async def test_error_response(fake_python: FakePythonFactory) -> None:
    """An error answer becomes RequestFailedError with the protocol's code."""
    client = WorkerClient(fake_python(), name="fake", on_event=print)
    await client.start(START)
    with pytest.raises(RequestFailedError) as caught:
        await client.request(Method.STREAM, AccountRef("x"))
    assert caught.value.code == "unknown_method"
    for number in range(8):
        await client.request(Method.ADD_ACCOUNT, _account(str(2000 + number)))
    with pytest.raises(RequestFailedError) as full:
        await client.request(Method.ADD_ACCOUNT, _account("2008"))
    assert full.value.code == "limit_reached"
    await client.stop()


async def test_worker_ignoring_shutdown_is_killed(
    fake_python: FakePythonFactory,
) -> None:
    """A worker that does not exit after shutdown is killed by pid."""
    client = WorkerClient(fake_python("--ignore-shutdown"), name="fake", on_event=print)
    await client.start(START)
    pid = client.pid
    assert pid is not None
    await client.stop()
    assert client.returncode == -9
    assert not pid_alive(pid)


async def test_crash_fails_pending_requests(fake_python: FakePythonFactory) -> None:
    """A worker that goes away mid-request fails the request, not hangs it."""
    client = WorkerClient(fake_python("--slow", "30"), name="fake", on_event=print)
    await client.start(START)
    pending = asyncio.create_task(client.request(Method.STATUS))
    await asyncio.sleep(0.1)
    await client.kill()
    with pytest.raises(EngineNotRunningError, match="SIGKILL"):
        await pending
    with pytest.raises(EngineNotRunningError):
        await client.request(Method.STATUS)


def test_describe_exit() -> None:
    """Exit codes and signals read well."""
    assert describe_exit(None) == "still running"
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(-6) == "killed by SIGABRT"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-200) == "killed by signal 200"
