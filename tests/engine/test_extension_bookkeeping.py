"""Adding, replacing and asking about extensions in any order keeps one account each."""

import pytest

from custom_components.sip_endpoint.engine.errors import RequestFailedError
from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import SipEngine
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .conftest import EventRecorder, FakePythonFactory, latest_with_status

SERVER = ServerSettings(host="127.0.0.1", port=5060)


def _ext(number: int, password: str | None = None) -> ExtensionSettings:
    ext = str(2000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, password or f"pw-{ext}")


async def test_add_twice_replaces_and_update_of_a_new_one_adds(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """A second `add` takes the new credentials; `update` of an unknown one adds it."""
    engine = SipEngine(
        SERVER,
        EngineOptions(worker_python=fake_python(), bind_host="127.0.0.1"),
        recorder,
    )
    await engine.start()
    selected = engine.selected_engine
    assert selected is not None
    await engine.start()  # already running: nothing changes
    assert engine.selected_engine is selected
    await engine.add_extension(_ext(1, password="wrong"))
    await recorder.wait_for(
        lambda events: (
            "id-2001"
            in latest_with_status(events, RegistrationStatus.REJECTED_BY_SERVER)
        )
    )
    await engine.add_extension(_ext(1))
    await engine.update_extension(_ext(2))
    await recorder.wait_for(
        lambda events: (
            {"id-2001", "id-2002"}
            <= latest_with_status(events, RegistrationStatus.SUCCESSFUL)
        )
    )
    (worker,) = engine.workers()
    assert sorted(worker.account_ids) == ["id-2001", "id-2002"]
    statuses = await engine.worker_statuses()
    assert list(statuses) == [worker.index]
    assert statuses[worker.index].accounts == 2
    removed_at = len(recorder.events)
    await engine.remove_extension("id-2002")
    assert recorder.states("id-2002", since=removed_at) == []
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.reregister("id-2002")
    await engine.stop()
    assert engine.workers() == []


async def test_malformed_and_unknown_events_are_skipped(
    fake_python: FakePythonFactory,
    recorder: EventRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker's malformed or unknown events are logged; its extension registers."""
    engine = SipEngine(
        SERVER,
        EngineOptions(worker_python=fake_python("--garbage"), bind_host="127.0.0.1"),
        recorder,
    )
    await engine.start()
    await engine.add_extension(_ext(3))
    await recorder.wait_for(
        lambda events: (
            "id-2003" in latest_with_status(events, RegistrationStatus.SUCCESSFUL)
        )
    )
    await engine.stop()
    assert "sent a malformed registration" in caplog.text
