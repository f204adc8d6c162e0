"""Outbound calls of the built-in engine answered by a raw SIP peer (RFC 3261 13.2).

The worker calls the peer's address directly; the peer answers what a real phone
rarely does on cue: a retransmitted 2xx, a digest challenge, no provisional before
the timeout.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallStarted,
    EndCause,
    EventName,
    Method,
)
from tests.sipbed.audio import write_tone
from tests.sipbed.netutil import free_port
from tests.worker.client import account_params

from .conftest import EXT, EXT_ID, confirmed, ended
from .rawpeer import G729_ONLY, Message, RawPeer, sdp

if TYPE_CHECKING:
    from pathlib import Path

    from tests.worker.client import WorkerClient

    from .conftest import BuiltinWorkerFactory, RawPeerFactory


@pytest.fixture
def callee(registered: WorkerClient, raw_peers: RawPeerFactory) -> RawPeer:
    """Return a raw peer the worker can call (its answers go to the worker's port)."""
    return raw_peers(registered.sip_port)


def _call(worker: WorkerClient, callee: RawPeer, **params: object) -> str:
    target = f"sip:9009@127.0.0.1:{callee.local_port}"
    result = worker.request(
        Method.MAKE_CALL, {"account_id": EXT_ID, "target": target, **params}
    )
    return CallStarted.from_wire(result).call_id


def _contact(callee: RawPeer) -> str:
    return f"Contact: <sip:9009@127.0.0.1:{callee.local_port}>\r\n"


def _branch(message_via: str) -> str:
    match = re.search(r";branch=([^;]+)", message_via)
    assert match is not None
    return match.group(1)


def test_answered_call_acks_every_2xx_and_plays(
    registered: WorkerClient, callee: RawPeer, tmp_path: Path
) -> None:
    """The 2xx is acknowledged, again when retransmitted; the file plays, then BYE."""
    worker = registered
    tone = write_tone(tmp_path / "announce.wav", 440.0, 2.0)
    call_id = _call(worker, callee, play=str(tone))
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == call_id and d["phase"] == "calling",
    )
    invite = callee.wait("INVITE", request=True)
    assert invite.start.startswith(f"INVITE sip:9009@127.0.0.1:{callee.local_port} ")
    assert "2040@" in invite.header("from")
    assert "PCMU" in invite.body
    assert invite.header("contact").startswith("<sip:2040@127.0.0.1:")
    callee.respond(invite, 180, "Ringing", tag="callee", extra=_contact(callee))
    callee.answer(invite, "callee")
    ack = callee.wait("ACK", request=True)
    assert ack.start.startswith(f"ACK sip:9009@127.0.0.1:{callee.local_port} ")
    assert ack.header("to").endswith(";tag=callee")
    assert ack.header("cseq").split()[0] == invite.header("cseq").split()[0]
    confirmed(worker, call_id)
    # The 200 again (as if the ACK was lost): acknowledged again.
    callee.answer(invite, "callee")
    again = callee.wait("ACK", request=True)
    assert again.header("cseq") == ack.header("cseq")
    assert callee.rtp_arrives(0)
    bye = callee.wait("BYE", request=True, timeout=10)
    assert bye.header("to").endswith(";tag=callee")
    callee.respond(bye, 200)
    end = ended(worker, call_id)
    assert (end.cause, end.answered) == (EndCause.LOCAL, True)
    assert not worker.events_named(EventName.PLAYBACK_DONE)


