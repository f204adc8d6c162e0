"""Edge paths of a call with fakes around it: refused requests, failing answers, timers.

The fakes (host, account, media) are those of ``test_call_guards``; here the call
also gets in-dialog requests through a fake server transaction that records what
the call answers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import logging
import socket
from typing import TYPE_CHECKING, Any

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallDirection,
    CallPhase,
    EventName,
    Transport,
)
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from custom_components.sip_endpoint.worker.builtin import inbound as inbound_module
from custom_components.sip_endpoint.worker.builtin.call import ALLOW
from custom_components.sip_endpoint.worker.builtin.dialog import Dialog
from custom_components.sip_endpoint.worker.builtin.inbound import InboundCall
from custom_components.sip_endpoint.worker.builtin.media.session import MediaSession
from custom_components.sip_endpoint.worker.builtin.registration.target import (
    Destination,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipRequest,
    SipResponse,
    parse_message,
    parse_uri,
)
from custom_components.sip_endpoint.worker.core.dispatch import RequestError

from .rawpeer import RawPeer
from .test_call_guards import Call, FakeAccount, FakeHost, FakeMedia, _call
from .test_call_release import WatchedStack, _started

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

INBOUND_LOGGER = "custom_components.sip_endpoint.worker.builtin.inbound"
CALL_LOGGER = "custom_components.sip_endpoint.worker.builtin.call"


def _request(method: str, *, seq: int = 2) -> SipRequest:
    text = (
        f"{method} sip:1@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKedge\r\n"
        "From: <sip:9001@127.0.0.1>;tag=peer\r\n"
        "To: <sip:1@127.0.0.1>;tag=ours\r\n"
        "Call-ID: edge-1@127.0.0.1\r\n"
        f"CSeq: {seq} {method}\r\n"
        "Contact: <sip:9001@127.0.0.1:5062>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, SipRequest)
    return message


@dataclass
class FakeTransaction:
    """A server transaction that records the answers (or fails to send them)."""

    request: SipRequest
    failures: int = 0
    answers: list[SipResponse] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)

    def respond(self, response: SipResponse) -> None:
        """Record ``response``; the first ``failures`` answers raise."""
        self.attempts.append(response.status)
        if len(self.attempts) <= self.failures:
            raise OSError("the socket is gone")
        self.answers.append(response)


@dataclass
class FakeTransport:
    """The listening side: one port for every transport."""

    port: int = 5070

    def local_port(self, transport: str) -> int:
        """Return the listening port."""
        del transport
        return self.port


@dataclass
class FakeLayer:
    """The transaction layer as far as Contact is concerned."""

    transport: FakeTransport | None = None


@dataclass
class RoutingHost(FakeHost):
    """A host that turns a resolved destination into itself (no sockets)."""

    def target_for(self, destination: Any) -> Any:
        """Return the destination unchanged."""
        return destination


def _signalling_call(
    *, media: bool = True, transport: str = "udp"
) -> tuple[Call, FakeHost]:
    host = FakeHost(transactions=FakeLayer(FakeTransport()))
    call = Call(host, FakeAccount(), CallDirection.INBOUND, transport)  # type: ignore[arg-type]
    call.local_host = "127.0.0.1"
    if media:
        call.attach_media(FakeMedia())  # type: ignore[arg-type]
    return call, host


def test_an_outbound_call_neither_rings_nor_answers() -> None:
    """Ring and answer belong to inbound calls: anything else answers sip_error."""
    call, _, _ = _call(CallDirection.OUTBOUND)
    with pytest.raises(RequestError) as rung:
        call.ring()
    assert rung.value.code == ErrorCode.SIP_ERROR
    assert rung.value.message == "only an inbound call rings"
    with pytest.raises(RequestError) as answered:
        call.answer()
    assert answered.value.code == ErrorCode.SIP_ERROR
    assert answered.value.message == "only an inbound call is answered"


def test_media_is_not_started_after_the_end_and_a_stream_off_needs_no_media() -> None:
    """An ended call never starts RTP; stopping a stream without media is a no-op."""
    call, host, media = _call()
    call.hangup(200)
    call.start_media()
    assert not media.started
    assert not call.media_up
    assert not call.has_audio
    call.set_streaming(False)
    assert len(host.named(EventName.CALL_ENDED)) == 1


def test_digits_before_the_call_is_announced_are_dropped() -> None:
    """An RFC 4733 digit of a call not yet announced sends no `dtmf` event."""
    call, host, media = _call()
    call.announced = False
    call.start_media()
    media.on_dtmf("7")
    assert host.named(EventName.DTMF) == []
    call.announced = True
    media.on_dtmf("8")
    assert [digit.digit for digit in host.named(EventName.DTMF)] == ["8"]


def test_phases_are_reported_once_and_an_ended_call_is_not_confirmed() -> None:
    """enter() reports a phase once; confirm() after the end changes nothing."""
    call, host, _ = _call()
    call.enter(CallPhase.RINGING)
    call.enter(CallPhase.RINGING)
    assert [s.phase for s in host.named(EventName.CALL_STATE)] == [CallPhase.RINGING]
    call.hangup(486)
    call.confirm()
    assert not call.answered
    assert call.confirmed_at is None
    states = [s.phase for s in host.named(EventName.CALL_STATE)]
    assert states == [CallPhase.RINGING, CallPhase.DISCONNECTED]


def test_contact_brackets_ipv6_names_the_transport_and_has_no_port_unbound() -> None:
    """Contact: [::1] in brackets, ;transport=tcp, and port 0 before the transport."""
    call, host = _signalling_call(transport="tcp")
    call.local_host = "::1"
    contact = call.contact()
    assert "@[::1]:5070" in contact
    assert "transport=tcp" in contact
    host.transactions = FakeLayer(None)
    assert ":5070" not in call.contact()


def test_an_unbound_stack_takes_the_address_of_the_route(socket_enabled: None) -> None:
    """Bound to 0.0.0.0, the address toward a loopback peer is the loopback one."""
    call, host = _signalling_call()
    host.bind_host = "0.0.0.0"
    assert call._choose_local_host("127.0.0.1") == "127.0.0.1"
    host.bind_host = "127.0.0.5"
    assert call._choose_local_host("127.0.0.1") == "127.0.0.5"


@pytest.mark.parametrize(
    ("uri", "transport", "expected"),
    [
        ("sip:9001@127.0.0.1:5062;transport=sctp", "tcp", Transport.TCP),
        ("sip:9001@127.0.0.1:5062;transport=auto", "udp", Transport.UDP),
        ("sip:9001@127.0.0.1:5062", "tls", Transport.TLS),
    ],
)
async def test_next_hop_transport_falls_back_to_the_calls(
    uri: str, transport: str, expected: Transport
) -> None:
    """An unknown ;transport= is the call's; auto becomes UDP."""
    host = RoutingHost()
    call = Call(host, FakeAccount(), CallDirection.OUTBOUND, transport)  # type: ignore[arg-type]
    target: Any = await call._target_for(parse_uri(uri))
    assert target == Destination(expected, "127.0.0.1", "127.0.0.1", 5062)


