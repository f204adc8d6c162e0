"""The built-in engine's SIP transports on loopback: UDP, TCP, TLS, framing, reuse."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import TYPE_CHECKING, Self

import pytest
import pytest_socket  # type: ignore[import-untyped]

from custom_components.sip_endpoint.worker.builtin.sip import (
    transport as transport_module,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    MAX_MESSAGE_BYTES,
    Headers,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    make_response,
    new_branch,
    parse_message,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    KEEPALIVE_PING,
    KEEPALIVE_PONG,
    SipTransportLayer,
    Source,
    Target,
    TlsVerificationError,
    TransportError,
    client_tls_context,
    response_target,
)
from tests.sipbed.tls import (
    EXPECTED_VERIFY_MESSAGES,
    CertificateKind,
    CertificateSet,
    ServerCertificate,
    make_certificates,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOST = "127.0.0.1"


class Inbox:
    """Collects what a transport layer delivers."""

    def __init__(self) -> None:
        """Start empty."""
        self.items: asyncio.Queue[tuple[SipRequest | SipResponse, Source]] = (
            asyncio.Queue()
        )

    def __call__(self, message: SipRequest | SipResponse, source: Source) -> None:
        """Keep a delivered message."""
        self.items.put_nowait((message, source))

    async def get(self) -> tuple[SipRequest | SipResponse, Source]:
        """Return the next message (fails after 5 s)."""
        return await asyncio.wait_for(self.items.get(), 5)


class UdpPeer:
    """A plain UDP socket on loopback that talks to a layer datagram by datagram."""

    def __init__(self) -> None:
        """Bind to a free port, non-blocking."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def __enter__(self) -> Self:
        """Use the peer; it is closed on exit."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the socket."""
        self.sock.close()

    async def send(self, data: bytes, port: int) -> None:
        """Send one datagram to ``port`` on loopback."""
        await asyncio.get_running_loop().sock_sendto(self.sock, data, (HOST, port))

    async def receive(self, within: float = 5) -> bytes:
        """Return the next datagram (TimeoutError after ``within`` seconds)."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 65535), within)


def listener() -> socket.socket:
    """Return a TCP socket listening on a free loopback port, non-blocking."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((HOST, 0))
    server.listen(4)
    server.setblocking(False)
    return server


