"""The RFC 4475 torture messages against the built-in parser and UDP transport.

Valid messages (RFC 4475 3.1.1, and the 3.2-3.4 ones that are syntactically fine) must
parse, with the fields the RFC's discussion points at. Invalid ones (3.1.2, 3.3.1,
3.3.8, 3.3.9 and the unknown Request-URI schemes) are refused with ``SipParseError``;
where the RFC asks an element to answer (400, 505 or 416), the transport answers with
that code, and where it asks to drop (responses, a request without the headers a
response copies) nothing is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import re
import socket
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    parse_message,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    SipTransportLayer,
    Source,
)

from .torture import MESSAGES, SECTIONS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator

HOST = "127.0.0.1"

Check = Callable[[SipRequest | SipResponse], None]


def _request(message: SipRequest | SipResponse) -> SipRequest:
    assert isinstance(message, SipRequest)
    return message


def _response(message: SipRequest | SipResponse) -> SipResponse:
    assert isinstance(message, SipResponse)
    return message


def check_wsinv(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.method == "INVITE"
    assert (request.uri.user, request.uri.host) == ("vivekg", "chair-dnrc.example.com")
    assert "unknownparam" in request.uri.params
    assert request.to_addr.tag == "1918181833n"
    assert request.from_addr.tag == "98asjd8"
    assert request.from_addr.display_name == 'J Rosenberg \\"'
    assert request.max_forwards == 68
    assert (request.cseq.seq, request.cseq.method) == (9, "INVITE")
    vias = request.vias
    assert [(via.transport, via.host) for via in vias] == [
        ("UDP", "192.0.2.2"),
        ("TCP", "spindle.example.com"),
        ("UDP", "192.168.255.111"),
    ]
    assert vias[1].branch == "z9hG4bK9ikj8"
    assert vias[2].branch == "z9hG4bK30239"
    assert request.header("Subject") == ""
    assert request.header("NewFangledHeader") == (
        "newfangled value continued newfangled value"
    )
    assert request.header("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contacts = request.contacts()
    assert contacts != "*"
    assert len(contacts) == 1
    assert contacts[0].display_name == 'Quoted string ""'
    assert contacts[0].params["q"] == "0.33"
    assert request.content_type == "application/sdp"
    assert len(request.body) == 150


def check_intmeth(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert request.method == method
    assert request.cseq.method == method
    assert request.uri.host == "example.com"
    assert request.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert request.max_forwards == 255
    assert request.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert request.from_addr.tag == "_token~1'+`*%!-."
    assert request.to_addr.display_name is not None
    assert "NUL:" in request.to_addr.display_name
    assert request.header("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert request.body == b""


def check_esc01(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.uri.host == "example.net"
    assert unquote(request.uri.user or "") == "sips:user@example.com"
    assert unquote(request.to_addr.uri.user or "") == "user"
    assert unquote(request.from_addr.uri.user or "") == "I have spaces"
    contacts = request.contacts()
    assert contacts != "*"
    assert unquote(contacts[0].uri.user or "") == "caller"
    assert request.content_type == "application/sdp"
    assert len(request.body) == 150


def check_escnull(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert unquote(request.to_addr.uri.user or "") == "null-\x00-null"
    contacts = request.contacts()
    assert contacts != "*"
    assert [unquote(contact.uri.user or "") for contact in contacts] == [
        "\x00",
        "\x00\x00",
    ]


def check_esc02(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    # Escapes are not unescaped in methods or header names: not a REGISTER, and
    # C%6Fntact is an unknown header, not a third Contact.
    assert request.method == "RE%47IST%45R"
    assert request.cseq.method == "RE%47IST%45R"
    contacts = request.contacts()
    assert contacts != "*"
    assert [contact.uri.host for contact in contacts] == [
        "host1.example.com",
        "host3.example.com",
    ]
    assert request.header("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert request.to_addr.display_name == "%Z%45"
    assert request.top_via.branch == "z9hG4bK209%fzsnel234"


def check_lwsdisp(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.from_addr.display_name == "caller"
    assert request.from_addr.uri.user == "caller"
    assert request.from_addr.tag == "323"


def check_longreq(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    vias = request.vias
    assert len(vias) == 34
    assert vias[0].host == "sip33.example.com"
    assert vias[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert vias[-1].received == "192.0.2.5"
    assert request.to_addr.display_name == (
        "I have a user name of " + "extreme" * 10 + " proportion"
    )
    assert request.to_addr.uri.port == 6000
    assert request.from_addr.tag == "12" + "982" * 50 + "424"
    assert request.call_id == "longreq.one" + "really" * 20 + "longcallid"
    assert request.header("Unknown-" + "Long" * 20 + "-Name") is not None
    assert len(request.body) == 150


def check_dblreq(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    # Over UDP the INVITE after Content-Length 0 is not a second message.
    assert request.method == "REGISTER"
    assert request.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert request.body == b""


def check_semiuri(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.uri.user == "user;par=u%40example.net"
    assert request.uri.host == "example.com"
    assert request.uri.params == {}
    accept = request.headers.get_all("Accept")
    assert "message/sipfrag" in [value.strip() for value in accept]


def check_transports(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert [via.transport for via in request.vias] == [
        "UDP",
        "SCTP",
        "TLS",
        "UNKNOWN",
        "TCP",
    ]
    assert request.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def check_mpart01(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.method == "MESSAGE"
    assert request.content_type == "multipart/mixed"
    assert len(request.body) == 553
    assert request.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert request.body.endswith(b"--7a9cbec02ceef655--\r\n")


def check_unreason(message: SipRequest | SipResponse) -> None:
    response = _response(message)
    assert response.status == 200
    assert response.reason.endswith("простое")
    assert len(response.body) == 154


def check_noreason(message: SipRequest | SipResponse) -> None:
    response = _response(message)
    assert response.status == 100
    assert response.reason == ""


def check_badaspec(message: SipRequest | SipResponse) -> None:
    # 3.1.2.14: an element may be liberal and accept spaces inside <>.
    request = _request(message)
    assert (request.to_addr.uri.user, request.to_addr.uri.host) == (
        "t.watson",
        "example.org",
    )


def check_baddate(message: SipRequest | SipResponse) -> None:
    # 3.1.2.12: the Date header field is not interpreted, so it is accepted as is.
    request = _request(message)
    assert request.header("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def check_badbranch(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.top_via.branch == "z9hG4bK"


def check_unksm2(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.to_addr.uri.scheme == "isbn"
    assert request.from_addr.uri.scheme == "http"
    contacts = request.contacts()
    assert contacts != "*"
    assert contacts[0].uri.scheme == "name"


def check_bext01(message: SipRequest | SipResponse) -> None:
    # A UAS answers 420 listing the Require values it does not support.
    request = _request(message)
    assert [value.strip() for value in request.headers.get_all("Require")] == [
        "nothingSupportsThis",
        "nothingSupportsThisEither",
    ]


def check_invut(message: SipRequest | SipResponse) -> None:
    # A UAS answers 415: the body's type is unknown.
    request = _request(message)
    assert request.content_type == "application/unknownformat"
    assert len(request.body) == 40


def check_regaut01(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.header("Authorization") == "NoOneKnowsThisScheme opaque-data=here"


def check_bcast(message: SipRequest | SipResponse) -> None:
    response = _response(message)
    assert [via.host for via in response.vias] == ["192.0.2.198", "255.255.255.255"]


def check_zeromf(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.max_forwards == 0


def check_cparam01(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    contacts = request.contacts()
    assert contacts != "*"
    # Without <> the parameter belongs to the header field, not the URI.
    assert "unknownparam" in contacts[0].params
    assert "unknownparam" not in contacts[0].uri.params


def check_cparam02(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    contacts = request.contacts()
    assert contacts != "*"
    assert "unknownparam" in contacts[0].uri.params
    assert "unknownparam" not in contacts[0].params


def check_regescrt(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    contacts = request.contacts()
    assert contacts != "*"
    assert contacts[0].uri.headers == {"Route": "%3Csip:sip.example.com%3E"}
    assert "Route" not in contacts[0].params


def check_sdp01(message: SipRequest | SipResponse) -> None:
    # A UAS answers 406: it can only answer with SDP.
    request = _request(message)
    assert request.header("Accept") == "text/nobodyKnowsThis"
    assert request.content_type == "application/sdp"


def check_inv2543(message: SipRequest | SipResponse) -> None:
    request = _request(message)
    assert request.max_forwards is None
    assert request.top_via.branch is None
    assert request.to_addr.params.get("user") == "phone"
    assert request.from_addr.uri.params.get("user") == "phone"
    assert len(request.body) == 105


VALID: Final[dict[str, Check]] = {
    "wsinv": check_wsinv,
    "intmeth": check_intmeth,
    "esc01": check_esc01,
    "escnull": check_escnull,
    "esc02": check_esc02,
    "lwsdisp": check_lwsdisp,
    "longreq": check_longreq,
    "dblreq": check_dblreq,
    "semiuri": check_semiuri,
    "transports": check_transports,
    "mpart01": check_mpart01,
    "unreason": check_unreason,
    "noreason": check_noreason,
    "baddate": check_baddate,
    "badaspec": check_badaspec,
    "badbranch": check_badbranch,
    "unksm2": check_unksm2,
    "bext01": check_bext01,
    "invut": check_invut,
    "regaut01": check_regaut01,
    "bcast": check_bcast,
    "zeromf": check_zeromf,
    "cparam01": check_cparam01,
    "cparam02": check_cparam02,
    "regescrt": check_regescrt,
    "sdp01": check_sdp01,
    "inv2543": check_inv2543,
}

# Refused by the parser, with the status the element answers (None: not answered,
# because it is a response or lacks what a response copies).
INVALID: Final[dict[str, int | None]] = {
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "regbadct": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": None,
    "insuf": None,
    "unkscm": 416,
    "novelsc": 416,
    "multi01": 400,
    "mcl01": 400,
}


def test_every_message_is_classified() -> None:
    assert set(VALID) | set(INVALID) == set(MESSAGES)
    assert not set(VALID) & set(INVALID)
    assert set(SECTIONS) == set(MESSAGES)


def _by_section(names: Iterable[str]) -> list[str]:
    """Return ``names`` in the RFC's order."""
    return sorted(
        names, key=lambda name: tuple(int(part) for part in SECTIONS[name].split("."))
    )


