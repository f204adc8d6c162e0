"""Edge cases of a call with fakes around it: end causes, refused media, failing parts.

The real-peer tests show the ordinary paths; these pin the pjsua2 worker's end-cause
table and check that nothing a broken file, a closing socket or a failing event
writer does escapes from a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import io
from typing import TYPE_CHECKING, Any, get_protocol_members

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    CallDirection,
    EndCause,
    EventName,
)
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from custom_components.sip_endpoint.worker.builtin.call import BuiltinCall
from custom_components.sip_endpoint.worker.builtin.callhost import CallHost
from custom_components.sip_endpoint.worker.builtin.media.session import WavError
from custom_components.sip_endpoint.worker.builtin.stack import BuiltinStack
from custom_components.sip_endpoint.worker.core.channel import ProtocolWriter
from custom_components.sip_endpoint.worker.core.dispatch import RequestError

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class FakeHost:
    """The stack as a call sees it, recording events and forgotten calls."""

    bind_host: str = "127.0.0.1"
    calls: dict[str, Any] = field(default_factory=dict)
    transactions: Any = None
    events: list[tuple[EventName, Any]] = field(default_factory=list)
    forgotten: list[Any] = field(default_factory=list)
    fail_emit: bool = False

    def emit(self, name: EventName, payload: Any) -> None:
        """Record (or fail to send) an event."""
        if self.fail_emit:
            raise OSError("the protocol pipe is gone")
        self.events.append((name, payload))

    def forget_call(self, call: Any) -> None:
        """Record the call's removal."""
        self.forgotten.append(call)

    def target_for(self, destination: Any) -> Any:
        """Not used by these tests."""
        raise AssertionError("no network here")

    def named(self, name: EventName) -> list[Any]:
        """Return the payloads of the events called ``name``."""
        return [payload for event, payload in self.events if event is name]


@dataclass
class FakeAccount:
    """An extension: only its settings matter to these tests."""

    params: AccountParams = field(
        default_factory=lambda: AccountParams(
            account_id="ext-1",
            extension="1",
            auth_id="1",
            password="secret-1",
            domain="127.0.0.1",
        )
    )


class FakeMedia:
    """A media session whose parts can be made to fail."""

    def __init__(self) -> None:
        """Start with everything working."""
        self.on_dtmf: Any = None
        self.stream: Any = None
        self.play_error: Exception | None = None
        self.record_error: Exception | None = None
        self.close_error: Exception | None = None
        self.started = False
        self.closed = False

    def start(self) -> None:
        """Start the clock."""
        self.started = True

    def play(self, path: str, *, loop: bool = False, on_done: Any = None) -> None:
        """Play, or fail to."""
        if self.play_error is not None:
            raise self.play_error
        if on_done is not None and not loop:
            on_done()

    def stop_playing(self) -> None:
        """Stop."""

    def record(self, path: str) -> None:
        """Record, or fail to."""
        if self.record_error is not None:
            raise self.record_error

    def set_stream(self, callback: Any) -> None:
        """Keep the stream callback."""
        self.stream = callback

    def close(self) -> float | None:
        """Close, or fail to."""
        self.closed = True
        if self.close_error is not None:
            raise self.close_error
        return 1.5


class Call(BuiltinCall):
    """A call with no signalling: hangup just ends it."""

    def hangup(self, code: int) -> None:
        """End the call locally."""
        self.local_hangup = True
        self.finish(code, "")


def _call(
    direction: CallDirection = CallDirection.INBOUND,
) -> tuple[Call, FakeHost, FakeMedia]:
    host = FakeHost()
    call = Call(host, FakeAccount(), direction, "udp")  # type: ignore[arg-type]
    media = FakeMedia()
    call.attach_media(media)  # type: ignore[arg-type]
    return call, host, media


@pytest.mark.parametrize(
    ("direction", "local", "answered", "remote_bye", "cancel", "code", "cause"),
    [
        (CallDirection.INBOUND, True, False, False, None, 486, EndCause.REJECTED),
        (CallDirection.INBOUND, True, True, False, None, 200, EndCause.LOCAL),
        (CallDirection.OUTBOUND, True, False, False, None, 487, EndCause.LOCAL),
        (CallDirection.INBOUND, False, True, True, None, 200, EndCause.BYE),
        (CallDirection.OUTBOUND, False, True, True, None, 200, EndCause.BYE),
        (CallDirection.INBOUND, False, True, False, None, 408, EndCause.FAILED),
        (
            CallDirection.INBOUND,
            False,
            False,
            False,
            200,
            487,
            EndCause.ANSWERED_ELSEWHERE,
        ),
        (CallDirection.INBOUND, False, False, False, 487, 487, EndCause.CANCEL),
        (CallDirection.INBOUND, False, False, False, None, 487, EndCause.CANCEL),
        (CallDirection.INBOUND, False, False, False, None, 500, EndCause.FAILED),
        (CallDirection.OUTBOUND, False, False, False, None, 408, EndCause.FAILED),
        (CallDirection.OUTBOUND, False, False, False, None, 503, EndCause.FAILED),
        (CallDirection.OUTBOUND, False, False, False, None, 486, EndCause.REJECTED),
        (CallDirection.OUTBOUND, False, False, False, None, 404, EndCause.REJECTED),
    ],
)
def test_end_causes_match_the_pjsua2_worker(
    direction: CallDirection,
    local: bool,
    answered: bool,
    remote_bye: bool,
    cancel: int | None,
    code: int,
    cause: EndCause,
) -> None:
    """Each way a call can end gets the cause worker/pjsua2/call.py gives it."""
    call, _, _ = _call(direction)
    call.local_hangup = local
    call.answered = answered
    call.remote_bye = remote_bye
    call.cancel_cause = cancel
    assert call.end_cause(code) is cause


