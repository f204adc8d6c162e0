"""The registration package's small parts: timings, bindings, targets, requests."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given, strategies as st
import pytest

from custom_components.sip_endpoint.protocol.payloads import AccountParams, Transport
from custom_components.sip_endpoint.worker.builtin.registration.account import (
    BuiltinAccount,
)
from custom_components.sip_endpoint.worker.builtin.registration.bindings import (
    granted_expires,
    lists_binding,
    min_expires,
)
from custom_components.sip_endpoint.worker.builtin.registration.requests import (
    RegisterSequence,
    build_options,
    build_register,
)
from custom_components.sip_endpoint.worker.builtin.registration.target import (
    AccountAddresses,
    Destination,
    TargetError,
    local_address,
    resolve,
)
from custom_components.sip_endpoint.worker.builtin.registration.timing import (
    PROBE_TIMEOUT,
    probe_timeout,
    refresh_delay,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    parse_uri,
)

from .loophost import LoopbackHost


@pytest.mark.parametrize(
    ("expires", "delay"),
    [(1, 0.5), (4, 2.0), (7, 3.5), (10, 5.0), (20, 15.0), (60, 55.0), (300, 295.0)],
)
def test_refresh_delay(expires: int, delay: float) -> None:
    """5 s before expiry as pjsua does; half-way under 10 s."""
    assert refresh_delay(expires) == pytest.approx(delay)
    assert 0 < refresh_delay(expires) < expires
    if expires <= 50:
        assert refresh_delay(expires) <= 0.9 * expires


def test_probe_timeout_fits_the_interval() -> None:
    """A probe never outlasts its interval, and waits at least a second."""
    assert probe_timeout(30) == PROBE_TIMEOUT
    assert probe_timeout(10) == PROBE_TIMEOUT
    assert probe_timeout(2) == 2
    assert probe_timeout(0.2) == 1
    # Issue 11's budgets: detection within interval + probe timeout.
    assert 10 + probe_timeout(10) <= 15
    assert 30 + probe_timeout(30) <= 40


def _response(*headers: tuple[str, str]) -> SipResponse:
    return SipResponse(200, "OK", Headers(headers))


OURS = parse_uri("sip:2000@127.0.0.1:5080;transport=tcp")


def test_granted_expires_prefers_our_binding() -> None:
    """Our Contact's expires wins over others and over the Expires header."""
    response = _response(
        ("Contact", "<sip:2000@127.0.0.1:5080>;expires=10"),  # UDP: not ours
        ("Contact", "<sip:2000@127.0.0.1:5080;transport=TCP>;expires=40"),
        ("Expires", "99"),
    )
    assert granted_expires(response, OURS, 300) == 40


def test_granted_expires_falls_back() -> None:
    """Without our binding the Expires header counts, then what we asked."""
    other = ("Contact", "<sip:2000@192.0.2.1:5080;transport=tcp>;expires=10")
    assert granted_expires(_response(other, ("Expires", "99")), OURS, 300) == 99
    assert granted_expires(_response(other), OURS, 300) == 300
    assert granted_expires(_response(("Contact", "*")), OURS, 300) == 300


@pytest.mark.parametrize(
    "headers",
    [
        (("Contact", "<sip:2000@127.0.0.1:5080;transport=tcp>;expires=soon"),),
        (("Contact", "<<garbage"), ("Expires", "x")),
        (("Expires", "\u00b2"),),
    ],
)
def test_granted_expires_ignores_garbage(headers: tuple[tuple[str, str], ...]) -> None:
    """A malformed Contact or Expires counts as absent; nothing raises."""
    assert granted_expires(_response(*headers), OURS, 300) == 300


def test_min_expires() -> None:
    """Min-Expires is read when it is a number, else None."""
    assert min_expires(_response(("Min-Expires", "120"))) == 120
    assert min_expires(_response(("Min-Expires", "two"))) is None
    assert min_expires(_response()) is None


def _params(**changes: object) -> AccountParams:
    values: dict[str, object] = {
        "account_id": "e",
        "extension": "2000",
        "auth_id": "2000",
        "password": "secret",
        "domain": "pbx.example",
    }
    values.update(changes)
    return AccountParams(**values)  # type: ignore[arg-type]


def test_addresses_without_proxy() -> None:
    """The registrar is the next hop; AUTO is UDP; no Route."""
    addresses = AccountAddresses.from_params(_params(port=5070))
    assert str(addresses.aor) == "sip:2000@pbx.example"
    assert str(addresses.registrar) == "sip:pbx.example:5070"
    assert addresses.next_hop == addresses.registrar
    assert addresses.route_set == ()
    assert addresses.transport is Transport.UDP


def test_addresses_with_proxy() -> None:
    """The outbound proxy is the next hop and a loose route."""
    addresses = AccountAddresses.from_params(
        _params(transport=Transport.TCP, outbound_proxy="proxy.example:5090")
    )
    assert str(addresses.next_hop) == "sip:proxy.example:5090;transport=tcp;lr"
    assert addresses.route_set == (addresses.next_hop,)
    assert addresses.registrar_text == "sip:pbx.example;transport=tcp"


def test_bad_domain_is_refused() -> None:
    """A domain that makes no URI is a TargetError."""
    with pytest.raises(TargetError):
        AccountAddresses.from_params(_params(domain="bad host"))


