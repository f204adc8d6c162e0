"""A media request on a call whose audio is not up is answered `no_active_audio`.

Home Assistant retries such a request for a moment (`calls/session.py`) and takes any
other error as a failure, so both engines must send this code, not `sip_error`, and
only while the call lives: a call that is over is `unknown_call`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallStarted,
    EndCause,
    EventName,
    Method,
)
from custom_components.sip_endpoint.protocol.wire import ErrorCode, ErrorInfo
from tests.sipbed.audio import write_tone

from .calling import (
    call_ended,
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

EXT = "2051"
EXT_ID = f"ext-{EXT}"
NO_AUDIO_MESSAGE = "the call has no active audio"
MAX_TRIES = 250  # play requests 20 ms apart: the audio of an answer is up long before


@pytest.fixture
def registered(worker: WorkerClient, kamailio: Kamailio) -> Iterator[WorkerClient]:
    """Return a worker with extension 2051 registered."""
    register_extension(worker, kamailio, EXT)
    yield worker
    worker.close()


@pytest.fixture
def phone(baresip_factory: BaresipFactory, kamailio: Kamailio) -> Baresip:
    """Return a registered baresip (9001)."""
    return registered_phone(baresip_factory, kamailio)


def _media_refusals(
    worker: WorkerClient, call_id: str, tmp_path: Path
) -> list[ErrorInfo]:
    """Ask for each media request on the call; return the three errors."""
    tone = write_tone(tmp_path / "tone.wav", 440.0, 0.3)
    return [
        worker.request_error(Method.PLAY, {"call_id": call_id, "path": str(tone)}),
        worker.request_error(
            Method.RECORD, {"call_id": call_id, "path": str(tmp_path / "rec.wav")}
        ),
        worker.request_error(Method.STREAM, {"call_id": call_id, "enable": True}),
    ]


def test_an_outbound_call_still_ringing_has_no_active_audio(
    registered: WorkerClient, phone: Baresip, tmp_path: Path
) -> None:
    """While the far end rings: no_active_audio; once the call is over: unknown_call."""
    worker = registered
    started = CallStarted.from_wire(
        worker.request(Method.MAKE_CALL, {"account_id": EXT_ID, "target": "9001"})
    )
    phone.wait_incoming()
    refusals = _media_refusals(worker, started.call_id, tmp_path)
    assert [error.code for error in refusals] == [ErrorCode.NO_ACTIVE_AUDIO] * 3
    assert {error.message for error in refusals} == {NO_AUDIO_MESSAGE}
    worker.request(Method.HANGUP, {"call_id": started.call_id})
    ended = call_ended(worker, started.call_id)
    assert ended.cause == EndCause.LOCAL
    phone.wait_closed()
    assert [e.code for e in _media_refusals(worker, started.call_id, tmp_path)] == [
        ErrorCode.UNKNOWN_CALL
    ] * 3


def test_the_only_refusal_before_the_audio_of_an_answer_is_no_active_audio(
    registered: WorkerClient, phone: Baresip, tmp_path: Path
) -> None:
    """Retrying `play` from the answer on, as Home Assistant does, ends in a playback.

    Between the 200 OK and the first RTP the audio may not be up yet; any refusal in
    that moment must be `no_active_audio`, never a `sip_error` Home Assistant would
    take as a failure.
    """
    worker = registered
    tone = write_tone(tmp_path / "tone.wav", 440.0, 0.3)
    phone.dial(EXT)
    call = incoming_call(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    refusals: list[str] = []
    for _ in range(MAX_TRIES):
        response = worker.wait_response(
            worker.send(Method.PLAY, {"call_id": call.call_id, "path": str(tone)})
        )
        if response.error is None:
            break
        refusals.append(response.error.code)
        assert response.error.code == ErrorCode.NO_ACTIVE_AUDIO, refusals
        worker.drain(0.02)
    else:
        pytest.fail(f"the audio never came up: {len(refusals)} refusals")
    worker.wait_event(EventName.PLAYBACK_DONE, lambda d: d["call_id"] == call.call_id)
    worker.request(Method.HANGUP, {"call_id": call.call_id})
    phone.wait_closed()