@pytest.mark.parametrize("name", _by_section(VALID))
def test_valid_message_parses(name: str) -> None:
    VALID[name](parse_message(MESSAGES[name]))


@pytest.mark.parametrize("name", _by_section(INVALID))
def test_invalid_message_is_refused(name: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(MESSAGES[name])
    status = INVALID[name]
    if status is None:
        assert caught.value.answerable is None
    else:
        assert caught.value.status == status
        assert caught.value.answerable is not None
        # The reason is short and never echoes the message.
        assert len(caught.value.reason) < 80


def test_parse_errors_are_value_errors() -> None:
    # Callers that catch ValueError also catch the parser's one error type.
    assert issubclass(SipParseError, ValueError)


# --- through the transport ----------------------------------------------------------

_TOP_VIA_RE: Final = re.compile(
    rb"^(Via|v)[ \t]*:[ \t]*(SIP[ \t]*/[ \t]*\d+\.\d+)[ \t]*/[ \t]*\w+[ \t]+[^;\r\n]+",
    re.IGNORECASE | re.MULTILINE,
)


def _via_to(data: bytes, port: int) -> bytes:
    """Point the top Via's sent-by at our socket (UDP), so the answer comes back.

    The defects these messages carry are elsewhere; only the first Via changes.
    """
    replaced, count = _TOP_VIA_RE.subn(
        lambda match: (
            match.group(1) + b": " + match.group(2) + f"/UDP {HOST}:{port}".encode()
        ),
        data,
        count=1,
    )
    assert count == 1
    return replaced


class _Inbox:
    """What the transport delivers to its user."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()

    def __call__(self, message: SipRequest | SipResponse, source: Source) -> None:
        self.items.put_nowait(message)


@pytest.fixture
async def transport(
    socket_enabled: None,
) -> AsyncIterator[tuple[SipTransportLayer, _Inbox]]:
    """Start a transport layer on loopback; yield it and what it delivers."""
    inbox = _Inbox()
    layer = SipTransportLayer(inbox, bind_host=HOST, port_min=0, port_max=0)
    await layer.start()
    yield layer, inbox
    await layer.close()


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    """Open a UDP socket that plays the sender of the torture messages."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def _exchange(sock: socket.socket, data: bytes, port: int) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(sock, data, (HOST, port))
    return await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)


