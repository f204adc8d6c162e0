"""Calls through a real Kamailio with a real baresip: audio, DTMF, ends, refusals."""

from __future__ import annotations

import base64
import socket
import struct
import time
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallStarted,
    EndCause,
    EventName,
    Method,
    RecordingDone,
    Refused,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from tests.sipbed.audio import (
    assert_tone,
    read_pcm,
    trim_silence,
    write_tone,
)
from tests.sipbed.netutil import free_port

from .calling import (
    answered_call,
    call_ended,
    confirmed,
    incoming_call,
    register_extension,
    registered_phone,
)
from .client import account_params, start_params
from .rawcall import RawCaller

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

EXT = "2030"
EXT_ID = f"ext-{EXT}"
CALLER_TONE_HZ = 1000.0  # what the baresip fixture sends by default
PLAY_TONE_HZ = 440.0


@pytest.fixture
def registered(worker: WorkerClient, kamailio: Kamailio) -> Iterator[WorkerClient]:
    """Return a worker with extension 2030 registered."""
    register_extension(worker, kamailio, EXT)
    yield worker
    # End it while Kamailio still answers the unregistration (a faster teardown).
    worker.close()


@pytest.fixture
def caller(baresip_factory: BaresipFactory, kamailio: Kamailio) -> Baresip:
    """Return a registered baresip (9001) that sends a 1 kHz tone in its calls."""
    return registered_phone(baresip_factory, kamailio)


def test_page_call_with_audio_both_ways(
    registered: WorkerClient, caller: Baresip, tmp_path: Path
) -> None:
    """An answered call records the caller's tone and plays ours to the caller."""
    worker = registered
    tone = write_tone(tmp_path / "play.wav", PLAY_TONE_HZ, 1.5)
    caller.dial(EXT)
    call = incoming_call(worker)
    assert call.account_id == EXT_ID
    assert call.source == "127.0.0.1"
    assert "9001@" in call.remote_uri
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established()
    confirmed(worker, call.call_id)
    recording = tmp_path / "page.wav"
    worker.request(Method.RECORD, {"call_id": call.call_id, "path": str(recording)})
    worker.request(Method.PLAY, {"call_id": call.call_id, "path": str(tone)})
    worker.wait_event(EventName.PLAYBACK_DONE, lambda d: d["call_id"] == call.call_id)
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert status.calls == 1
    caller.hangup()
    ended = call_ended(worker, call.call_id)
    assert ended.cause == EndCause.BYE
    assert ended.answered
    assert ended.duration > 1.0
    done = RecordingDone.from_wire(worker.wait_event(EventName.RECORDING_DONE).data)
    assert done.path == str(recording)
    assert done.duration > 1.0
    assert_tone(*read_pcm(recording), CALLER_TONE_HZ)
    caller.wait_closed()
    heard = caller.recording
    assert heard is not None
    assert_tone(*read_pcm(heard), PLAY_TONE_HZ)
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).calls == 0


def test_ring_then_caller_cancels(registered: WorkerClient, caller: Baresip) -> None:
    """180 Ringing reaches the caller; when it gives up the cause is cancel."""
    worker = registered
    caller.dial(EXT)
    call = incoming_call(worker)
    worker.request(Method.RING, {"call_id": call.call_id})
    caller.wait_ringing()
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == call.call_id and d["phase"] == "ringing",
    )
    caller.hangup()
    ended = call_ended(worker, call.call_id)
    assert ended.cause == EndCause.CANCEL
    assert not ended.answered
    assert ended.code == 487


def test_reject_with_a_code(registered: WorkerClient, caller: Baresip) -> None:
    """`hangup` before answering sends the given final code."""
    worker = registered
    caller.dial(EXT)
    call = incoming_call(worker)
    worker.request(Method.HANGUP, {"call_id": call.call_id, "code": 486})
    assert caller.wait_closed().startswith("486")
    ended = call_ended(worker, call.call_id)
    assert ended.cause == EndCause.REJECTED
    assert ended.code == 486