def test_a_second_forked_answer_is_acked_and_hung_up(
    registered: WorkerClient, callee: RawPeer, tmp_path: Path
) -> None:
    """A 2xx with another To tag (a fork) gets its ACK and a BYE; the call goes on."""
    worker = registered
    tone = write_tone(tmp_path / "announce.wav", 440.0, 2.0)
    call_id = _call(worker, callee, play=str(tone))
    invite = callee.wait("INVITE", request=True)
    callee.answer(invite, "first")
    first_ack = callee.wait("ACK", request=True)
    assert first_ack.header("to").endswith(";tag=first")
    confirmed(worker, call_id)
    callee.answer(invite, "second")
    second_ack = callee.wait("ACK", request=True)
    assert second_ack.header("to").endswith(";tag=second")
    # Retransmitted, the fork's 2xx is acknowledged again (and hung up only once).
    callee.answer(invite, "second")
    again = callee.wait("ACK", request=True)
    assert again.header("to").endswith(";tag=second")
    bye = callee.wait("BYE", request=True)
    assert bye.header("to").endswith(";tag=second")
    callee.respond(bye, 200)
    assert worker.request(Method.STATUS)["calls"] == 1
    final_bye = callee.wait("BYE", request=True, timeout=10)
    assert final_bye.header("to").endswith(";tag=first")
    callee.respond(final_bye, 200)
    assert ended(worker, call_id).answered


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_digest_challenge_is_answered_once(
    registered: WorkerClient, callee: RawPeer
) -> None:
    """A 401 gets one new INVITE with a correct digest (qop=auth), a second none."""
    worker = registered
    call_id = _call(worker, callee)
    first = callee.wait("INVITE", request=True)
    challenge = (
        'WWW-Authenticate: Digest realm="raw", nonce="n0nce", qop="auth",'
        " algorithm=MD5\r\n"
    )
    callee.respond(first, 401, "Unauthorized", tag="a", extra=challenge)
    callee.wait("ACK", request=True)  # the transaction acknowledges the 401
    first_cseq = _cseq(first)
    second = callee.wait("INVITE", request=True, where=lambda m: _cseq(m) > first_cseq)
    assert second.header("call-id") == first.header("call-id")
    assert _branch(second.header("via")) != _branch(first.header("via"))
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', second.header("authorization")))
    assert fields["username"] == EXT
    assert fields["realm"] == "raw"
    assert fields["qop"] == "auth"
    ha1 = _md5(f"{EXT}:raw:pw-{EXT}")
    ha2 = _md5(f"INVITE:{fields['uri']}")
    expected = _md5(f"{ha1}:n0nce:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
    assert fields["response"] == expected
    # Challenged again: the credentials are wrong; no third INVITE, the call ends.
    callee.respond(second, 401, "Unauthorized", tag="b", extra=challenge)
    end = ended(worker, call_id)
    assert (end.cause, end.code, end.answered) == (EndCause.REJECTED, 401, False)
    second_cseq = _cseq(second)
    with pytest.raises(AssertionError):
        callee.wait(
            "INVITE",
            request=True,
            timeout=0.5,
            where=lambda m: _cseq(m) > second_cseq,
        )


def _cseq(message: Message) -> int:
    return int(message.header("cseq").split()[0])


def test_timeout_cancels_after_a_provisional_only(
    registered: WorkerClient, callee: RawPeer
) -> None:
    """No CANCEL before a provisional (RFC 3261 9.1); then CANCEL and its 487."""
    worker = registered
    call_id = _call(worker, callee, timeout=1)
    invite = callee.wait("INVITE", request=True)
    with pytest.raises(AssertionError):
        callee.wait("CANCEL", request=True, timeout=1.5)
    callee.respond(invite, 180, "Ringing", tag="late")
    cancel = callee.wait("CANCEL", request=True)
    assert _branch(cancel.header("via")) == _branch(invite.header("via"))
    assert _cseq(cancel) == _cseq(invite)
    assert cancel.start.split()[1] == invite.start.split()[1]
    callee.respond(cancel, 200)
    callee.respond(invite, 487, "Request Terminated", tag="late")
    callee.wait("ACK", request=True)
    end = ended(worker, call_id)
    assert (end.cause, end.code, end.answered) == (EndCause.LOCAL, 487, False)


def test_outbound_proxy_and_record_route_carry_the_dialog(
    builtin_worker_factory: BuiltinWorkerFactory, raw_peers: RawPeerFactory
) -> None:
    """The INVITE goes to the proxy with its Route; ACK and BYE follow Record-Route."""
    worker = builtin_worker_factory()
    silent_port = free_port("127.0.0.1")
    proxy = raw_peers(worker.sip_port)
    route = f"<sip:127.0.0.1:{proxy.local_port};lr>"
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            "2041",
            "127.0.0.1",
            silent_port,
            outbound_proxy=f"127.0.0.1:{proxy.local_port}",
        ),
    )
    started = worker.request(
        Method.MAKE_CALL, {"account_id": "ext-2041", "target": "9001"}
    )
    call_id = CallStarted.from_wire(started).call_id
    invite = proxy.wait("INVITE", request=True)
    assert invite.start == f"INVITE sip:9001@127.0.0.1:{silent_port} SIP/2.0"
    assert invite.header("route") == route
    far_end = "sip:9001@127.0.0.1:9"  # never reached: everything goes via Route
    proxy.respond(
        invite,
        200,
        tag="far",
        extra=f"Record-Route: {route}\r\nContact: <{far_end}>\r\n",
        body=sdp(proxy.rtp_port(0)),
    )
    ack = proxy.wait("ACK", request=True)
    assert ack.start == f"ACK {far_end} SIP/2.0"
    assert ack.header("route") == route
    bye = proxy.wait("BYE", request=True)  # nothing to play: hung up at once
    assert bye.start == f"BYE {far_end} SIP/2.0"
    assert bye.header("route") == route
    proxy.respond(bye, 200)
    end = ended(worker, call_id)
    assert (end.cause, end.answered) == (EndCause.LOCAL, True)


