"""SipEngine edge cases against fake workers (the SIP paths run in test_engine_sip.py)."""

import asyncio
import os
from pathlib import Path
import signal
import time

import pytest

from custom_components.sip_endpoint.engine.errors import (
    EngineNotRunningError,
    ExtensionLimitError,
    RequestFailedError,
    WorkerStartError,
)
from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import (
    RESTART_DELAY_MIN,
    RESTARTING_REASON,
    SipEngine,
    probe_registration,
)
from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    EndCause,
    IncomingCall,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .conftest import EventRecorder, FakePythonFactory, latest_with_status, pid_alive

SERVER = ServerSettings(host="127.0.0.1", port=5060)


def _ext(number: int, password: str | None = None) -> ExtensionSettings:
    ext = str(2000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, password or f"pw-{ext}")


def _engine(python: str, recorder: EventRecorder, **options: object) -> SipEngine:
    return SipEngine(
        SERVER,
        EngineOptions(worker_python=python, bind_host="127.0.0.1", **options),  # type: ignore[arg-type]
        recorder,
    )


async def test_shards_eight_per_worker(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """20 extensions fill workers of 8 in order; stop ends every process."""
    engine = _engine(fake_python(), recorder)
    await engine.start()
    await asyncio.gather(*(engine.add_extension(_ext(n)) for n in range(20)))
    await recorder.wait_for(
        lambda events: (
            len(latest_with_status(events, RegistrationStatus.SUCCESSFUL)) == 20
        )
    )
    workers = engine.workers()
    assert [len(worker.account_ids) for worker in workers] == [8, 8, 4]
    assert [worker.index for worker in workers] == [0, 1, 2]
    assert all(worker.pid for worker in workers)
    assert all(
        (worker.engine, worker.engine_version, worker.max_accounts)
        == ("pjsua2", "0.0-fake", 8)
        for worker in workers
    )
    states = [recorder.latest_state(f"id-{2000 + n}") for n in range(20)]
    assert all(
        state and state.status is RegistrationStatus.SUCCESSFUL for state in states
    )
    pids = [worker.pid for worker in workers]
    await engine.stop()
    assert not any(pid_alive(pid) for pid in pids if pid)
    assert engine.workers() == []


async def test_removing_last_extension_ends_worker(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """A worker left without extensions is stopped; the slot is reused later."""
    engine = _engine(fake_python(), recorder)
    await engine.start()
    for number in range(9):
        await engine.add_extension(_ext(number))
    second = engine.workers()[1]
    await engine.remove_extension("id-2008")
    assert [worker.index for worker in engine.workers()] == [0]
    assert second.pid and not pid_alive(second.pid)
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.reregister("id-2008")
    await engine.remove_extension("id-2008")  # unknown: nothing happens
    await engine.remove_extension("id-2000")
    await engine.add_extension(_ext(20))
    assert engine.workers()[0].account_ids[-1] == "id-2020"
    await engine.stop()


async def test_update_and_reregister(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """New credentials register again; reregister sends a fresh REGISTER."""
    engine = _engine(fake_python(), recorder)
    await engine.start()
    await engine.add_extension(_ext(1, password="wrong"))
    await recorder.wait_for(
        lambda events: (
            "id-2001"
            in latest_with_status(events, RegistrationStatus.REJECTED_BY_SERVER)
        )
    )
    await engine.update_extension(_ext(1))
    await recorder.wait_for(
        lambda events: (
            "id-2001" in latest_with_status(events, RegistrationStatus.SUCCESSFUL)
        )
    )
    count = len(recorder.events)
    await engine.reregister("id-2001")
    await recorder.wait_for(lambda events: len(events) > count + 1)
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.reregister("id-nope")
    (status,) = (await engine.worker_statuses()).values()
    assert status.exchanges == []  # the fake keeps none
    await engine.stop()


async def test_sigkill_restarts_worker(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """A killed worker is restarted; meanwhile its extensions are unregistered."""
    engine = _engine(fake_python(), recorder)
    await engine.start()
    for number in range(3):
        await engine.add_extension(_ext(number))
    await recorder.wait_for(
        lambda events: (
            len(latest_with_status(events, RegistrationStatus.SUCCESSFUL)) == 3
        )
    )
    (worker,) = engine.workers()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    await recorder.wait_for(
        lambda events: (
            len(latest_with_status(events, RegistrationStatus.UNREGISTERED)) == 3
        )
    )
    restarting = recorder.latest_state("id-2000")
    assert restarting is not None
    assert restarting.reason == RESTARTING_REASON
    assert restarting.last_success is not None
    await recorder.wait_for(
        lambda events: (
            len(latest_with_status(events, RegistrationStatus.SUCCESSFUL)) == 3
        )
    )
    (restarted,) = engine.workers()
    assert restarted.restarts == 1
    assert restarted.pid != worker.pid
    await engine.stop()


async def test_calls_fail_when_worker_dies(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """Calls of a worker that goes away end with cause failed."""
    engine = _engine(fake_python("--incoming-call"), recorder)
    await engine.start()
    await engine.add_extension(_ext(5))
    await recorder.wait_for(
        lambda events: any(isinstance(e, IncomingCall) for e in events)
    )
    await engine.ring("in-id-2005")
    await engine.answer("in-id-2005")
    with pytest.raises(RequestFailedError) as unknown:
        await engine.hangup("no-such-call")
    assert unknown.value.code == "unknown_call"
    (worker,) = engine.workers()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    await recorder.wait_for(
        lambda events: any(isinstance(e, CallEnded) for e in events)
    )
    ended = next(e for e in recorder.events if isinstance(e, CallEnded))
    assert (ended.call_id, ended.cause, ended.code) == (
        "in-id-2005",
        EndCause.FAILED,
        0,
    )
    with pytest.raises(RequestFailedError):
        await engine.answer("in-id-2005")
    await engine.stop()


async def test_make_call_returns_how_it_ended(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """make_call waits for its call's end, even when the end overtakes the result."""
    engine = _engine(fake_python(), recorder)
    await engine.start()
    await engine.add_extension(_ext(7))
    ends = await asyncio.gather(
        *(engine.make_call("id-2007", "9001") for _ in range(5))
    )
    assert sorted(end.call_id for end in ends) == [f"out-{n}" for n in range(1, 6)]
    assert all(end.cause is EndCause.LOCAL and end.answered for end in ends)
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.make_call("id-none", "9001")
    await engine.stop()


async def test_first_worker_start_failure(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """A worker that cannot start makes add_extension fail clearly; nothing is left."""
    engine = _engine(fake_python("--protocol", "1"), recorder)
    await engine.start()
    with pytest.raises(WorkerStartError, match="speaks protocol 1"):
        await engine.add_extension(_ext(1))
    assert engine.workers() == []
    assert recorder.states("id-2001") == []
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.reregister("id-2001")
    await engine.stop()


async def test_crash_loop_backs_off_and_stops_cleanly(
    fake_python: FakePythonFactory, recorder: EventRecorder, tmp_path: Path
) -> None:
    """A worker that keeps dying is retried with backoff; stop() interrupts the wait."""
    marker = tmp_path / "die"
    engine = _engine(fake_python("--die-if-exists", str(marker)), recorder)
    await engine.start()
    await engine.add_extension(_ext(1))
    marker.touch()  # from now on every launch dies before its hello
    (worker,) = engine.workers()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    await recorder.wait_for(
        lambda events: (
            "id-2001" in latest_with_status(events, RegistrationStatus.UNREGISTERED)
        )
    )
    # Restart n comes after a delay of 2**(n-1) s (RESTART_DELAY_MIN doubling); each
    # fails before its hello. Record when each restart count first shows.
    seen_at: dict[int, float] = {}
    killed = time.monotonic()
    async with asyncio.timeout(30):
        while len(seen_at) < 3:
            restarts = engine.workers()[0].restarts
            if restarts and restarts not in seen_at:
                seen_at[restarts] = time.monotonic()
            await asyncio.sleep(0.02)
    assert sorted(seen_at) == [1, 2, 3]  # counted one by one
    assert engine.workers()[0].pid is None
    # Lower bounds only (a loaded machine may add to each delay, never take away).
    assert seen_at[1] - killed >= RESTART_DELAY_MIN * 0.9
    assert seen_at[2] - seen_at[1] >= 2 * RESTART_DELAY_MIN * 0.9
    assert seen_at[3] - seen_at[2] >= 4 * RESTART_DELAY_MIN * 0.9
    # stop() ends the 8 s backoff at once (well within it): nothing is left.
    async with asyncio.timeout(4 * RESTART_DELAY_MIN):
        await engine.stop()
    assert engine.workers() == []


async def test_not_started_and_capacity(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """Commands need a started engine; the port range caps the extensions."""
    engine = _engine(fake_python(), recorder, port_min=5900, port_max=5901)
    with pytest.raises(EngineNotRunningError):
        await engine.add_extension(_ext(1))
    await engine.start()
    for number in range(8):
        await engine.add_extension(_ext(number))
    with pytest.raises(ExtensionLimitError):
        await engine.add_extension(_ext(8))
    await engine.stop()


async def test_probe_no_reply(fake_python: FakePythonFactory) -> None:
    """probe_registration returns a locally generated 408 as no reply from server."""
    state = await probe_registration(
        SERVER,
        EngineOptions(
            worker_python=fake_python("--register", "no_reply"), bind_host="127.0.0.1"
        ),
        _ext(3),
    )
    assert state.status is RegistrationStatus.NO_REPLY_FROM_SERVER
    assert state.code == 408


async def test_probe_timeout(fake_python: FakePythonFactory) -> None:
    """No final answer in time is reported as no reply, not raised."""
    state = await probe_registration(
        SERVER,
        EngineOptions(
            worker_python=fake_python("--register", "silent"), bind_host="127.0.0.1"
        ),
        _ext(3),
        timeout=0.3,
    )
    assert state.status is RegistrationStatus.NO_REPLY_FROM_SERVER
    assert state.code is None
    assert "0.3 s" in state.reason


async def test_probe_worker_dies(fake_python: FakePythonFactory) -> None:
    """A probe worker that cannot start raises WorkerStartError."""
    with pytest.raises(WorkerStartError, match="exit code 3"):
        await probe_registration(
            SERVER,
            EngineOptions(
                worker_python=fake_python("--die-before-hello"), bind_host="127.0.0.1"
            ),
            _ext(3),
        )


async def test_stop_during_first_launch(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """Stopping while a worker is still starting ends it; the waiting add fails."""
    engine = _engine(fake_python("--hello-delay", "30"), recorder)
    await engine.start()
    adding = asyncio.create_task(engine.add_extension(_ext(1)))
    pid = None
    for _ in range(200):  # until the process is launched (it then waits 30 s)
        await asyncio.sleep(0.05)
        client = engine._slots[0].client if engine._slots else None
        if client is not None and (pid := client.pid) is not None:
            break
    assert pid is not None and pid_alive(pid)
    await engine.stop()
    with pytest.raises(EngineNotRunningError):
        await adding
    assert not pid_alive(pid)
    assert engine.workers() == []