def closed_port() -> int:
    """Return a loopback TCP port nobody listens on (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind((HOST, 0))
        port: int = closed.getsockname()[1]
    return port


def options(transport: str, port: int, *, call_id: str = "c1@test") -> SipRequest:
    headers = Headers(
        [
            (
                "Via",
                f"SIP/2.0/{transport.upper()} {HOST}:{port};branch={new_branch()};rport",
            ),
            ("Max-Forwards", "70"),
            ("From", "<sip:a@127.0.0.1>;tag=1"),
            ("To", "<sip:b@127.0.0.1>"),
            ("Call-ID", call_id),
            ("CSeq", "1 OPTIONS"),
        ]
    )
    return SipRequest("OPTIONS", SipUri(user="b", host=HOST), headers)


async def layer(
    inbox: Inbox, tls_server: ssl.SSLContext | None = None
) -> SipTransportLayer:
    sip = SipTransportLayer(
        inbox, bind_host=HOST, port_min=0, port_max=0, tls_server_context=tls_server
    )
    await sip.start()
    return sip


@contextlib.asynccontextmanager
async def running(
    *bind_hosts: str,
) -> AsyncIterator[list[tuple[SipTransportLayer, Inbox]]]:
    """Start one layer (and its inbox) per bind host; close them all afterwards."""
    layers = [
        (SipTransportLayer(inbox, bind_host=host, port_min=0, port_max=0), inbox)
        for host, inbox in ((host, Inbox()) for host in bind_hosts)
    ]
    try:
        for sip, _ in layers:
            await sip.start()
        yield layers
    finally:
        for sip, _ in layers:
            await sip.close()


# Two started layers on loopback and their inboxes: (a, inbox_a, b, inbox_b).
type Pair = tuple[SipTransportLayer, Inbox, SipTransportLayer, Inbox]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await layer(inbox_a)
    b = await layer(inbox_b)
    yield a, inbox_a, b, inbox_b
    await a.close()
    await b.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_request_and_response_round_trip(pair: Pair, transport: str) -> None:
    a, inbox_a, b, inbox_b = pair
    request = options(transport, a.port)
    await a.send(request, Target(transport, HOST, b.port))
    received, source = await inbox_b.get()
    assert isinstance(received, SipRequest)
    assert received.method == "OPTIONS"
    assert source.transport == transport
    assert source.host == HOST
    # rport and received are filled in from the source (RFC 3581).
    assert received.top_via.rport == source.port
    assert received.top_via.received == HOST
    assert (source.connection is None) == (transport == "udp")
    await b.send_response(make_response(received, 200), source)
    answer, answer_source = await inbox_a.get()
    assert isinstance(answer, SipResponse)
    assert answer.status == 200
    assert answer.call_id == "c1@test"
    assert answer_source.port == b.port


async def test_bind_uses_first_port_free_for_udp_and_tcp() -> None:
    taken = listener()
    busy = taken.getsockname()[1]
    sip = SipTransportLayer(
        Inbox(), bind_host=HOST, port_min=busy, port_max=min(busy + 20, 65535)
    )
    try:
        await sip.start()
        assert busy < sip.port <= busy + 20
    finally:
        await sip.close()
        taken.close()


async def test_tcp_connection_is_reused_both_ways(
    pair: Pair,
) -> None:
    a, _inbox_a, b, inbox_b = pair
    first = await a.send(
        options("tcp", a.port, call_id="one"), Target("tcp", HOST, b.port)
    )
    second = await a.send(
        options("tcp", a.port, call_id="two"), Target("tcp", HOST, b.port)
    )
    assert first is not None
    assert first is second
    one, source_one = await inbox_b.get()
    two, source_two = await inbox_b.get()
    assert (one.call_id, two.call_id) == ("one", "two")
    assert source_one.connection is source_two.connection
    # The server side sends a request down the connection the client opened (as a
    # registrar sends INVITE over the REGISTER connection): the client receives it.
    assert source_one.connection is not None
    back = options("tcp", b.port, call_id="back")
    await b.send(back, Target("tcp", HOST, source_one.port))
    assert (
        b.connection_for(Target("tcp", HOST, source_one.port)) is source_one.connection
    )


async def test_request_down_registered_connection_reaches_client(
    pair: Pair,
) -> None:
    a, inbox_a, b, inbox_b = pair
    await a.send(options("tcp", a.port, call_id="reg"), Target("tcp", HOST, b.port))
    _, source = await inbox_b.get()
    assert source.connection is not None
    source.connection.write(options("tcp", b.port, call_id="down").to_bytes())
    message, from_server = await inbox_a.get()
    assert message.call_id == "down"
    assert from_server.port == b.port


async def raw_tcp(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


async def test_tcp_framing_split_and_joined_reads(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    reader, writer = await raw_tcp(b.port)
    body = b"v=0\r\n"
    first = options("tcp", 5060, call_id="split")
    first.body = body
    second = options("tcp", 5060, call_id="joined")
    third = options("tcp", 5060, call_id="after-crlf")
    data = first.to_bytes()
    for index in range(0, len(data), 7):  # many small reads, split everywhere
        writer.write(data[index : index + 7])
        await writer.drain()
        await asyncio.sleep(0)
    writer.write(second.to_bytes() + b"\r\n" + third.to_bytes())  # joined in one read
    await writer.drain()
    got = [await inbox_b.get() for _ in range(3)]
    assert [message.call_id for message, _ in got] == ["split", "joined", "after-crlf"]
    assert got[0][0].body == body
    writer.close()
    assert reader is not None


async def test_crlf_ping_answered_with_pong(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    reader, writer = await raw_tcp(b.port)
    writer.write(KEEPALIVE_PING)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(2), 5) == KEEPALIVE_PONG
    # A message after the ping is still framed correctly.
    writer.write(options("tcp", 5060, call_id="after-ping").to_bytes())
    await writer.drain()
    message, _ = await inbox_b.get()
    assert message.call_id == "after-ping"
    writer.close()


async def test_oversize_tcp_message_drops_connection(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    reader, writer = await raw_tcp(b.port)
    huge = options("tcp", 5060, call_id="huge")
    huge.headers.set("Content-Length", str(MAX_MESSAGE_BYTES))
    head = huge.to_bytes().replace(
        b"Content-Length: 0", f"Content-Length: {MAX_MESSAGE_BYTES}".encode()
    )
    writer.write(head)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    assert inbox_b.items.empty()


async def test_endless_tcp_head_drops_connection(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    reader, writer = await raw_tcp(b.port)
    line = b"X-Junk: " + b"a" * 1000 + b"\r\n"
    writer.write(b"OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n")
    try:
        for _ in range(MAX_MESSAGE_BYTES // len(line) + 2):
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert inbox_b.items.empty()


async def test_missing_content_length_on_tcp_drops_connection(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    reader, writer = await raw_tcp(b.port)
    data = options("tcp", 5060).to_bytes().replace(b"Content-Length: 0\r\n", b"")
    writer.write(data)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert inbox_b.items.empty()


async def test_malformed_request_answered_400_on_udp(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    with UdpPeer() as peer:
        bad = (
            options("udp", peer.port)
            .to_bytes()
            .replace(b"Max-Forwards: 70", b"Max-Forwards: many")
        )
        await peer.send(bad, b.port)
        response = parse_message(await peer.receive())
        assert isinstance(response, SipResponse)
        assert response.status == 400
        assert response.call_id == "c1@test"
        assert response.top_via.received == HOST
        # Garbage that cannot be answered is dropped without a reply.
        await peer.send(b"\x00\xffgarbage\r\n\r\n", b.port)
        await peer.send(options("udp", peer.port, call_id="ok").to_bytes(), b.port)
        message, _ = await inbox_b.get()
        assert message.call_id == "ok"
        assert inbox_b.items.empty()


async def test_udp_keepalive_datagram_is_sent_and_ignored(
    pair: Pair,
) -> None:
    a, _ia, b, inbox_b = pair
    with UdpPeer() as peer:
        await a.send_keepalive(Target("udp", HOST, peer.port))
        assert await peer.receive() == KEEPALIVE_PING
        await peer.send(KEEPALIVE_PING, b.port)
        await peer.send(options("udp", 5060, call_id="after").to_bytes(), b.port)
        message, _ = await inbox_b.get()
        assert message.call_id == "after"


async def test_connection_refused_is_a_transport_error(
    pair: Pair,
) -> None:
    a, _ia, _b, _ib = pair
    with pytest.raises(TransportError) as info:
        await a.send(options("tcp", a.port), Target("tcp", HOST, closed_port()))
    assert not isinstance(info.value, TlsVerificationError)


def test_response_target_follows_rport_received_and_maddr() -> None:
    via = Via(
        "UDP",
        "10.0.0.1",
        5070,
        {"branch": "z9hG4bK1", "rport": "6000", "received": "192.0.2.1"},
    )
    assert response_target(via, None) == Target("udp", "192.0.2.1", 6000)
    via = Via("UDP", "10.0.0.1", 5070, {"branch": "z9hG4bK1", "received": "192.0.2.1"})
    assert response_target(via, None) == Target("udp", "192.0.2.1", 5070)
    via = Via("TLS", "example.com", None, {"branch": "z9hG4bK1"})
    assert response_target(via, None) == Target("tls", "example.com", 5061)
    via = Via("UDP", "10.0.0.1", 5070, {"branch": "z9hG4bK1", "maddr": "239.1.1.1"})
    assert response_target(via, None) == Target("udp", "239.1.1.1", 5070)
    # rport with the request's source: back to where the request came from.
    via = Via("UDP", "10.0.0.1", 5070, {"branch": "z9hG4bK1", "rport": "6000"})
    source = Source("udp", "192.0.2.9", 6001)
    assert response_target(via, source) == Target("udp", "192.0.2.9", 6001)
    # A stream whose connection is gone: a new connection to received and the sent-by
    # port, never to the old connection's ephemeral rport.
    via = Via(
        "TCP",
        "10.0.0.1",
        5070,
        {"branch": "z9hG4bK1", "rport": "40000", "received": "192.0.2.1"},
    )
    assert response_target(via, None) == Target("tcp", "192.0.2.1", 5070)


# --- TLS with the test bed's certificates --------------------------------------------

# A DNS name of the test bed's valid certificate (it also holds 127.0.0.1).
SERVER_NAME = "localhost"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return make_certificates(tmp_path_factory.mktemp("testbed-tls"), HOST)


async def tls_layer(inbox: Inbox, served: ServerCertificate) -> SipTransportLayer:
    """Start a layer with a TLS listener serving ``served``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(served.certificate, served.key)
    server = await layer(inbox, context)
    assert server.tls_port is not None
    return server


