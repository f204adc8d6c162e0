"""Dialog state, session timers and SIP INFO digits (pure functions, no network)."""

from __future__ import annotations

import pytest

from custom_components.sip_endpoint.worker.builtin.dialog import Dialog
from custom_components.sip_endpoint.worker.builtin.info_dtmf import info_digit
from custom_components.sip_endpoint.worker.builtin.session_timer import (
    MIN_SE,
    answer_session_timer,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    parse_message,
    parse_uri,
)


def _request(text: str, body: bytes = b"") -> SipRequest:
    message = parse_message(text.replace("\n", "\r\n").encode() + body)
    assert isinstance(message, SipRequest)
    return message


def _response(text: str) -> SipResponse:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, SipResponse)
    return message


INVITE = """INVITE sip:2030@10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKabc
Record-Route: <sip:10.0.0.5;lr;ftag=x>
Record-Route: <sip:10.0.0.6;lr>
From: "Front door" <sip:9001@pbx>;tag=peer
To: <sip:2030@pbx>
Call-ID: call-1@10.0.0.9
CSeq: 7 INVITE
Contact: <sip:9001@10.0.0.9:5062>
Content-Length: 0

"""


def test_uas_dialog_from_an_invite() -> None:
    """Tags, URIs, the remote target, the route set and the CSeq come from the INVITE."""
    dialog = Dialog.as_uas(_request(INVITE), "ours")
    assert dialog.call_id == "call-1@10.0.0.9"
    assert dialog.remote_tag == "peer"
    assert dialog.local_tag == "ours"
    assert dialog.remote_uri == '"Front door" <sip:9001@pbx>'
    assert dialog.local_uri == "<sip:2030@pbx>"
    assert str(dialog.remote_target) == "sip:9001@10.0.0.9:5062"
    assert dialog.route_set == ["<sip:10.0.0.5;lr;ftag=x>", "<sip:10.0.0.6;lr>"]
    assert dialog.remote_cseq == 7
    bye = dialog.request("BYE", via="SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx")
    assert str(bye.uri) == "sip:9001@10.0.0.9:5062"
    assert bye.headers.get_all("route") == [
        "<sip:10.0.0.5;lr;ftag=x>",
        "<sip:10.0.0.6;lr>",
    ]
    assert bye.headers.items()[0][0] == "Via"
    assert bye.from_addr.tag == "ours"
    assert bye.to_addr.tag == "peer"
    assert bye.cseq.method == "BYE"
    assert str(dialog.next_hop()) == "sip:10.0.0.5;lr;ftag=x"


def test_uas_dialog_needs_a_contact() -> None:
    """An INVITE without Contact cannot make a dialog (the caller answers 400)."""
    text = INVITE.replace("Contact: <sip:9001@10.0.0.9:5062>\n", "")
    with pytest.raises(SipParseError):
        Dialog.as_uas(_request(text), "ours")


def test_requests_match_by_call_id_and_both_tags() -> None:
    """Only a request with our Call-ID, our tag in To and theirs in From matches."""
    dialog = Dialog.as_uas(_request(INVITE), "ours")
    bye = """BYE sip:2030@10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKdef
From: <sip:9001@pbx>;tag={from_tag}
To: <sip:2030@pbx>;tag={to_tag}
Call-ID: {call_id}
CSeq: 8 BYE
Content-Length: 0

"""
    good = {"from_tag": "peer", "to_tag": "ours", "call_id": "call-1@10.0.0.9"}
    assert dialog.matches(_request(bye.format(**good)))
    for key, value in (("from_tag", "x"), ("to_tag", "x"), ("call_id", "other")):
        assert not dialog.matches(_request(bye.format(**(good | {key: value}))))


def test_cseq_going_backwards_is_refused() -> None:
    """A lower CSeq than the last one is refused; ACK and CANCEL always pass."""
    dialog = Dialog.as_uas(_request(INVITE), "ours")

    def request(method: str, seq: int) -> SipRequest:
        text = INVITE.replace("INVITE sip", f"{method} sip")
        return _request(text.replace("CSeq: 7 INVITE", f"CSeq: {seq} {method}"))

    assert dialog.accept_cseq(request("INFO", 8))
    assert not dialog.accept_cseq(request("INFO", 6))
    assert dialog.accept_cseq(request("ACK", 7))
    assert dialog.accept_cseq(request("BYE", 9))
    assert dialog.remote_cseq == 9


def test_strict_route_puts_the_target_last() -> None:
    """A first route without ;lr becomes the Request-URI (RFC 3261 12.2.1.1)."""
    text = INVITE.replace("<sip:10.0.0.5;lr;ftag=x>", "<sip:10.0.0.5>")
    dialog = Dialog.as_uas(_request(text), "ours")
    bye = dialog.request("BYE")
    assert str(bye.uri) == "sip:10.0.0.5"
    assert bye.headers.get_all("route") == [
        "<sip:10.0.0.6;lr>",
        "<sip:9001@10.0.0.9:5062>",
    ]
    assert str(dialog.next_hop()) == "sip:10.0.0.5"