async def test_nothing_is_sent_in_a_dialog_that_does_not_exist() -> None:
    """send_in_dialog without a dialog sends nothing and answers None."""
    call, _ = _signalling_call()
    assert call.dialog is None
    assert await call.send_in_dialog("INFO") is None


def test_cancel_of_a_call_with_nothing_to_cancel_gets_200() -> None:
    """A CANCEL reaching the shared handler is answered 200 and ends nothing."""
    call, host = _signalling_call()
    transaction = FakeTransaction(_request("CANCEL"))
    call.handle_request(transaction.request, None, transaction)  # type: ignore[arg-type]
    assert [a.status for a in transaction.answers] == [200]
    assert not call.ended
    assert host.named(EventName.CALL_ENDED) == []


def test_an_offer_to_a_call_without_media_gets_500() -> None:
    """A re-INVITE to a call whose media is gone is answered 500."""
    call, _ = _signalling_call(media=False)
    transaction = FakeTransaction(_request("INVITE"))
    call.handle_request(transaction.request, None, transaction)  # type: ignore[arg-type]
    assert [a.status for a in transaction.answers] == [500]
    assert not call.ended


def test_an_update_without_sdp_outside_a_dialog_gets_200_with_our_contact() -> None:
    """UPDATE with no body: 200 without SDP, carrying Contact, Allow, Supported."""
    call, _ = _signalling_call()
    transaction = FakeTransaction(_request("UPDATE"))
    call.handle_request(transaction.request, None, transaction)  # type: ignore[arg-type]
    [answer] = transaction.answers
    assert answer.status == 200
    assert answer.body == b""
    assert answer.headers.get("Contact") == call.contact()
    assert answer.headers.get("Allow") == ALLOW