def tls_target(
    server: SipTransportLayer, ca: Path | None, server_name: str = SERVER_NAME
) -> Target:
    """``server``'s TLS listener, verified against ``ca`` (None: not verified)."""
    assert server.tls_port is not None
    context = client_tls_context(ca is not None, None if ca is None else str(ca))
    return Target(
        "tls", HOST, server.tls_port, server_name=server_name, tls_context=context
    )


@pytest.fixture
async def tls_server(
    certificates: CertificateSet,
) -> AsyncIterator[tuple[SipTransportLayer, Inbox]]:
    inbox = Inbox()
    server = await tls_layer(inbox, certificates.server())
    yield server, inbox
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[tuple[SipTransportLayer, Inbox]]:
    inbox = Inbox()
    sip = await layer(inbox)
    yield sip, inbox
    await sip.close()


async def test_tls_verified_with_ca_file(
    tls_server: tuple[SipTransportLayer, Inbox],
    client: tuple[SipTransportLayer, Inbox],
    certificates: CertificateSet,
) -> None:
    (server, inbox), (sip, client_inbox) = tls_server, client
    target = tls_target(server, certificates.ca_path)
    first = await sip.send(options("tls", sip.port, call_id="tls-1"), target)
    second = await sip.send(options("tls", sip.port, call_id="tls-2"), target)
    assert first is not None
    assert first is second
    message, source = await inbox.get()
    assert message.call_id == "tls-1"
    assert source.transport == "tls"
    assert isinstance(message, SipRequest)
    await server.send_response(make_response(message, 200), source)
    answer, _ = await client_inbox.get()
    assert isinstance(answer, SipResponse)
    assert answer.status == 200