def _our_dialog(route_set: tuple[str, ...] = ()) -> Dialog:
    """Return the dialog of our INVITE from 2030 to 9001@pbx (Call-ID c@h, tag me)."""
    return Dialog.as_uac(
        call_id="c@h",
        local_tag="me",
        local_uri="<sip:2030@pbx>",
        remote_uri="<sip:9001@pbx>",
        target=parse_uri("sip:9001@pbx"),
        route_set=route_set,
    )


def test_uac_dialog_takes_the_answer() -> None:
    """Our INVITE's dialog takes the To tag, Contact and reversed Record-Route."""
    dialog = _our_dialog(("<sip:proxy;lr>",))
    early = dialog.established
    invite = dialog.request("INVITE", contact="<sip:2030@10.0.0.1:5070>")
    assert str(invite.uri) == "sip:9001@pbx"
    assert invite.headers.get_all("route") == ["<sip:proxy;lr>"]
    assert invite.to_addr.tag is None
    ok = _response("""SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx
Record-Route: <sip:10.0.0.6;lr>
Record-Route: <sip:10.0.0.5;lr>
From: <sip:2030@pbx>;tag=me
To: <sip:9001@pbx>;tag=them
Call-ID: c@h
CSeq: 2 INVITE
Contact: <sip:9001@10.0.0.9:5062>
Content-Length: 0

""")
    dialog.confirm_uac(ok)
    assert not early
    assert dialog.established
    assert dialog.remote_tag == "them"
    assert str(dialog.remote_target) == "sip:9001@10.0.0.9:5062"
    assert dialog.route_set == ["<sip:10.0.0.5;lr>", "<sip:10.0.0.6;lr>"]
    ack = dialog.request("ACK", cseq=invite.cseq.seq)
    assert ack.cseq.seq == invite.cseq.seq
    assert ack.to_addr.tag == "them"
    bye = dialog.request("BYE")
    assert bye.cseq.seq == invite.cseq.seq + 1


def test_an_answer_without_contact_keeps_the_request_uri() -> None:
    """A 2xx lacking Contact still makes the dialog; requests go to the R-URI."""
    dialog = _our_dialog()
    dialog.confirm_uac(
        _response(
            "SIP/2.0 200 OK\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx\n"
            "From: <sip:2030@pbx>;tag=me\n"
            "To: <sip:9001@pbx>;tag=them\n"
            "Call-ID: c@h\n"
            "CSeq: 2 INVITE\n"
            "Content-Length: 0\n\n"
        )
    )
    assert dialog.remote_tag == "them"
    assert str(dialog.request("BYE").uri) == "sip:9001@pbx"


def _with_timer(headers: str) -> SipRequest:
    return _request(
        INVITE.replace("Content-Length: 0\n", f"{headers}Content-Length: 0\n")
    )


def test_session_timer_is_echoed_with_the_refresher() -> None:
    """Session-Expires comes back with the peer's refresher, or uac when left open."""
    answer = answer_session_timer(
        _with_timer("Supported: timer\nSession-Expires: 1800;refresher=uas\n")
    )
    assert not answer.too_small
    assert ("Session-Expires", "1800;refresher=uas") in answer.headers
    assert ("Require", "timer") in answer.headers
    answer = answer_session_timer(_with_timer("Supported: timer\nx: 600\n"))
    assert ("Session-Expires", "600;refresher=uac") in answer.headers


def test_session_timer_below_the_minimum_is_refused() -> None:
    """Below 90 s the answer is 422 with Min-SE; without Session-Expires nothing."""
    answer = answer_session_timer(
        _with_timer("Supported: timer\nSession-Expires: 30\n")
    )
    assert answer.too_small
    assert answer.headers == (("Min-SE", str(MIN_SE)),)
    assert answer_session_timer(_request(INVITE)).headers == ()
    # A peer that does not support timers gets none.
    assert answer_session_timer(_with_timer("Session-Expires: 1800\n")).headers == ()
    # Garbage is ignored, not refused.
    assert not answer_session_timer(_with_timer("Session-Expires: soon\n")).too_small


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"signal= #\r\n", "#"),
        ("application/dtmf-relay", b"Signal=10\r\n", "*"),
        ("application/dtmf", b"7", "7"),
        ("application/dtmf", b"a", "A"),
        ("application/dtmf-relay", b"Signal=X\r\n", None),
        ("application/dtmf-relay", b"Duration=160\r\n", None),
        ("text/plain", b"Signal=5", None),
        ("application/dtmf", b"5" * 2000, None),
    ],
)
def test_info_digits(content_type: str, body: bytes, digit: str | None) -> None:
    """SIP INFO bodies give their digit; anything else gives none."""
    text = (
        INVITE.replace("INVITE sip", "INFO sip")
        .replace("CSeq: 7 INVITE", "CSeq: 8 INFO")
        .replace("Content-Length: 0\n", f"Content-Type: {content_type}\n")
    )
    assert info_digit(_request(text + "", body)) == digit
