"""Inbound calls of the built-in engine driven by a raw SIP peer (RFC 3261, 4028).

What baresip cannot send: Require: 100rel, re-INVITE and UPDATE with a new address,
session timers, INFO DTMF, an INVITE without SDP, an offer with no common codec, a
missing ACK, requests for a dialog that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import (
    EndCause,
    EventName,
    Method,
    WorkerStatus,
)

from .conftest import EXT, confirmed, ended, incoming, register
from .rawpeer import G729_ONLY, RawPeer, sdp

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio
    from tests.worker.client import WorkerClient

    from .conftest import BuiltinWorkerFactory, RawPeerFactory


def _answered_call(worker: WorkerClient, peer: RawPeer, extra: str = "") -> str:
    """Place, answer and acknowledge a call from ``peer``; return its call id."""
    peer.invite(extra)
    call = incoming(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    ok = peer.wait("INVITE")
    assert ok.code == 200
    peer.ack(ok)
    confirmed(worker, call.call_id)
    return call.call_id


def test_require_100rel_is_refused_with_420(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """An INVITE requiring reliable provisionals gets 420 naming 100rel; no call."""
    peer.invite("Require: 100rel\r\nSupported: 100rel\r\n")
    final = peer.wait("INVITE")
    assert final.code == 420
    assert "100rel" in final.header("unsupported")
    peer.ack(final)
    registered.drain(0.3)
    assert not registered.events_named(EventName.INCOMING_CALL)


def test_ring_and_refuse_with_a_code(registered: WorkerClient, peer: RawPeer) -> None:
    """180 carries our To tag, Contact and the Record-Route; `hangup` sends its code."""
    worker = registered
    peer.invite("Record-Route: <sip:127.0.0.1:9;lr>\r\n")
    assert peer.wait("INVITE", code=100).code == 100
    call = incoming(worker)
    assert call.remote_uri == f'"Raw Peer" <sip:9009@127.0.0.1:{peer.local_port}>'
    assert call.display_name == "Raw Peer"
    worker.request(Method.RING, {"call_id": call.call_id})
    ringing = peer.wait("INVITE", code=180)
    assert ";tag=" in ringing.header("to")
    assert ringing.header("contact").startswith("<sip:2040@127.0.0.1:")
    assert ringing.header("record-route") == "<sip:127.0.0.1:9;lr>"
    worker.request(Method.HANGUP, {"call_id": call.call_id, "code": 480})
    final = peer.wait("INVITE")
    assert final.code == 480
    assert not final.header("record-route")
    peer.ack(final)
    end = ended(worker, call.call_id)
    assert (end.cause, end.code, end.answered) == (EndCause.REJECTED, 480, False)
    assert worker.request_error(Method.ANSWER, {"call_id": call.call_id}).code == (
        "unknown_call"
    )


def test_reinvite_update_info_and_options_in_the_dialog(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """re-INVITE and UPDATE are answered with our SDP; RTP follows the new address."""
    worker = registered
    call_id = _answered_call(worker, peer)
    assert peer.rtp_arrives(0)
    # re-INVITE moving our media to the second socket, with a session timer.
    cseq = peer.in_dialog(
        "INVITE",
        extra="Supported: timer\r\nSession-Expires: 1800\r\nMin-SE: 90\r\n",
        body=sdp(peer.rtp_port(1), version=2),
    )
    ok = peer.wait("INVITE")
    assert ok.code == 200
    assert ok.header("cseq") == f"{cseq} INVITE"
    assert ok.header("session-expires") == "1800;refresher=uac"
    assert "timer" in ok.header("require")
    assert "m=audio" in ok.body
    address, port = ok.sdp_address()
    assert address == "127.0.0.1"
    assert port > 0
    peer.ack(ok)
    assert peer.rtp_arrives(1)
    # UPDATE with an offer back to the first socket.
    peer.in_dialog("UPDATE", body=sdp(peer.rtp_port(0), version=3))
    updated = peer.wait("UPDATE")
    assert updated.code == 200
    assert updated.sdp_address() == (address, port)
    assert peer.rtp_arrives(0)
    # A session-timer refresh without SDP.
    peer.in_dialog("UPDATE", extra="Supported: timer\r\nSession-Expires: 1800\r\n")
    assert peer.wait("UPDATE").code == 200
    # A session interval below the minimum, then an offer we cannot take: refused,
    # the call goes on.
    peer.in_dialog("INVITE", extra="Supported: timer\r\nSession-Expires: 30\r\n")
    too_small = peer.wait("INVITE")
    assert (too_small.code, too_small.header("min-se")) == (422, "90")
    peer.ack(too_small)
    peer.in_dialog("INVITE", body=sdp(peer.rtp_port(1), version=4, formats=G729_ONLY))
    refused = peer.wait("INVITE")
    assert refused.code == 488
    peer.ack(refused)
    # A re-INVITE without SDP: our offer in the 200, the answer in the ACK.
    peer.in_dialog("INVITE")
    offer = peer.wait("INVITE")
    assert offer.code == 200
    assert "telephone-event" in offer.body
    peer.ack(offer, body=sdp(peer.rtp_port(1), version=5))
    assert peer.rtp_arrives(1)
    peer.in_dialog("OPTIONS")
    assert peer.wait("OPTIONS").code == 200
    peer.in_dialog("MESSAGE", body="hello", content_type="text/plain")
    not_allowed = peer.wait("MESSAGE")
    assert not_allowed.code == 405
    assert "INVITE" in not_allowed.header("allow")
    for method in (Method.ANSWER, Method.RING):
        error = worker.request_error(method, {"call_id": call_id})
        assert error.code == "sip_error"
    peer.in_dialog("INFO", body="9", content_type="application/dtmf")
    assert peer.wait("INFO").code == 200
    digit = worker.wait_event(EventName.DTMF)
    assert (digit.data["digit"], digit.data["method"]) == ("9", "sip_info")
    # A request with an old CSeq is refused; the call carries on.
    peer.send(
        "INFO", 1, uri=peer.remote_target, body="1", content_type="application/dtmf"
    )
    assert peer.wait("INFO").code == 500
    assert worker.request(Method.STATUS)["calls"] == 1
    peer.in_dialog("BYE")
    assert peer.wait("BYE").code == 200
    end = ended(worker, call_id)
    assert (end.cause, end.answered) == (EndCause.BYE, True)


def test_session_timer_below_90_seconds_is_refused(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """An INVITE asking for a 30 s session interval gets 422 with Min-SE: 90."""
    peer.invite("Supported: timer\r\nSession-Expires: 30\r\n")
    final = peer.wait("INVITE")
    assert final.code == 422
    assert final.header("min-se") == "90"
    peer.ack(final)
    registered.drain(0.3)
    assert not registered.events_named(EventName.INCOMING_CALL)


def test_invite_without_sdp_takes_the_answer_from_the_ack(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """The 200 carries our offer; the ACK's answer starts the media."""
    worker = registered
    peer.invite(body="")
    call = incoming(worker)
    assert worker.request_error(
        Method.STREAM, {"call_id": call.call_id, "enable": True}
    ).code == ("no_active_audio")
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    ok = peer.wait("INVITE")
    assert ok.code == 200
    assert "PCMU" in ok.body
    assert "telephone-event" in ok.body
    peer.ack(ok, body=sdp(peer.rtp_port(1)))
    confirmed(worker, call.call_id)
    assert peer.rtp_arrives(1)
    worker.request(Method.HANGUP, {"call_id": call.call_id})
    peer.accept_bye()
    assert ended(worker, call.call_id).cause == EndCause.LOCAL