@pytest.mark.parametrize(
    ("other_ca", "server_name", "expected"),
    [
        (True, SERVER_NAME, "unable to get local issuer certificate"),
        (False, "wrong.test", "Hostname mismatch"),
    ],
)
async def test_tls_refused_with_distinct_error(
    tls_server: tuple[SipTransportLayer, Inbox],
    client: tuple[SipTransportLayer, Inbox],
    certificates: CertificateSet,
    other_ca: bool,
    server_name: str,
    expected: str,
) -> None:
    (server, inbox), (sip, _) = tls_server, client
    ca = certificates.other_ca_path if other_ca else certificates.ca_path
    with pytest.raises(TlsVerificationError) as info:
        await sip.send(options("tls", sip.port), tls_target(server, ca, server_name))
    assert info.value.reason.startswith("certificate verify failed: ")
    assert expected in info.value.reason
    assert inbox.items.empty()


async def test_tls_without_verification_accepts_any_certificate(
    tls_server: tuple[SipTransportLayer, Inbox],
    client: tuple[SipTransportLayer, Inbox],
) -> None:
    (server, inbox), (sip, _) = tls_server, client
    target = tls_target(server, None, "wrong.test")
    assert target.tls_context is not None
    assert target.tls_context.verify_mode == ssl.CERT_NONE
    await sip.send(options("tls", sip.port, call_id="noverify"), target)
    message, _ = await inbox.get()
    assert message.call_id == "noverify"


@pytest.mark.parametrize("kind", ["expired", "self_signed", "untrusted", "wrong_host"])
async def test_tls_refusals_name_what_failed(
    certificates: CertificateSet,
    client: tuple[SipTransportLayer, Inbox],
    kind: CertificateKind,
) -> None:
    sip, _ = client
    inbox = Inbox()
    server = await tls_layer(inbox, certificates.server(kind))
    try:
        with pytest.raises(TlsVerificationError) as info:
            await sip.send(
                options("tls", sip.port), tls_target(server, certificates.ca_path, HOST)
            )
        assert EXPECTED_VERIFY_MESSAGES[kind] in info.value.reason
        assert inbox.items.empty()
    finally:
        await server.close()


async def test_udp_and_tcp_over_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.fail("IPv6 is needed for this test")
    # The Home Assistant test plugin allows connections to 127.0.0.1 only; add ::1.
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"])
    async with running("::1", "::1") as [(a, inbox_a), (b, inbox_b)]:
        for transport in ("udp", "tcp"):
            request = options(transport, a.port, call_id=f"v6-{transport}")
            request.replace_top_via(
                Via(
                    transport.upper(),
                    "[::1]",
                    a.port,
                    {"branch": new_branch(), "rport": None},
                )
            )
            await a.send(request, Target(transport, "[::1]", b.port))
            received, source = await inbox_b.get()
            assert received.call_id == f"v6-{transport}"
            assert source.host == "::1"
            assert isinstance(received, SipRequest)
            assert received.top_via.rport == source.port
            await b.send_response(make_response(received, 200), source)
            answer, _ = await inbox_a.get()
            assert isinstance(answer, SipResponse)
            assert answer.status == 200