def test_an_unknown_method_gets_405_with_allow() -> None:
    """A MESSAGE inside the call is answered 405 naming what is allowed."""
    call, _ = _signalling_call()
    transaction = FakeTransaction(_request("MESSAGE"))
    call.handle_request(transaction.request, None, transaction)  # type: ignore[arg-type]
    [answer] = transaction.answers
    assert answer.status == 405
    assert answer.headers.get("Allow") == ALLOW


def test_a_failing_answer_becomes_500_and_a_failing_500_stays_inside(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When answering fails the call tries 500; when that fails too, nothing raises."""
    call, _ = _signalling_call()
    once = FakeTransaction(_request("INFO"), failures=1)
    with caplog.at_level(logging.DEBUG, CALL_LOGGER):
        call.handle_request(once.request, None, once)  # type: ignore[arg-type]
    assert once.attempts == [200, 500]
    assert [a.status for a in once.answers] == [500]
    assert "Handling INFO failed" in caplog.text
    always = FakeTransaction(_request("INFO", seq=3), failures=2)
    with caplog.at_level(logging.DEBUG, CALL_LOGGER):
        call.handle_request(always.request, None, always)  # type: ignore[arg-type]
    assert always.attempts == [200, 500]
    assert always.answers == []
    assert "Answering 500 failed" in caplog.text
    assert not call.ended


def test_an_ack_for_nothing_pending_is_ignored() -> None:
    """A retransmitted ACK (no 2xx waiting for it) neither answers nor ends."""
    call, host = _signalling_call()
    call.handle_request(_request("ACK"), None, None)  # type: ignore[arg-type]
    assert not call.ended
    assert host.events == []


async def test_an_unusable_ack_ends_the_call_with_488() -> None:
    """acked(usable=False): the call ends 488 (its BYE has no dialog to go in)."""
    call, host = _signalling_call()
    call.acked(_request("ACK"), usable=False)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert call.ended
    [end] = host.named(EventName.CALL_ENDED)
    assert (end.code, end.reason) == (488, "Not Acceptable Here")


async def test_timers_skip_an_ended_call_and_keep_their_failures_inside(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing timer action is logged; a timer of an ended call does not run."""
    call, _ = _signalling_call()
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("broken timer")

    with caplog.at_level(logging.ERROR, CALL_LOGGER):
        call.call_later(0, broken)
        call.call_later(0, lambda: ran.append("before"))
        await asyncio.sleep(0.01)
    assert ran == ["before"]
    assert "Call callback failed" in caplog.text
    call.call_later(0, lambda: ran.append("after"))
    call.hangup(200)
    await asyncio.sleep(0.01)
    assert ran == ["before"]


async def test_a_background_task_that_fails_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """spawn() logs the failure of its task instead of losing it."""
    call, _ = _signalling_call()
    done = asyncio.Event()

    async def failing() -> None:
        done.set()
        raise RuntimeError("task broke")

    with caplog.at_level(logging.ERROR, CALL_LOGGER):
        call.spawn(failing())
        await done.wait()
        await asyncio.sleep(0)
    assert "Call task failed" in caplog.text


def _dialog(route_set: list[str]) -> Dialog:
    return Dialog.as_uac(
        call_id="edge-1@127.0.0.1",
        local_tag="ours",
        local_uri="<sip:1@127.0.0.1>",
        remote_uri="<sip:9001@127.0.0.1>",
        target=parse_uri("sip:9001@127.0.0.1:5062"),
        route_set=route_set,
    )


def test_a_route_that_does_not_parse_leaves_the_remote_target() -> None:
    """An unparsable first Route: requests go to the remote target, Route kept."""
    dialog = _dialog(["not a name-addr <<"])
    uri, routes = dialog.request_target()
    assert str(uri) == "sip:9001@127.0.0.1:5062"
    assert routes == ["not a name-addr <<"]
    assert str(dialog.next_hop()) == "sip:9001@127.0.0.1:5062"


def test_a_response_without_to_tag_does_not_fix_the_dialog() -> None:
    """A provisional without a To tag leaves the remote tag unset."""
    dialog = _dialog([])
    text = (
        "SIP/2.0 100 Trying\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKedge\r\n"
        "From: <sip:1@127.0.0.1>;tag=ours\r\n"
        "To: <sip:9001@127.0.0.1>\r\n"
        "Call-ID: edge-1@127.0.0.1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:9001@10.9.9.9:5099>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    response = parse_message(text.encode())
    assert isinstance(response, SipResponse)
    dialog.confirm_uac(response)
    assert dialog.remote_tag is None
    assert str(dialog.remote_target) == "sip:9001@127.0.0.1:5062"


@pytest.fixture
async def stack_and_peer(
    socket_enabled: None,
) -> AsyncIterator[tuple[WatchedStack, RawPeer]]:
    """Return a started in-process stack and a raw peer calling its extension 2040."""
    stack, _ = await _started()
    peer = RawPeer("2040", stack.sip_port)
    try:
        yield stack, peer
    finally:
        peer.close()
        await stack.close()


def _event_names(stack: WatchedStack) -> list[EventName]:
    """Take every event the stack queued; return their names."""
    names = []
    while not stack.events.empty():
        names.append(stack.events.get_nowait()[0])
    return names


async def test_an_inbound_call_without_an_rtp_port_is_refused_500(
    stack_and_peer: tuple[WatchedStack, RawPeer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No RTP port for an INVITE: 500, a warning, and no `incoming_call`."""

    async def no_port(*args: Any, **kwargs: Any) -> MediaSession:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(MediaSession, "open", no_port)
    stack, peer = stack_and_peer
    with caplog.at_level(logging.WARNING, INBOUND_LOGGER):
        await asyncio.to_thread(peer.invite)
        final = await asyncio.to_thread(peer.wait, "INVITE")
    assert final.code == 500
    await asyncio.to_thread(peer.ack, final)
    assert "No RTP port for a call" in caplog.text
    await stack.wait_until(lambda: not stack.calls, 5)
    assert not stack.calls
    names = _event_names(stack)
    assert EventName.INCOMING_CALL not in names
    assert EventName.CALL_ENDED not in names


async def test_a_call_cancelled_while_its_rtp_port_opens_closes_the_port(
    stack_and_peer: tuple[WatchedStack, RawPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CANCEL before the media is ready: 200, 487; the port opened late is closed."""
    gate = asyncio.Event()
    opened: list[MediaSession] = []
    real_open = MediaSession.open

    async def slow_open(*args: Any, **kwargs: Any) -> MediaSession:
        await gate.wait()
        session = await real_open(*args, **kwargs)
        opened.append(session)
        return session

    monkeypatch.setattr(MediaSession, "open", slow_open)
    stack, peer = stack_and_peer
    await asyncio.to_thread(peer.invite)
    await stack.wait_until(lambda: bool(stack.calls), 5)
    [call] = stack.calls.values()
    assert isinstance(call, InboundCall)
    await asyncio.to_thread(peer.send, "CANCEL", 1, body="", branch=peer.invite_branch)
    assert (await asyncio.to_thread(peer.wait, "CANCEL")).code == 200
    final = await asyncio.to_thread(peer.wait, "INVITE")
    assert final.code == 487
    await asyncio.to_thread(peer.ack, final)
    assert call.ended
    gate.set()
    await stack.wait_until(lambda: bool(opened), 5)
    assert opened[0]._closed
    assert call.media is None
    call.hangup(486)  # an ended call is not refused again
    names = _event_names(stack)
    assert EventName.INCOMING_CALL not in names


def test_info_without_a_digit_changes_nothing() -> None:
    """INFO with no digit in it: 200 and no `dtmf`."""
    call, host = _signalling_call(media=False)
    transaction = FakeTransaction(_request("INFO"))
    call.handle_request(transaction.request, None, transaction)  # type: ignore[arg-type]
    assert [answer.status for answer in transaction.answers] == [200]
    assert host.named(EventName.DTMF) == []
    assert call.media is None
    assert not call.ended


def refuse_invalid_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make lookups of ``*.invalid`` fail at once, without asking any DNS server.

    The tests only talk to loopback; a name lookup could leave the machine.
    """
    real = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def getaddrinfo(
        self: asyncio.base_events.BaseEventLoop, host: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real(self, host, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)


async def test_a_bug_while_setting_up_an_inbound_call_answers_500(
    stack_and_peer: tuple[WatchedStack, RawPeer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever fails while an INVITE is set up: logged, answered 500, not announced."""

    def broken(request: SipRequest) -> Any:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(inbound_module, "answer_session_timer", broken)
    stack, peer = stack_and_peer
    with caplog.at_level(logging.ERROR, INBOUND_LOGGER):
        await asyncio.to_thread(peer.invite)
        final = await asyncio.to_thread(peer.wait, "INVITE")
    assert final.code == 500
    await asyncio.to_thread(peer.ack, final)
    assert "Setting up an inbound call failed" in caplog.text
    await stack.wait_until(lambda: not stack.calls, 5)
    assert not stack.calls