def test_dtmf_digits(registered: WorkerClient, caller: Baresip) -> None:
    """RFC 4733 digits from the caller are reported once each, in order."""
    worker = registered
    caller.dial(EXT)
    call = incoming_call(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established()
    caller.send_dtmf("1#9*")
    digits = []
    for _ in range(4):
        event = worker.wait_event(EventName.DTMF)
        assert event.data["method"] == "rfc4733"
        assert event.data["call_id"] == call.call_id
        digits.append(event.data["digit"])
    assert "".join(digits) == "1#9*"
    worker.drain(0.5)
    assert not worker.events_named(EventName.DTMF)
    worker.request(Method.HANGUP, {"call_id": call.call_id})
    assert call_ended(worker, call.call_id).cause == EndCause.LOCAL


def test_make_call_is_heard(
    registered: WorkerClient, caller: Baresip, tmp_path: Path
) -> None:
    """`make_call` rings the number, plays the file once when answered, hangs up."""
    worker = registered
    tone = write_tone(tmp_path / "announce.wav", PLAY_TONE_HZ, 1.5)
    started = CallStarted.from_wire(
        worker.request(
            Method.MAKE_CALL,
            {"account_id": EXT_ID, "target": "9001", "play": str(tone)},
        )
    )
    caller.wait_incoming()
    caller.accept()
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == started.call_id and d["phase"] == "confirmed",
    )
    ended = call_ended(worker, started.call_id)
    assert ended.cause == EndCause.LOCAL
    assert ended.answered
    caller.wait_closed()
    heard = caller.recording
    assert heard is not None
    assert_tone(*read_pcm(heard), PLAY_TONE_HZ)


def test_make_call_rejected(registered: WorkerClient, caller: Baresip) -> None:
    """A busy callee ends an outbound call as rejected."""
    worker = registered
    started = CallStarted.from_wire(
        worker.request(Method.MAKE_CALL, {"account_id": EXT_ID, "target": "9001"})
    )
    caller.wait_incoming()
    caller.hangup()
    ended = call_ended(worker, started.call_id)
    assert ended.cause == EndCause.REJECTED
    assert ended.code >= 400
    assert not ended.answered


def test_invite_from_a_source_not_allowed_is_refused(
    registered: WorkerClient, baresip_factory: BaresipFactory
) -> None:
    """A direct INVITE from 127.0.0.2 is answered 403 and reported; no call appears."""
    worker = registered
    intruder = _unregistered_phone(baresip_factory, "9003")
    intruder.dial(f"sip:{EXT}@127.0.0.1:{worker.sip_port}")
    assert intruder.wait_closed().startswith("403")
    refused = Refused.from_wire(worker.wait_event(EventName.REFUSED).data)
    assert refused == Refused(source="127.0.0.2", method="INVITE")
    assert not worker.events_named(EventName.INCOMING_CALL)


def _unregistered_phone(baresip_factory: BaresipFactory, user: str) -> Baresip:
    """Return a baresip on 127.0.0.2 registered nowhere (it dials addresses)."""
    return baresip_factory(
        user=user, password=None, registrar=None, bind_host="127.0.0.2"
    )


def _registered_with_sources(
    worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    *,
    restrict: bool,
    sources: list[str],
) -> WorkerClient:
    """Start ``worker`` with this source filter (as `start` sets it) and register."""
    result = worker.request(
        Method.START,
        start_params(
            port_min=sip_ports[0],
            port_max=sip_ports[1],
            restrict_sources=restrict,
            allowed_sources=sources,
        ),
    )
    worker.sip_port = result["sip_port"]
    register_extension(worker, kamailio, EXT)
    return worker