def test_offer_without_a_common_codec_is_refused_with_488(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """An offer of G.729 only gets 488, one that does not parse 400: no call."""
    peer.invite(body=sdp(peer.rtp_port(0), formats=G729_ONLY))
    final = peer.wait("INVITE")
    assert final.code == 488
    peer.ack(final)
    garbled = RawPeer(EXT, registered.sip_port)
    try:
        garbled.invite(body="v=0\r\nm=audio notaport RTP/AVP 0\r\n")
        refused = garbled.wait("INVITE")
        assert refused.code == 400
        garbled.ack(refused)
    finally:
        garbled.close()
    registered.drain(0.3)
    assert not registered.events_named(EventName.INCOMING_CALL)
    assert WorkerStatus.from_wire(registered.request(Method.STATUS)).calls == 0


def test_requests_for_an_unknown_dialog_get_481(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """BYE and INFO with a To tag no call has are answered 481."""
    peer.to_header = f"<{peer.request_uri}>;tag=nosuchdialog"
    peer.in_dialog("BYE")
    assert peer.wait("BYE").code == 481
    peer.in_dialog("INFO", body="1", content_type="application/dtmf")
    assert peer.wait("INFO").code == 481


def test_a_missing_ack_ends_the_call_failed(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """The 200 is retransmitted; without an ACK within 64*T1 we send BYE: failed."""
    worker = registered
    peer.invite()
    call = incoming(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    assert peer.count("INVITE", 200, 4.0) >= 3  # at 0, 0.5, 1.5 and 3.5 s
    peer.accept_bye(timeout=40)
    end = ended(worker, call.call_id)
    assert (end.cause, end.answered) == (EndCause.FAILED, False)


def test_calls_past_max_calls_get_486(
    builtin_worker_factory: BuiltinWorkerFactory,
    kamailio: Kamailio,
    raw_peers: RawPeerFactory,
) -> None:
    """With max_calls 1 a second INVITE is answered 486 while the first rings."""
    worker = builtin_worker_factory(max_calls=1)
    register(worker, kamailio)
    first, second = raw_peers(worker.sip_port), raw_peers(worker.sip_port)
    first.invite()
    call = incoming(worker)
    second.invite()
    busy = second.wait("INVITE")
    assert busy.code == 486
    second.ack(busy)
    worker.request(Method.HANGUP, {"call_id": call.call_id, "code": 603})
    assert first.wait("INVITE").code == 603


def test_shutdown_hangs_up_every_call(
    registered: WorkerClient, raw_peers: RawPeerFactory
) -> None:
    """Stopping the worker sends BYE to an answered call and 503 to a ringing one."""
    worker = registered
    answered, ringing = raw_peers(worker.sip_port), raw_peers(worker.sip_port)
    answered_id = _answered_call(worker, answered)
    ringing.invite()
    ringing_call = incoming(worker)
    worker.request(Method.RING, {"call_id": ringing_call.call_id})
    ringing.wait("INVITE", code=180)
    request_id = worker.send(Method.SHUTDOWN)
    answered.accept_bye()
    refused = ringing.wait("INVITE")
    assert refused.code == 503
    ringing.ack(refused)
    assert worker.wait_response(request_id).error is None
    assert ended(worker, answered_id).cause == EndCause.LOCAL
    assert ended(worker, ringing_call.call_id).code == 503
    assert worker.wait_exit() == 0


def test_bye_before_the_answer_ends_the_invite_with_487(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """A BYE in the early dialog gets 200 and the INVITE 487: the caller gave up."""
    worker = registered
    peer.invite()
    call = incoming(worker)
    worker.request(Method.RING, {"call_id": call.call_id})
    ringing = peer.wait("INVITE", code=180)
    peer.to_header = ringing.header("to")
    peer.remote_target = ringing.header("contact").strip("<>")
    peer.in_dialog("BYE")
    assert peer.wait("BYE").code == 200
    final = peer.wait("INVITE")
    assert final.code == 487
    peer.ack(final)
    end = ended(worker, call.call_id)
    assert (end.cause, end.code, end.answered) == (EndCause.CANCEL, 487, False)


def test_bye_before_the_ack_of_our_200_ends_the_call_bye(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """A BYE that overtakes the ACK of our 200 ends the call normally: ``bye``.

    RFC 3261 15 lets the caller send BYE once it has the 2xx; two proxy processes
    (Kamailio's UDP children) can pass the ACK on after it. The BYE gets 200, the
    call was answered (``confirmed``, then ``call_ended`` with cause ``bye``), our
    200 is no longer retransmitted, and the late ACK is absorbed without a word.
    """
    worker = registered
    peer.invite()
    call = incoming(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    ok = peer.wait("INVITE")
    assert ok.code == 200
    peer.to_header = ok.header("to")
    peer.remote_target = ok.header("contact").strip("<>")
    peer.in_dialog("BYE")
    assert peer.wait("BYE").code == 200
    end = ended(worker, call.call_id)
    assert (end.cause, end.code, end.answered) == (EndCause.BYE, 200, True)
    phases = [
        event.data["phase"]
        for event in worker.events_named(EventName.CALL_STATE)
        if event.data["call_id"] == call.call_id
    ]
    assert phases[-2:] == ["confirmed", "disconnected"]
    peer.ack(ok)
    # Our 200 went out at 0 s; unstopped it would come again at 0.5 and 1.5 s.
    assert peer.count("INVITE", 200, 2.0) == 0
    assert not [message for message in peer._inbox if message.method == "BYE"]
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert status.calls == 0


def test_cancel_without_reason_and_after_the_answer(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """CANCEL without Reason ends a call `cancel`; after the 200 it changes nothing."""
    worker = registered
    peer.invite()
    call = incoming(worker)
    peer.send("CANCEL", 1, body="", branch=peer.invite_branch)
    assert peer.wait("CANCEL").code == 200
    final = peer.wait("INVITE")
    assert final.code == 487
    peer.ack(final)
    end = ended(worker, call.call_id)
    assert (end.cause, end.code) == (EndCause.CANCEL, 487)
    # A second call, cancelled too late.
    late = RawPeer(EXT, worker.sip_port)
    try:
        late.invite()
        second = incoming(worker)
        worker.request(Method.ANSWER, {"call_id": second.call_id})
        ok = late.wait("INVITE")
        assert ok.code == 200
        late.send("CANCEL", 1, branch=late.invite_branch)
        assert late.wait("CANCEL").code == 200
        late.ack(ok)
        confirmed(worker, second.call_id)
        assert worker.request(Method.STATUS)["calls"] == 1
        late.in_dialog("BYE")
        assert late.wait("BYE").code == 200
        assert ended(worker, second.call_id).cause == EndCause.BYE
    finally:
        late.close()


def test_an_unusable_answer_in_the_ack_ends_the_call(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """An INVITE without SDP whose ACK answers nothing usable: BYE, ended failed."""
    worker = registered
    peer.invite(body="")
    call = incoming(worker)
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    ok = peer.wait("INVITE")
    peer.ack(ok, body=sdp(peer.rtp_port(0), formats=G729_ONLY))
    peer.accept_bye()
    end = ended(worker, call.call_id)
    assert (end.cause, end.answered, end.code) == (EndCause.FAILED, False, 488)


def test_an_invite_without_contact_is_refused_with_400(
    registered: WorkerClient, peer: RawPeer
) -> None:
    """Without a Contact no dialog can be made: 400, and no call appears."""
    peer.invite_branch = peer.send(
        "INVITE", 1, body=sdp(peer.rtp_port(0)), contact=False
    )
    final = peer.wait("INVITE")
    assert final.code == 400
    peer.ack(final)
    registered.drain(0.3)
    assert not registered.events_named(EventName.INCOMING_CALL)
    assert registered.request(Method.STATUS)["calls"] == 0
