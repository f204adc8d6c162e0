"""Media objects dropped while pjsua2's threads may still use them do not crash.

pjsua2 2.15 removes conference ports asynchronously and delivers a player's
end-of-file callback from its media event thread. A player or stream deleted
right after it was disconnected could be called into after it was freed; the
worker died with SIGSEGV while stopping a looped file (seen once in CI, when the
protocol still had looped files and `stop_playing`). Players are now disconnected
at their own end of file and when their call ends; streams when turned off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    IncomingCall,
    Method,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.audio import write_tone

from .client import account_params

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

EXT = "2051"
EXT_ID = f"ext-{EXT}"
CYCLES = 150


@pytest.fixture
def answered_call(
    worker: WorkerClient, kamailio: Kamailio, baresip_factory: BaresipFactory
) -> Iterator[tuple[WorkerClient, str, Baresip]]:
    """Return a worker with an answered call from baresip 9002 to 2051."""
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    caller = baresip_factory(user="9002", password="pw-9002", registrar=kamailio)
    caller.wait_registered()
    caller.dial(EXT)
    call = IncomingCall.from_wire(worker.wait_event(EventName.INCOMING_CALL).data)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established()
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == call.call_id and d["phase"] == "confirmed",
    )
    yield worker, call.call_id, caller
    worker.close()


def _phase_of(call_id: str, phase: str) -> Callable[[dict[str, Any]], bool]:
    """Return a predicate: a `call_state` event of this call in this phase."""
    return lambda data: data["call_id"] == call_id and data["phase"] == phase


def test_short_files_played_over_and_over(
    answered_call: tuple[WorkerClient, str, Baresip], tmp_path: Path
) -> None:
    """A 20 ms file is played 150 times: each player is dropped at its end of file."""
    worker, call_id, _caller = answered_call
    blip = write_tone(tmp_path / "blip.wav", 880.0, 0.02)
    for _ in range(CYCLES):
        worker.request(Method.PLAY, {"call_id": call_id, "path": str(blip)})
        worker.wait_event(EventName.PLAYBACK_DONE, lambda d: d["call_id"] == call_id)
    assert worker.process.poll() is None
    # The call is still up and still takes requests.
    worker.request(Method.STREAM, {"call_id": call_id, "enable": True})
    worker.wait_event(EventName.AUDIO, lambda d: d["call_id"] == call_id)


def test_calls_hung_up_while_a_file_plays(
    worker: WorkerClient,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """Ten calls each end while their file plays: every player is dropped mid-file."""
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    caller = baresip_factory(user="9002", password="pw-9002", registrar=kamailio)
    caller.wait_registered()
    tone = write_tone(tmp_path / "long.wav", 880.0, 5.0)
    for _ in range(10):
        caller.dial(EXT)
        call = IncomingCall.from_wire(worker.wait_event(EventName.INCOMING_CALL).data)
        worker.request(Method.ANSWER, {"call_id": call.call_id})
        caller.wait_established()
        worker.wait_event(EventName.CALL_STATE, _phase_of(call.call_id, "confirmed"))
        worker.request(Method.PLAY, {"call_id": call.call_id, "path": str(tone)})
        worker.drain(0.05)
        worker.request(Method.HANGUP, {"call_id": call.call_id})
        worker.wait_event(EventName.CALL_STATE, _phase_of(call.call_id, "disconnected"))
        caller.wait_closed()
    assert worker.process.poll() is None
    assert not worker.events_named(EventName.PLAYBACK_DONE)
    worker.close()


def test_streams_switched_over_and_over(
    answered_call: tuple[WorkerClient, str, Baresip],
) -> None:
    """The caller's audio stream is turned on and off 150 times during one call."""
    worker, call_id, _caller = answered_call
    for _ in range(CYCLES):
        worker.request(Method.STREAM, {"call_id": call_id, "enable": True})
        worker.drain(0.03)
        worker.request(Method.STREAM, {"call_id": call_id, "enable": False})
    assert worker.process.poll() is None
    worker.request(Method.STREAM, {"call_id": call_id, "enable": True})
    worker.wait_event(EventName.AUDIO, lambda d: d["call_id"] == call_id)
