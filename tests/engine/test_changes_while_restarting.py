"""Extensions added while their worker waits to restart are kept, not refused."""

import asyncio
from collections.abc import Callable, Sequence
import os
import signal

import pytest

from custom_components.sip_endpoint.engine import sip_engine
from custom_components.sip_endpoint.engine.errors import (
    EngineNotRunningError,
    RequestFailedError,
)
from custom_components.sip_endpoint.engine.models import (
    EngineEvent,
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import (
    RESTARTING_REASON,
    SipEngine,
)
from custom_components.sip_endpoint.protocol.payloads import RegistrationState
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .conftest import EventRecorder, FakePythonFactory, latest_with_status


def _ext(number: int) -> ExtensionSettings:
    ext = str(2000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, f"pw-{ext}")


def _engine(
    fake_python: FakePythonFactory, on_event: Callable[[EngineEvent], None]
) -> SipEngine:
    return SipEngine(
        ServerSettings(host="127.0.0.1", port=5060),
        EngineOptions(worker_python=fake_python(), bind_host="127.0.0.1"),
        on_event,
    )


def _kill_the_worker(engine: SipEngine) -> None:
    (worker,) = engine.workers()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)


def _restarting(events: Sequence[object], account_id: str) -> bool:
    states = [e for e in events if isinstance(e, RegistrationState)]
    latest = [s for s in states if s.account_id == account_id][-1:]
    return bool(latest) and latest[0].reason == RESTARTING_REASON


async def test_add_while_the_worker_is_down(
    fake_python: FakePythonFactory,
    recorder: EventRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The new extension is reported as waiting; asking to re-register is refused."""
    monkeypatch.setattr(sip_engine, "RESTART_DELAY_MIN", 600.0)
    engine = _engine(fake_python, recorder)
    await engine.start()
    await engine.add_extension(_ext(1))
    await recorder.wait_for(
        lambda events: (
            "id-2001" in latest_with_status(events, RegistrationStatus.SUCCESSFUL)
        )
    )
    _kill_the_worker(engine)
    await recorder.wait_for(lambda events: _restarting(events, "id-2001"))

    await engine.add_extension(_ext(2))
    assert _restarting(recorder.events, "id-2002")
    state = recorder.latest_state("id-2002")
    assert state is not None and state.status is RegistrationStatus.UNREGISTERED
    with pytest.raises(EngineNotRunningError):
        await engine.reregister("id-2001")
    (worker,) = engine.workers()
    assert worker.pid is None
    assert sorted(worker.account_ids) == ["id-2001", "id-2002"]
    await engine.stop()
    assert engine.workers() == []


async def test_update_and_remove_while_the_worker_is_down(
    fake_python: FakePythonFactory,
    recorder: EventRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changes made during an outage are kept, and the restarted worker applies them."""
    monkeypatch.setattr(sip_engine, "RESTART_DELAY_MIN", 0.5)
    engine = _engine(fake_python, recorder)
    await engine.start()
    await engine.add_extension(_ext(1))
    await engine.add_extension(_ext(2))
    await recorder.wait_for(
        lambda events: (
            {"id-2001", "id-2002"}
            <= latest_with_status(events, RegistrationStatus.SUCCESSFUL)
        )
    )
    _kill_the_worker(engine)
    await recorder.wait_for(lambda events: _restarting(events, "id-2002"))
    # The worker is down: neither change can reach it now.
    changed = ExtensionSettings("id-2001", "2001", "2001", "pw-changed")
    await engine.update_extension(changed)
    removed_at = len(recorder.events)
    await engine.remove_extension("id-2002")
    (worker,) = engine.workers()
    assert worker.account_ids == ["id-2001"]
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.reregister("id-2002")
    # The restarted worker registers only 2001, with the new credentials: the fake
    # worker accepts only "pw-<auth id>", so the changed password is rejected.
    await recorder.wait_for(
        lambda events: (
            "id-2001"
            in latest_with_status(events, RegistrationStatus.REJECTED_BY_SERVER)
        )
    )
    (worker,) = engine.workers()
    assert worker.pid is not None
    assert (await engine.worker_statuses())[worker.index].accounts == 1
    # The removed extension is forgotten: nothing more is reported about it.
    assert recorder.states("id-2002", since=removed_at) == []
    await engine.stop()


async def test_a_failing_event_callback_does_not_stop_the_engine(
    fake_python: FakePythonFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the event callback is logged; events keep coming."""
    received: list[EngineEvent] = []
    both_registered = asyncio.Event()

    def on_event(event: EngineEvent) -> None:
        received.append(event)
        if {"id-2001", "id-2002"} <= latest_with_status(
            received, RegistrationStatus.SUCCESSFUL
        ):
            both_registered.set()
        raise RuntimeError("automation bug")

    engine = _engine(fake_python, on_event)
    await engine.start()
    await engine.add_extension(_ext(1))
    await engine.add_extension(_ext(2))
    async with asyncio.timeout(30):
        await both_registered.wait()
    assert "Error in the SIP engine's event callback" in caplog.text
    assert "automation bug" in caplog.text
    await engine.stop()