async def test_idle_inbound_connection_is_closed_but_ours_is_kept(
    pair: Pair,
) -> None:
    a, _inbox_a, b, inbox_b = pair
    b.idle_timeout = 0.2
    a.idle_timeout = 0.2
    reader, writer = await raw_tcp(b.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # b closed it: idle
    writer.close()
    # a's own connection to b is not closed by a for idleness; b closes its side
    # (inbound there) and a notices; a request afterwards opens a new one.
    first = await a.send(
        options("tcp", a.port, call_id="one"), Target("tcp", HOST, b.port)
    )
    assert first is not None
    assert not first.inbound
    await inbox_b.get()
    for _ in range(100):
        if first.closed:
            break
        await asyncio.sleep(0.05)
    assert first.closed
    second = await a.send(
        options("tcp", a.port, call_id="two"), Target("tcp", HOST, b.port)
    )
    assert second is not first
    message, _ = await inbox_b.get()
    assert message.call_id == "two"


async def test_inbound_connection_limit(
    pair: Pair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _inbox_a, b, inbox_b = pair
    monkeypatch.setattr(transport_module, "MAX_CONNECTIONS", 2)
    kept = [await raw_tcp(b.port) for _ in range(2)]
    await asyncio.sleep(0.05)
    reader, writer = await raw_tcp(b.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # refused: over the limit
    writer.close()
    for _, kept_writer in kept:
        kept_writer.write(options("tcp", 5060, call_id="kept").to_bytes())
        await kept_writer.drain()
    assert [(await inbox_b.get())[0].call_id for _ in kept] == ["kept", "kept"]
    # Connections b opens itself are not limited.
    assert await b.send(options("tcp", b.port), Target("tcp", HOST, a.port)) is not None
    for _, kept_writer in kept:
        kept_writer.close()


async def test_concurrent_sends_share_one_new_connection(
    pair: Pair,
) -> None:
    a, _inbox_a, b, inbox_b = pair
    target = Target("tcp", HOST, b.port)
    connections = await asyncio.gather(
        *(a.send(options("tcp", a.port, call_id=f"c{i}"), target) for i in range(5))
    )
    assert len({id(connection) for connection in connections}) == 1
    got = sorted([(await inbox_b.get())[0].call_id for _ in range(5)])
    assert got == [f"c{i}" for i in range(5)]


async def test_send_refuses_what_cannot_be_sent(
    pair: Pair,
) -> None:
    a, _inbox_a, b, _inbox_b = pair
    with pytest.raises(TransportError, match="too large"):
        await a.send(b"x" * (MAX_MESSAGE_BYTES + 1), Target("udp", HOST, b.port))
    with pytest.raises(TransportError, match="unknown transport"):
        await a.send(options("udp", a.port), Target("sctp", HOST, b.port))
    unstarted = SipTransportLayer(Inbox(), bind_host=HOST, port_min=0, port_max=0)
    with pytest.raises(TransportError):
        await unstarted.send(options("udp", 5060), Target("udp", HOST, b.port))


async def test_no_port_free_in_the_range() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind((HOST, 0))
    port = taken.getsockname()[1]
    sip = SipTransportLayer(Inbox(), bind_host=HOST, port_min=port, port_max=port)
    try:
        with pytest.raises(TransportError, match="no port free"):
            await sip.start()
    finally:
        taken.close()
        await sip.close()


async def test_tcp_keepalive_ping_on_the_open_connection(
    pair: Pair,
) -> None:
    a, _inbox_a, _b, _inbox_b = pair
    server = listener()
    port = server.getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        target = Target("tcp", HOST, port)
        await a.send_keepalive(target)  # no connection yet: nothing is opened
        assert a.connection_for(target) is None
        await a.send(options("tcp", a.port), target)
        accepted, _ = await asyncio.wait_for(loop.sock_accept(server), 5)
        with accepted:
            accepted.setblocking(False)
            request = await asyncio.wait_for(loop.sock_recv(accepted, 65535), 5)
            assert request.startswith(b"OPTIONS ")
            await a.send_keepalive(target)
            ping = await asyncio.wait_for(loop.sock_recv(accepted, 100), 5)
            assert ping == KEEPALIVE_PING
    finally:
        server.close()


async def test_handler_errors_do_not_stop_delivery() -> None:
    delivered: list[str] = []

    def handler(message: SipRequest | SipResponse, _source: Source) -> None:
        delivered.append(message.call_id)
        if message.call_id == "boom":
            raise RuntimeError("handler bug")

    receiver = SipTransportLayer(handler, bind_host=HOST, port_min=0, port_max=0)
    sender = await layer(Inbox())
    await receiver.start()
    try:
        for transport in ("udp", "tcp"):
            for call_id in ("boom", f"after-{transport}"):
                await sender.send(
                    options(transport, sender.port, call_id=call_id),
                    Target(transport, HOST, receiver.port),
                )
        for _ in range(100):
            if len(delivered) == 4:
                break
            await asyncio.sleep(0.02)
        assert delivered == ["boom", "after-udp", "boom", "after-tcp"]
    finally:
        await sender.close()
        await receiver.close()


async def test_source_filter_silences_automatic_answers(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    b.source_filter = lambda host: host != HOST
    with UdpPeer() as peer:
        bad = (
            options("udp", peer.port)
            .to_bytes()
            .replace(b"Max-Forwards: 70", b"Max-Forwards: x")
        )
        await peer.send(bad, b.port)
        # A good request still reaches the UA (which applies the filter itself)...
        await peer.send(options("udp", peer.port, call_id="ok").to_bytes(), b.port)
        message, source = await inbox_b.get()
        assert (message.call_id, source.host) == ("ok", HOST)
        # ...but the malformed one got no 400.
        with pytest.raises(TimeoutError):
            await peer.receive(0.3)


async def test_received_is_added_when_the_via_host_differs(
    pair: Pair,
) -> None:
    a, _ia, b, inbox_b = pair
    request = options("udp", a.port)
    request.replace_top_via(
        Via("UDP", "phone.invalid", a.port, {"branch": new_branch()})
    )
    await a.send(request, Target("udp", HOST, b.port))
    received, _ = await inbox_b.get()
    assert received.top_via.received == HOST
    assert not received.top_via.has_rport
    same = options("udp", a.port)
    same.replace_top_via(Via("UDP", HOST, a.port, {"branch": new_branch()}))
    await a.send(same, Target("udp", HOST, b.port))
    received, _ = await inbox_b.get()
    assert received.top_via.received is None  # same host, no rport: left alone


async def test_tls_handshake_garbage_is_a_transport_error_not_a_certificate_error(
    pair: Pair,
) -> None:
    a, _ia, _b, _ib = pair

    async def answer_garbage(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"SIP/2.0 400 Not TLS\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_garbage, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = Target(
            "tls", HOST, port, server_name=HOST, tls_context=client_tls_context(False)
        )
        with pytest.raises(TransportError) as info:
            await a.send(options("tls", a.port), target)
        assert not isinstance(info.value, TlsVerificationError)
    finally:
        server.close()
        await server.wait_closed()


async def test_udp_to_a_host_name_is_resolved(
    pair: Pair,
) -> None:
    a, _ia, b, inbox_b = pair
    await a.send(
        options("udp", a.port, call_id="by-name"), Target("udp", "localhost", b.port)
    )
    message, source = await inbox_b.get()
    assert (message.call_id, source.host) == ("by-name", HOST)


async def test_blank_line_split_across_reads(
    pair: Pair,
) -> None:
    _a, _ia, b, inbox_b = pair
    _reader, writer = await raw_tcp(b.port)
    message = options("tcp", 5060, call_id="split-blank")
    message.body = b"body"
    data = message.to_bytes()
    cut = data.index(b"\r\n\r\n")
    for piece in (
        data[: cut + 1],
        data[cut + 1 : cut + 3],
        data[cut + 3 : -2],
        data[-2:],
    ):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.01)
    received, _ = await inbox_b.get()
    assert (received.call_id, received.body) == ("split-blank", b"body")
    writer.close()


async def test_tcp_connection_leaves_from_the_listening_port(
    pair: Pair,
) -> None:
    """The peer sees our listening port: a request for our Contact comes back on it."""
    a, inbox_a, b, inbox_b = pair
    await a.send(options("tcp", a.port, call_id="reg"), Target("tcp", HOST, b.port))
    _, source = await inbox_b.get()
    assert source.port == a.port
    # As a registrar does for our Contact (host:port of the listener): the open
    # connection is found and used, no new one is made.
    sent = await b.send(
        options("tcp", b.port, call_id="invite"), Target("tcp", HOST, a.port)
    )
    assert sent is source.connection
    message, from_b = await inbox_a.get()
    assert message.call_id == "invite"
    assert from_b.port == b.port
    assert from_b.connection is not None
    assert not from_b.connection.inbound  # our own connection carried it


async def test_connections_to_two_servers_share_the_listening_port() -> None:
    """Different 4-tuples: both connections leave from the one listening port."""
    async with running(HOST, HOST, HOST) as [(a, inbox_a), (b, inbox_b), (c, inbox_c)]:
        await a.send(options("tcp", a.port, call_id="b"), Target("tcp", HOST, b.port))
        await a.send(options("tcp", a.port, call_id="c"), Target("tcp", HOST, c.port))
        (_, at_b), (_, at_c) = await inbox_b.get(), await inbox_c.get()
        assert at_b.port == at_c.port == a.port
        # And the listener still takes connections peers open to it.
        await c.send(options("tcp", c.port, call_id="in"), Target("tcp", HOST, a.port))
        message, _ = await inbox_a.get()
        assert message.call_id == "in"


async def test_tls_connection_reaches_a_layer_without_tls_listener(
    tls_server: tuple[SipTransportLayer, Inbox],
    client: tuple[SipTransportLayer, Inbox],
    certificates: CertificateSet,
) -> None:
    """Our TLS connection comes from the Contact's port; requests come back on it."""
    (server, inbox), (sip, client_inbox) = tls_server, client
    assert server.tls_port is not None
    assert sip.tls_port is None
    assert sip.local_port("tls") == sip.port
    target = tls_target(server, certificates.ca_path)
    await sip.send(options("tls", sip.port, call_id="register"), target)
    _, source = await inbox.get()
    assert source.port == sip.port
    back = await server.send(
        options("tls", server.tls_port, call_id="invite"),
        Target("tls", HOST, sip.port),
    )
    assert back is source.connection
    message, _ = await client_inbox.get()
    assert message.call_id == "invite"


async def test_taken_four_tuple_falls_back_to_another_port_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Our port already connected to the same server: an ephemeral port, one warning."""
    async with (
        running(HOST, HOST, HOST) as [(a, _), (b, inbox_b), (c, inbox_c)],
        contextlib.AsyncExitStack() as squatters,
    ):
        for server in (b, c):  # someone else holds (a.port -> server) already
            squatter = squatters.enter_context(
                socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            )
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            squatter.bind((HOST, a.port))
            squatter.connect((HOST, server.port))
        with caplog.at_level("WARNING", logger=transport_module.__name__):
            await a.send(
                options("tcp", a.port, call_id="b"), Target("tcp", HOST, b.port)
            )
            await a.send(
                options("tcp", a.port, call_id="c"), Target("tcp", HOST, c.port)
            )
        (message_b, at_b), (message_c, at_c) = await inbox_b.get(), await inbox_c.get()
        assert (message_b.call_id, message_c.call_id) == ("b", "c")
        assert a.port not in (at_b.port, at_c.port)
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == transport_module.__name__
        ]
        assert len(warnings) == 1
        assert f"Cannot connect from SIP port {a.port}" in warnings[0]


async def test_a_name_finds_the_connection_to_its_address(
    pair: Pair,
) -> None:
    """Dialling "localhost" reuses the open connection to 127.0.0.1 (one 4-tuple)."""
    a, _inbox_a, b, inbox_b = pair
    by_address = await a.send(
        options("tcp", a.port, call_id="ip"), Target("tcp", HOST, b.port)
    )
    by_name = await a.send(
        options("tcp", a.port, call_id="name"), Target("tcp", "localhost", b.port)
    )
    assert by_name is by_address
    assert [(await inbox_b.get())[0].call_id for _ in range(2)] == ["ip", "name"]


async def test_any_address_listener_connects_from_its_port() -> None:
    """Bound to 0.0.0.0 (the default): connections still leave from the SIP port."""
    async with running("0.0.0.0", HOST) as [(a, _), (b, inbox_b)]:
        await a.send(options("tcp", a.port, call_id="any"), Target("tcp", HOST, b.port))
        message, source = await inbox_b.get()
        assert message.call_id == "any"
        assert source.port == a.port