@pytest.mark.usefixtures("socket_enabled")
async def test_resolve_defaults_and_literals() -> None:
    """Default ports 5060/5061; IP literals are not looked up; names are."""
    udp = await resolve(parse_uri("sip:127.0.0.1"), Transport.UDP)
    assert udp == Destination(Transport.UDP, "127.0.0.1", "127.0.0.1", 5060)
    tls = await resolve(parse_uri("sip:[::1]"), Transport.TLS)
    assert (tls.address, tls.port, tls.host) == ("::1", 5061, "::1")
    named = await resolve(parse_uri("sip:localhost:5099"), Transport.TCP)
    assert named.address in ("127.0.0.1", "::1")
    assert named.host == "localhost"


async def test_a_name_that_does_not_resolve_is_a_target_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolver's "unknown name" becomes a TargetError naming the host.

    The resolver is a fake: looking up a non-existent name would ask a DNS server off
    the machine (tests stay on loopback), and Home Assistant's test plugin raises
    RuntimeError for any name but "localhost" before the resolver is reached.
    """
    looked_up: list[tuple[str, int]] = []

    async def no_such_name(host: str, port: int, **_: object) -> list[object]:
        looked_up.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    with pytest.raises(TargetError, match=r"cannot resolve no-such-host\.invalid"):
        await resolve(parse_uri("sip:no-such-host.invalid"), Transport.UDP)
    assert looked_up == [("no-such-host.invalid", 5060)]


@pytest.mark.usefixtures("socket_enabled")
def test_local_address_toward_loopback() -> None:
    """The source address toward 127.0.0.1 is a loopback address."""
    here = local_address(Destination(Transport.UDP, "x", "127.0.0.1", 5060))
    assert here.startswith("127.")


def test_register_requests_share_call_id_and_count_cseq() -> None:
    """One Call-ID and From tag; CSeq counts up; Expires and Contact as asked."""
    sequence = RegisterSequence("127.0.0.1")
    aor = parse_uri("sip:2000@pbx.example")
    contact = parse_uri("sip:2000@127.0.0.1:5080")
    route = parse_uri("sip:proxy.example;lr")
    first, second = (
        build_register(
            sequence,
            registrar=parse_uri("sip:pbx.example"),
            aor=aor,
            contact=contact,
            expires=expires,
            route_set=(route,),
        )
        for expires in (300, 0)
    )
    assert first.call_id == second.call_id
    assert first.from_addr.tag == second.from_addr.tag
    assert (first.cseq.seq, second.cseq.seq) == (1, 2)
    assert (first.header("Expires"), second.header("Expires")) == ("300", "0")
    assert first.header("Route") == "<sip:proxy.example;lr>"
    assert first.header("Contact") == "<sip:2000@127.0.0.1:5080>"
    assert first.to_addr.tag is None
    options = build_options(target=aor, aor=aor, contact=contact, route_set=())
    assert options.method == "OPTIONS"
    assert options.call_id != first.call_id


def test_asyncio_is_not_needed_for_building() -> None:
    """Building requests and reading answers needs no running loop."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert RegisterSequence("::1").call_id.endswith("@::1")


def _challenge(status: int, nonce: str) -> SipResponse:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    return SipResponse(
        status,
        None,
        Headers([(name, f'Digest realm="pbx", nonce="{nonce}", qop="auth"')]),
    )


@pytest.mark.parametrize(
    ("status", "header"), [(401, "Authorization"), (407, "Proxy-Authorization")]
)
async def test_authorize_answers_a_call_challenge(status: int, header: str) -> None:
    """`authorize` adds the digest answer to an INVITE; a repeated nonce is refused."""
    host = LoopbackHost()  # not started: nothing is sent
    account = BuiltinAccount(host, _params())
    session = account.new_digest()
    invite = SipRequest("INVITE", parse_uri("sip:9001@pbx.example"), Headers())
    assert BuiltinAccount.authorize(session, invite, _challenge(status, "n1"))
    value = invite.headers.get(header)
    assert value is not None
    assert 'uri="sip:9001@pbx.example"' in value
    assert "secret" not in value
    # The same nonce again: the credentials were refused.
    assert not BuiltinAccount.authorize(session, invite, _challenge(status, "n1"))
    # A response without a usable challenge cannot be answered.
    assert not BuiltinAccount.authorize(
        account.new_digest(), invite, SipResponse(status, None, Headers())
    )
    assert "secret" in host.secrets


_HEADER_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=80,
)
_CONTACT = st.one_of(
    _HEADER_TEXT,
    st.builds(
        "<sip:2000@127.0.0.1:{}{}>;expires={}".format,
        st.sampled_from(["5080", "5081", "", "99999"]),
        st.sampled_from([";transport=tcp", ";transport=TCP", "", ";transport"]),
        st.one_of(st.integers(min_value=0, max_value=2**40).map(str), _HEADER_TEXT),
    ),
)


@given(
    contacts=st.lists(_CONTACT, max_size=4),
    expires=st.one_of(st.none(), _HEADER_TEXT),
    min_value=st.one_of(st.none(), _HEADER_TEXT),
)
def test_reading_any_answer_never_raises(
    contacts: list[str], expires: str | None, min_value: str | None
) -> None:
    """Whatever Contact, Expires and Min-Expires a registrar sends, reading it is safe."""
    items = [("Contact", value) for value in contacts]
    if expires is not None:
        items.append(("Expires", expires))
    if min_value is not None:
        items.append(("Min-Expires", min_value))
    try:
        response = SipResponse(200, "OK", Headers(items))
    except ValueError:
        return  # the header builder refuses control characters itself
    granted = granted_expires(response, OURS, 300)
    assert 0 <= granted <= 2**31 - 1
    assert lists_binding(response, OURS) in (True, False)
    least = min_expires(response)
    assert least is None or least >= 0
