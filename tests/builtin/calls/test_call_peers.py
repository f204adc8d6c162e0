"""Built-in calls with real peers: Kamailio in between, baresip at the other end.

Beyond the conformance suite (tests/worker, run on both engines): an INVITE that the
proxy challenges with 407, calls over TCP, a re-INVITE (hold and resume) from a real
user agent in the middle of a call, and SIPp as a second real caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import (
    CallStarted,
    EndCause,
    EventName,
    IncomingCall,
    Method,
    RecordingDone,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.audio import (
    assert_tone,
    read_pcm,
    write_tone,
)
from tests.sipbed.kamailio import AuthOptions
from tests.sipbed.second_peer import SippCaller
from tests.sipbed.users import password_for
from tests.worker.client import account_params

from .conftest import EXT, EXT_ID, confirmed, ended, incoming

if TYPE_CHECKING:
    from pathlib import Path

    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio, KamailioFactory
    from tests.worker.client import WorkerClient

    from .conftest import BuiltinWorkerFactory

CALLER_TONE_HZ = 1000.0  # what the baresip fixture sends
PLAY_TONE_HZ = 440.0
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _answered_from(caller: Baresip, worker: WorkerClient) -> IncomingCall:
    """Let ``caller`` dial the extension; answer; return the confirmed call."""
    caller.dial(EXT)
    call = incoming(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established()
    confirmed(worker, call.call_id)
    return call


def _phone(factory: BaresipFactory, registrar: Kamailio, user: str = "9001") -> Baresip:
    phone = factory(user=user, password=f"pw-{user}", registrar=registrar)
    phone.wait_registered()
    return phone


def test_make_call_answers_the_proxys_407(
    builtin_worker_factory: BuiltinWorkerFactory,
    kamailio_factory: KamailioFactory,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """Kamailio challenges our INVITE (qop=auth); we answer once and are heard."""
    kamailio = kamailio_factory(auth=AuthOptions(qop=True, invite_challenge=True))
    worker = builtin_worker_factory()
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    callee = _phone(baresip_factory, kamailio)
    tone = write_tone(tmp_path / "announce.wav", PLAY_TONE_HZ, 1.5)
    started = CallStarted.from_wire(
        worker.request(
            Method.MAKE_CALL,
            {"account_id": EXT_ID, "target": "9001", "play": str(tone)},
        )
    )
    assert "2040@" in callee.wait_incoming()
    callee.accept()
    confirmed(worker, started.call_id)
    end = ended(worker, started.call_id)
    assert (end.cause, end.answered) == (EndCause.LOCAL, True)
    callee.wait_closed()
    heard = callee.recording
    assert heard is not None
    assert_tone(*read_pcm(heard), PLAY_TONE_HZ)


def test_calls_over_tcp(
    builtin_worker_factory: BuiltinWorkerFactory,
    kamailio_factory: KamailioFactory,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """An extension registered over TCP: a recorded page, our BYE, an outbound call."""
    kamailio = kamailio_factory()
    worker = builtin_worker_factory()
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(EXT, kamailio.host, kamailio.port, transport="tcp"),
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    caller = _phone(baresip_factory, kamailio)
    # The caller hangs up a recorded page.
    call = _answered_from(caller, worker)
    recording = tmp_path / "tcp.wav"
    worker.request(Method.RECORD, {"call_id": call.call_id, "path": str(recording)})
    worker.drain(1.5)
    caller.hangup()
    end = ended(worker, call.call_id)
    assert (end.cause, end.answered) == (EndCause.BYE, True)
    done = RecordingDone.from_wire(worker.wait_event(EventName.RECORDING_DONE).data)
    assert done.duration > 1.0
    assert_tone(*read_pcm(recording), CALLER_TONE_HZ)
    caller.wait_closed()
    # We hang up: our BYE reaches the caller.
    call = _answered_from(caller, worker)
    worker.request(Method.HANGUP, {"call_id": call.call_id})
    assert ended(worker, call.call_id).cause == EndCause.LOCAL
    caller.wait_closed()
    # An outbound call over TCP, hung up as soon as it is answered.
    started = CallStarted.from_wire(
        worker.request(Method.MAKE_CALL, {"account_id": EXT_ID, "target": "9001"})
    )
    caller.wait_incoming()
    caller.accept()
    end = ended(worker, started.call_id)
    assert (end.cause, end.answered) == (EndCause.LOCAL, True)
    caller.wait_closed()


def test_hold_and_resume_from_a_real_phone(
    registered: WorkerClient, kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    """Baresip's hold and resume re-INVITEs get 200 with the mirrored direction.

    (baresip 1.0 stops writing its received-audio file at a hold, so the audio after
    the resume is not checked through it.)
    """
    worker = registered
    caller = _phone(baresip_factory, kamailio)
    call = _answered_from(caller, worker)
    caller.hold()
    assert _answers_once_there_are(caller, worker, 2) == ["sendrecv", "recvonly"]
    caller.resume()
    assert _answers_once_there_are(caller, worker, 3) == [
        "sendrecv",
        "recvonly",
        "sendrecv",
    ]
    assert worker.request(Method.STATUS)["calls"] == 1
    assert not worker.events_named(EventName.CALL_ENDED)
    caller.hangup()
    assert ended(worker, call.call_id).cause == EndCause.BYE


def _answers_once_there_are(
    phone: Baresip, worker: WorkerClient, count: int
) -> list[str]:
    """Return the directions of our 200s to INVITE in ``phone``'s log, once ``count``."""
    for _ in range(50):
        answers = _invite_answers(phone.log_path.read_text(errors="replace"))
        if len(answers) >= count:
            return answers
        worker.drain(0.2)
    return _invite_answers(phone.log_path.read_text(errors="replace"))


def _invite_answers(log: str) -> list[str]:
    """Return the SDP direction of each 200 OK to an INVITE in a baresip log."""
    directions: list[str] = []
    for block in log.split("#\n")[1:]:
        lines = block.splitlines()
        if len(lines) < 2 or not lines[1].startswith("SIP/2.0 200"):
            continue
        if not any(
            line.startswith("CSeq:") and line.endswith("INVITE") for line in lines
        ):
            continue
        directions.extend(
            line[2:]
            for line in lines
            if line.startswith("a=") and line[2:] in _DIRECTIONS
        )
    return directions


def test_sipp_calls_through_a_challenging_proxy(
    builtin_worker_factory: BuiltinWorkerFactory,
    kamailio_factory: KamailioFactory,
    tmp_path: Path,
) -> None:
    """SIPp (answering Kamailio's 407) calls us; answered, held, its BYE ends it."""
    kamailio = kamailio_factory(auth=AuthOptions(invite_challenge=True))
    worker = builtin_worker_factory()
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    sipp = SippCaller(
        tmp_path / "sipp",
        user="9004",
        password=password_for("9004"),
        registrar=kamailio,
    )
    try:
        running = sipp.start_call(EXT, hold=1.0)
        call = incoming(worker)
        assert "9004@" in call.remote_uri
        worker.request(Method.ANSWER, {"call_id": call.call_id})
        result = running.wait()
        assert result.completed, result.errors
        assert 407 in result.invite_codes
        end = ended(worker, call.call_id)
        assert (end.cause, end.answered) == (EndCause.BYE, True)
        assert end.duration > 0.5
    finally:
        sipp.stop()