def test_media_requests_need_active_audio() -> None:
    """Before the media is up, play, record and stream are refused as pjsua2 does."""
    call, _, _ = _call()
    requests: list[Callable[[], None]] = [
        lambda: call.play("x.wav"),
        lambda: call.record("x.wav"),
        lambda: call.set_streaming(True),
    ]
    for request in requests:
        with pytest.raises(RequestError) as caught:
            request()
        assert caught.value.code == ErrorCode.NO_ACTIVE_AUDIO
        assert caught.value.message == "the call has no active audio"
    call.set_streaming(False)  # turning off a stream that never ran is harmless


def test_a_broken_file_and_an_unwritable_recording_are_refused() -> None:
    """A file that is no WAV: sip_error; an unwritable or second recording: ValueError.

    (The handlers answer a ValueError from `record` with bad_request.)
    """
    call, host, media = _call()
    call.start_media()
    media.play_error = WavError("not a WAV file")
    with pytest.raises(RequestError) as caught:
        call.play("x.wav")
    assert caught.value.code == ErrorCode.SIP_ERROR
    media.record_error = PermissionError(13, "Permission denied")
    with pytest.raises(ValueError, match="Permission denied"):
        call.record("/x.wav")
    media.record_error = None
    call.record("/tmp/x.wav")
    with pytest.raises(ValueError, match="already being recorded"):
        call.record("/tmp/y.wav")
    media.play_error = None
    call.play("x.wav")
    assert len(host.named(EventName.PLAYBACK_DONE)) == 1


def test_actions_waiting_for_media_run_once_and_failures_stay_inside() -> None:
    """when_media runs at media start; a failing action does not stop the others."""
    call, _, media = _call()
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("broken")

    call.when_media(broken)
    call.when_media(lambda: ran.append("tone"))
    assert not ran
    call.start_media()
    assert media.started
    assert ran == ["tone"]
    call.when_media(lambda: ran.append("now"))
    assert ran == ["tone", "now"]


def test_callbacks_from_media_never_raise() -> None:
    """Audio frames and digits whose events cannot be sent are dropped quietly."""
    call, host, media = _call()
    call.start_media()
    call.set_streaming(True)
    media.stream(b"\x00\x01" * 320, 16000)
    media.on_dtmf("5")
    frames = host.named(EventName.AUDIO)
    assert [frame.seq for frame in frames] == [0]
    assert host.named(EventName.DTMF)[0].method == "rfc4733"
    host.fail_emit = True
    media.stream(b"\x00\x01" * 320, 16000)
    media.on_dtmf("6")
    host.fail_emit = False
    media.stream(b"\x00\x01" * 320, 16000)
    assert [frame.seq for frame in host.named(EventName.AUDIO)] == [0, 2]


def test_the_end_is_reported_even_when_the_media_fails_to_close() -> None:
    """call_state, call_ended and recording_done go out; the call leaves the stack."""
    call, host, media = _call()
    call.start_media()
    call.record("/tmp/rec.wav")
    media.close_error = OSError("socket already closed")
    call.hangup(200)
    assert media.closed
    assert call.ended
    assert not call.has_audio
    ended = host.named(EventName.CALL_ENDED)
    assert [(e.cause, e.code) for e in ended] == [(EndCause.REJECTED, 200)]
    done = host.named(EventName.RECORDING_DONE)
    assert [(d.path, d.duration) for d in done] == [("/tmp/rec.wav", 0.0)]
    assert host.forgotten == [call]
    call.hangup(200)  # a second end changes nothing
    assert len(host.named(EventName.CALL_ENDED)) == 1


def test_a_call_never_announced_ends_silently() -> None:
    """A refused inbound call (never announced) sends no call events at all."""
    call, host, _ = _call()
    call.announced = False
    call.hangup(488)
    assert host.events == []
    assert host.forgotten == [call]


def test_the_stack_provides_what_a_call_needs() -> None:
    """BuiltinStack has every member of CallHost (mypy checks their types here)."""
    stack = BuiltinStack(ProtocolWriter(io.BytesIO()))
    host: CallHost = stack
    members = get_protocol_members(CallHost)
    assert members == {
        "bind_host",
        "calls",
        "transactions",
        "emit",
        "forget_call",
        "target_for",
    }
    for member in members:
        assert hasattr(host, member), member