def test_invite_from_a_source_allowed_at_start_is_announced(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """The same direct INVITE from 127.0.0.2 gets through once `start` allows it."""
    worker = _registered_with_sources(
        launched_worker,
        sip_ports,
        kamailio,
        restrict=True,
        sources=[" 127.0.0.1", "127.0.0.2 "],  # spaces around an address are ignored
    )
    intruder = _unregistered_phone(baresip_factory, "9003")
    intruder.dial(f"sip:{EXT}@127.0.0.1:{worker.sip_port}")
    call = incoming_call(worker)
    assert call.source == "127.0.0.2"
    assert not worker.events_named(EventName.REFUSED)
    worker.request(Method.HANGUP, {"call_id": call.call_id, "code": 603})
    intruder.wait_closed()
    worker.close()


def test_invite_for_another_user_is_not_found(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Without a source filter, an INVITE whose request-URI names another user: 404."""
    worker = _registered_with_sources(
        launched_worker, sip_ports, kamailio, restrict=False, sources=[]
    )
    stranger = _unregistered_phone(baresip_factory, "9004")
    stranger.dial(f"sip:5555@127.0.0.1:{worker.sip_port}")
    assert stranger.wait_closed().startswith("404")
    assert not worker.events_named(EventName.INCOMING_CALL)
    assert not worker.events_named(EventName.REFUSED)
    worker.close()


def test_stream_delivers_the_callers_audio(
    registered: WorkerClient, caller: Baresip
) -> None:
    """`stream` sends `audio` events whose PCM carries the caller's tone."""
    worker = registered
    caller.dial(EXT)
    call = incoming_call(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established()
    worker.request(Method.STREAM, {"call_id": call.call_id, "enable": True})
    frames = [worker.wait_event(EventName.AUDIO) for _ in range(100)]  # 2 s
    worker.request(Method.STREAM, {"call_id": call.call_id, "enable": False})
    seqs = [frame.data["seq"] for frame in frames]
    assert seqs == sorted(seqs)
    rate = frames[0].data["rate"]
    pcm = b"".join(base64.b64decode(frame.data["pcm"]) for frame in frames)
    samples = list(struct.unpack(f"<{len(pcm) // 2}h", pcm))
    assert len(samples) == pytest.approx(2 * rate, rel=0.05)
    assert_tone(samples, rate, CALLER_TONE_HZ)
    worker.drain(0.3)
    worker.events.clear()
    worker.drain(0.3)
    assert not worker.events_named(EventName.AUDIO)
    caller.hangup()
    assert call_ended(worker, call.call_id).cause == EndCause.BYE


def test_garbage_datagrams_do_not_kill_the_worker(
    registered: WorkerClient, caller: Baresip
) -> None:
    """Random bytes and malformed SIP on the worker's port are ignored."""
    worker = registered
    garbage = [
        b"",
        b"\x00" * 10,
        b"\xff" * 3000,
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"INVITE sip:2030@127.0.0.1 SIP/2.0\r\nVia: nonsense\r\nContent-Length: 99999\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nCSeq: abc\r\nCall-ID:\r\n\r\n",
        bytes(range(256)) * 4,
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for payload in garbage * 5:
            sock.sendto(payload, ("127.0.0.1", worker.sip_port))
    with socket.create_connection(("127.0.0.1", worker.sip_port), timeout=2) as tcp:
        tcp.sendall(b"\xde\xad\xbe\xef" * 1000 + b"\r\n\r\n")
    time.sleep(0.5)
    assert worker.process.poll() is None
    # Still works: a real call gets through.
    caller.dial(EXT)
    call = incoming_call(worker)
    worker.request(Method.HANGUP, {"call_id": call.call_id, "code": 486})
    assert caller.wait_closed().startswith("486")


@pytest.fixture
def raw_caller(registered: WorkerClient) -> Iterator[RawCaller]:
    """Return a hand-written SIP caller aimed at the worker's extension."""
    caller = RawCaller(EXT, registered.sip_port)
    yield caller
    caller.close()


def test_cancel_with_reason_200_is_answered_elsewhere(
    registered: WorkerClient, raw_caller: RawCaller
) -> None:
    """A CANCEL carrying Reason: SIP;cause=200 ends the call as answered elsewhere."""
    worker = registered
    raw_caller.invite(
        "Call-Info: <sip:127.0.0.1>;answer-after=0\r\n"
        "Alert-Info: <http://127.0.0.1/page>;info=alert-autoanswer\r\n"
    )
    call = incoming_call(worker)
    assert call.display_name == "Raw Caller"
    assert call.answer_after == 0
    assert call.call_info is not None
    assert "answer-after=0" in call.call_info
    assert call.alert_info is not None
    assert "alert-autoanswer" in call.alert_info
    raw_caller.cancel('SIP;cause=200;text="Call completed elsewhere"')
    assert raw_caller.wait_response("CANCEL").code == 200
    final = raw_caller.wait_response("INVITE")
    assert final.code == 487
    raw_caller.ack(to_tag_from=final)
    ended = call_ended(worker, call.call_id)
    assert ended.cause == EndCause.ANSWERED_ELSEWHERE


def test_sip_info_dtmf(registered: WorkerClient, raw_caller: RawCaller) -> None:
    """DTMF sent as SIP INFO is reported once per digit with method sip_info."""
    worker = registered
    raw_caller.invite()
    call = incoming_call(worker)
    assert call.answer_after is None
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    raw_caller.ack(to_tag_from=raw_caller.wait_response("INVITE"))
    for digit in "42":
        raw_caller.info_dtmf(digit)
        assert raw_caller.wait_response("INFO").code == 200
    events = [worker.wait_event(EventName.DTMF) for _ in range(2)]
    assert [(e.data["digit"], e.data["method"]) for e in events] == [
        ("4", "sip_info"),
        ("2", "sip_info"),
    ]
    worker.drain(0.3)
    assert not worker.events_named(EventName.DTMF)
    raw_caller.bye()
    assert raw_caller.wait_response("BYE").code == 200
    assert call_ended(worker, call.call_id).cause == EndCause.BYE


def test_a_confirmation_tone_plays_once_and_reports_its_end(
    registered: WorkerClient, caller: Baresip, tmp_path: Path
) -> None:
    """What the alert role does: answer, `play` a tone, wait for `playback_done`.

    The tone plays into the call once (not looped for the whole call), and its end is
    reported once.
    """
    worker = registered
    tone = write_tone(tmp_path / "tone.wav", PLAY_TONE_HZ, 1.0)
    call = answered_call(worker, caller, EXT)
    worker.request(Method.PLAY, {"call_id": call.call_id, "path": str(tone)})
    worker.wait_event(EventName.PLAYBACK_DONE, lambda d: d["call_id"] == call.call_id)
    worker.drain(0.8)
    assert not worker.events_named(EventName.PLAYBACK_DONE)
    worker.request(Method.HANGUP, {"call_id": call.call_id})
    assert call_ended(worker, call.call_id).cause == EndCause.LOCAL
    caller.wait_closed()
    heard = caller.recording
    assert heard is not None
    samples, rate = read_pcm(heard)
    loud = trim_silence(samples)
    # Played once: about one second of tone, not looped for the whole call.
    assert 0.7 * rate < len(loud) < 1.4 * rate
    assert_tone(samples, rate, PLAY_TONE_HZ)


def test_simultaneous_calls_up_to_the_limit(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """Four callers at once are answered and hear the announcement; a fifth gets 486.

    The worker is started with ``max_calls`` 4 (capped at hello's ``max_calls``). The
    pjsua2 wheel is built with PJSUA_MAX_CALLS = 4 anyway: pjsua itself answers the
    fifth INVITE with 486 Busy Here, and the worker carries on. The built-in engine
    answers 486 past ``max_calls`` itself.
    """
    assert launched_worker.hello is not None
    limit = min(4, launched_worker.hello.max_calls)
    assert limit == 4
    launched_worker.request(
        Method.START,
        start_params(port_min=sip_ports[0], port_max=sip_ports[1], max_calls=limit),
    )
    launched_worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    launched_worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    worker = launched_worker
    tone = write_tone(tmp_path / "all.wav", PLAY_TONE_HZ, 1.0)
    phones = [
        baresip_factory(
            user=str(9001 + i), password=f"pw-{9001 + i}", registrar=kamailio
        )
        for i in range(5)
    ]
    for phone in phones:
        phone.wait_registered()
    for phone in phones[:4]:
        phone.dial(EXT)
    calls = [incoming_call(worker) for _ in range(4)]
    assert len({call.call_id for call in calls}) == 4
    phones[4].dial(EXT)
    assert phones[4].wait_closed().startswith("486")
    for call in calls:
        worker.request(Method.ANSWER, {"call_id": call.call_id})
    for phone in phones[:4]:
        phone.wait_established()
    for call in calls:
        confirmed(worker, call.call_id)
        worker.request(Method.PLAY, {"call_id": call.call_id, "path": str(tone)})
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).calls == 4
    error = worker.request_error(
        Method.MAKE_CALL, {"account_id": EXT_ID, "target": "9005"}
    )
    assert error.code == ErrorCode.LIMIT_REACHED
    worker.drain(1.8)
    for call in calls:
        worker.request(Method.HANGUP, {"call_id": call.call_id})
    for call in calls:
        assert call_ended(worker, call.call_id).answered
    for phone in phones[:4]:
        phone.wait_closed()
        heard = phone.recording
        assert heard is not None
        assert_tone(*read_pcm(heard), PLAY_TONE_HZ)


def test_hanging_up_stops_the_file_playing(
    registered: WorkerClient, caller: Baresip, tmp_path: Path
) -> None:
    """A call hung up while a file plays stops it; its end is never reported.

    (A page or an alert hangs up while its tone may still play.)
    """
    worker = registered
    tone = write_tone(tmp_path / "long.wav", PLAY_TONE_HZ, 10.0)
    call = answered_call(worker, caller, EXT)
    worker.request(Method.PLAY, {"call_id": call.call_id, "path": str(tone)})
    worker.drain(1.5)
    worker.request(Method.HANGUP, {"call_id": call.call_id})
    assert call_ended(worker, call.call_id).cause == EndCause.LOCAL
    caller.wait_closed()
    worker.drain(0.5)
    assert not worker.events_named(EventName.PLAYBACK_DONE)
    heard = caller.recording
    assert heard is not None
    samples, rate = read_pcm(heard)
    loud = trim_silence(samples)
    # Heard until the hangup, far short of the 10 s file.
    assert 1.0 * rate < len(loud) < 3.0 * rate
    assert_tone(samples, rate, PLAY_TONE_HZ)


def test_make_call_unanswered_times_out(
    registered: WorkerClient, caller: Baresip
) -> None:
    """An outbound call nobody answers is cancelled after `timeout` seconds."""
    worker = registered
    started = CallStarted.from_wire(
        worker.request(
            Method.MAKE_CALL, {"account_id": EXT_ID, "target": "9001", "timeout": 2}
        )
    )
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == started.call_id and d["phase"] == "calling",
    )
    caller.wait_incoming()
    ended = call_ended(worker, started.call_id)
    assert ended.cause == EndCause.LOCAL
    assert not ended.answered
    caller.wait_closed()


def test_make_call_to_a_dead_address_fails(registered: WorkerClient) -> None:
    """A call whose TCP connection is refused ends as failed (a local 503)."""
    worker = registered
    dead_port = free_port("127.0.0.1")
    started = CallStarted.from_wire(
        worker.request(
            Method.MAKE_CALL,
            {
                "account_id": EXT_ID,
                "target": f"sip:9001@127.0.0.1:{dead_port};transport=tcp",
            },
        )
    )
    ended = call_ended(worker, started.call_id)
    assert ended.cause == EndCause.FAILED
    assert ended.code == 503
    error = worker.request_error(
        Method.HANGUP, {"call_id": started.call_id, "code": 486}
    )
    assert error.code == ErrorCode.UNKNOWN_CALL


def test_requests_for_unknown_calls_and_bad_values(registered: WorkerClient) -> None:
    """Unknown calls and extensions, bad codes and missing files are refused."""
    worker = registered
    for method in (Method.RING, Method.ANSWER):
        assert worker.request_error(method, {"call_id": "nope"}).code == (
            ErrorCode.UNKNOWN_CALL
        )
    assert (
        worker.request_error(Method.HANGUP, {"call_id": "nope", "code": 200}).code
        == ErrorCode.BAD_REQUEST
    )
    assert (
        worker.request_error(
            Method.MAKE_CALL, {"account_id": "nope", "target": "9001"}
        ).code
        == ErrorCode.UNKNOWN_EXTENSION
    )
    assert (
        worker.request_error(
            Method.MAKE_CALL,
            {"account_id": EXT_ID, "target": "9001", "play": "/nonexistent.wav"},
        ).code
        == ErrorCode.BAD_REQUEST
    )
    assert worker.process.poll() is None