def test_an_unusable_answer_is_hung_up(
    registered: WorkerClient, callee: RawPeer
) -> None:
    """A 200 whose SDP has no codec of ours is ACKed, then BYE: rejected 488."""
    worker = registered
    call_id = _call(worker, callee)
    invite = callee.wait("INVITE", request=True)
    g729 = sdp(callee.rtp_port(0), formats=G729_ONLY)
    callee.answer(invite, "odd", g729)
    callee.wait("ACK", request=True)
    callee.accept_bye()
    end = ended(worker, call_id)
    assert (end.cause, end.code, end.answered) == (EndCause.REJECTED, 488, False)
    error = worker.request_error(
        Method.MAKE_CALL, {"account_id": EXT_ID, "target": "tel:+4930123456"}
    )
    assert error.code == "bad_request"


def test_a_200_crossing_our_cancel_is_acked_and_hung_up(
    registered: WorkerClient, callee: RawPeer
) -> None:
    """The callee answers while our CANCEL is on its way: ACK, then BYE; ended local."""
    worker = registered
    call_id = _call(worker, callee, timeout=1)
    invite = callee.wait("INVITE", request=True)
    callee.respond(invite, 180, "Ringing", tag="racer", extra=_contact(callee))
    cancel = callee.wait("CANCEL", request=True)
    callee.answer(invite, "racer", sdp(9000))
    callee.respond(cancel, 200)
    callee.wait("ACK", request=True)
    bye = callee.wait("BYE", request=True)
    assert bye.header("to").endswith(";tag=racer")
    callee.respond(bye, 200)
    end = ended(worker, call_id)
    assert (end.cause, end.answered) == (EndCause.LOCAL, False)


def test_a_challenged_bye_is_sent_again_with_credentials(
    registered: WorkerClient, callee: RawPeer
) -> None:
    """A proxy's 407 to our BYE gets one BYE more, with Proxy-Authorization."""
    worker = registered
    call_id = _call(worker, callee)
    invite = callee.wait("INVITE", request=True)
    callee.answer(invite, "auth")
    callee.wait("ACK", request=True)
    bye = callee.wait("BYE", request=True)  # nothing to play: hung up at once
    assert (end := ended(worker, call_id)).cause == EndCause.LOCAL
    assert end.answered
    callee.respond(
        bye,
        407,
        "Proxy Authentication Required",
        extra='Proxy-Authenticate: Digest realm="proxy", nonce="b1"\r\n',
    )
    bye_cseq = _cseq(bye)
    again = callee.wait("BYE", request=True, where=lambda m: _cseq(m) > bye_cseq)
    fields = dict(
        re.findall(r'(\w+)="?([^",]*)"?', again.header("proxy-authorization"))
    )
    assert (fields["username"], fields["realm"], fields["nonce"]) == (
        EXT,
        "proxy",
        "b1",
    )
    ha1 = _md5(f"{EXT}:proxy:pw-{EXT}")
    assert fields["response"] == _md5(f"{ha1}:b1:{_md5('BYE:' + fields['uri'])}")
    callee.respond(again, 200)