# badinv01's defect is its Via, the one header the answer's destination comes from, so
# it is checked by the parser test only.
ANSWERED: Final = _by_section(
    name
    for name, status in INVALID.items()
    if status is not None and name != "badinv01"
)


@pytest.mark.parametrize("name", ANSWERED)
async def test_transport_answers_invalid_requests(
    name: str, transport: tuple[SipTransportLayer, _Inbox], peer: socket.socket
) -> None:
    layer, inbox = transport
    data = _via_to(MESSAGES[name], peer.getsockname()[1])
    answer = await _exchange(peer, data, layer.port)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.decode().startswith(f"SIP/2.0 {INVALID[name]} ")
    # The answer copies Call-ID and the (rewritten) top Via; it may copy the very
    # header that made the request invalid, so it is not parsed as a whole here.
    answer_call_ids = _header_lines(rest, b"call-id", b"i")
    assert answer_call_ids[:1] == _header_lines(MESSAGES[name], b"call-id", b"i")[:1]
    assert (
        f"{HOST}:{peer.getsockname()[1]}".encode()
        in _header_lines(rest, b"via", b"v")[0]
    )
    assert inbox.items.empty()


def _header_lines(data: bytes, *names: bytes) -> list[bytes]:
    """Return the values of the header lines called ``names`` (no unfolding)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    values = []
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in names:
            values.append(value.strip())
    return values


@pytest.mark.parametrize("name", ["insuf", "bigcode", "scalarlg"])
async def test_transport_drops_what_it_cannot_answer(
    name: str, transport: tuple[SipTransportLayer, _Inbox], peer: socket.socket
) -> None:
    layer, inbox = transport
    loop = asyncio.get_running_loop()
    port = peer.getsockname()[1]
    await loop.sock_sendto(peer, MESSAGES[name], (HOST, layer.port))
    # A refused request sent next is answered; had the dropped one been answered,
    # that answer would have come first (one sender, one loop, in order).
    answer = await _exchange(peer, _via_to(MESSAGES["mismatch01"], port), layer.port)
    assert b"Call-ID: mismatch01.dj0234sxdfl3" in answer
    assert inbox.items.empty()


@pytest.mark.parametrize(
    "name",
    list(
        _by_section(name for name in VALID if not MESSAGES[name].startswith(b"SIP/2.0"))
    ),
)
async def test_transport_delivers_valid_requests(
    name: str, transport: tuple[SipTransportLayer, _Inbox], peer: socket.socket
) -> None:
    layer, inbox = transport
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(peer, MESSAGES[name], (HOST, layer.port))
    message = await asyncio.wait_for(inbox.items.get(), 5)
    assert isinstance(message, SipRequest)
    assert message.call_id == parse_message(MESSAGES[name]).call_id
    # The transport stamped where it came from (RFC 3261 18.2.1).
    assert message.top_via.received == HOST
