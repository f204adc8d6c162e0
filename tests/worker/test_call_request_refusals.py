"""Call requests at the wrong moment get clean answers; the call carries on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EndCause,
    EventName,
    Method,
    RecordingDone,
)
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from tests.sipbed.audio import write_tone

from .calling import (
    call_ended,
    confirmed,
    incoming_call,
    register_extension,
    registered_phone,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

EXT = "2050"
EXT_ID = f"ext-{EXT}"


@pytest.fixture
def registered(worker: WorkerClient, kamailio: Kamailio) -> Iterator[WorkerClient]:
    """Return a worker with extension 2050 registered."""
    register_extension(worker, kamailio, EXT)
    yield worker
    worker.close()


@pytest.fixture
def caller(baresip_factory: BaresipFactory, kamailio: Kamailio) -> Baresip:
    """Return a registered baresip (9001)."""
    return registered_phone(baresip_factory, kamailio)


def _refused(worker: WorkerClient, method: Method, **params: object) -> str:
    return worker.request_error(method, params).code


def test_media_requests_before_and_during_a_call(
    registered: WorkerClient, caller: Baresip, tmp_path: Path
) -> None:
    """Media needs an answered call; a second recording and bad folders are refused."""
    worker = registered
    tone = write_tone(tmp_path / "tone.wav", 440.0, 1.0)
    caller.dial(EXT)
    call = incoming_call(worker)
    call_id = call.call_id
    # Not answered yet: no audio to play into, record or stream.
    assert _refused(worker, Method.PLAY, call_id=call_id, path=str(tone)) == (
        ErrorCode.NO_ACTIVE_AUDIO
    )
    recording = tmp_path / "call.wav"
    assert _refused(worker, Method.RECORD, call_id=call_id, path=str(recording)) == (
        ErrorCode.NO_ACTIVE_AUDIO
    )
    assert _refused(worker, Method.STREAM, call_id=call_id, enable=True) == (
        ErrorCode.NO_ACTIVE_AUDIO
    )
    # Turning off a stream that never started is harmless.
    worker.request(Method.STREAM, {"call_id": call_id, "enable": False})
    worker.request(Method.ANSWER, {"call_id": call_id})
    caller.wait_established()
    confirmed(worker, call_id)
    missing_folder = tmp_path / "nowhere" / "call.wav"
    assert _refused(
        worker, Method.RECORD, call_id=call_id, path=str(missing_folder)
    ) == (ErrorCode.BAD_REQUEST)
    worker.request(Method.RECORD, {"call_id": call_id, "path": str(recording)})
    assert _refused(
        worker, Method.RECORD, call_id=call_id, path=str(tmp_path / "again.wav")
    ) == (ErrorCode.BAD_REQUEST)
    # Streaming twice is one stream; audio arrives, and stops when turned off.
    worker.request(Method.STREAM, {"call_id": call_id, "enable": True})
    worker.request(Method.STREAM, {"call_id": call_id, "enable": True})
    worker.wait_event(EventName.AUDIO, lambda d: d["call_id"] == call_id)
    worker.request(Method.STREAM, {"call_id": call_id, "enable": False})
    worker.request(Method.STREAM, {"call_id": call_id, "enable": False})
    worker.drain(0.3)
    worker.events.clear()
    worker.drain(0.5)
    assert not worker.events_named(EventName.AUDIO)
    # A file still playing at the hangup is stopped; its end is never reported.
    worker.request(Method.PLAY, {"call_id": call_id, "path": str(tone)})
    assert not (tmp_path / "again.wav").exists()
    worker.request(Method.HANGUP, {"call_id": call_id})
    ended = call_ended(worker, call_id)
    assert ended.cause == EndCause.LOCAL
    assert not [
        e
        for e in worker.events_named(EventName.PLAYBACK_DONE)
        if e.data["call_id"] == call_id
    ]
    done = RecordingDone.from_wire(worker.wait_event(EventName.RECORDING_DONE).data)
    assert done.path == str(recording)
    assert recording.stat().st_size > 44
    caller.wait_closed()


def test_make_call_refusals(registered: WorkerClient) -> None:
    """A zero timeout and an unusable target are refused; the worker carries on."""
    worker = registered
    assert _refused(
        worker, Method.MAKE_CALL, account_id=EXT_ID, target="9001", timeout=0
    ) == (ErrorCode.BAD_REQUEST)
    error = worker.request_error(
        Method.MAKE_CALL, {"account_id": EXT_ID, "target": "sip:<not a uri>"}
    )
    assert error.code in (ErrorCode.SIP_ERROR, ErrorCode.BAD_REQUEST)
    assert worker.process.poll() is None
    assert worker.request(Method.STATUS)["calls"] == 0
