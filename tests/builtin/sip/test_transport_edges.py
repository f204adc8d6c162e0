"""Edge paths of the built-in engine's SIP transports, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

import pytest

from custom_components.sip_endpoint.worker.builtin.sip import (
    transport as transport_module,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipResponse,
    Via,
    parse_message,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    Connection,
    SipTransportLayer,
    Target,
    TransportError,
    response_target,
)

from .test_transaction import run_virtual
from .test_transport import (
    HOST,
    Inbox,
    UdpPeer,
    closed_port,
    layer,
    listener,
    options,
    raw_tcp,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


def test_unknown_via_transport_is_answered_over_udp() -> None:
    """A Via naming a transport we lack (SCTP) gets its response over UDP (18.2.2)."""
    via = Via("SCTP", "192.0.2.7", 5070, {"branch": "z9hG4bKx"})
    assert response_target(via, None) == Target("udp", "192.0.2.7", 5070)


def test_tls_error_names_plain_ssl_failures() -> None:
    """An SSLError that is not a verification failure is a plain TransportError."""
    err = ssl.SSLError(1, "boom")
    err.reason = "WRONG_VERSION_NUMBER"
    converted = transport_module._tls_error(err)
    assert type(converted) is TransportError
    assert str(converted) == "TLS failed: WRONG_VERSION_NUMBER"
    assert str(transport_module._tls_error(OSError())) == "OSError"


async def test_closing_a_connection_never_opened() -> None:
    """A connection without a stream closes cleanly and then refuses to write."""
    sip = SipTransportLayer(Inbox(), bind_host=HOST, port_min=0, port_max=0)
    connection = Connection(sip, "tcp")
    connection.close()
    assert connection.closed
    with pytest.raises(TransportError, match="connection closed"):
        connection.write(b"x")


async def test_lone_crlf_on_tcp_waits_for_more() -> None:
    """A lone CRLF (half a ping or a keep-alive) neither closes nor blocks framing."""
    inbox = Inbox()
    sip = await layer(inbox)
    try:
        reader, writer = await raw_tcp(sip.port)
        writer.write(b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(options("tcp", 5060, call_id="after-crlf").to_bytes())
        await writer.drain()
        message, source = await inbox.get()
        assert message.call_id == "after-crlf"
        assert source.transport == "tcp"
        assert not reader.at_eof()
        writer.close()
    finally:
        await sip.close()


async def test_udp_send_before_start_is_a_transport_error() -> None:
    """Sending over a layer whose UDP socket is not open raises, naming why."""
    sip = SipTransportLayer(Inbox(), bind_host=HOST, port_min=0, port_max=0)
    with pytest.raises(TransportError, match="UDP not started"):
        await sip.send(b"OPTIONS", Target("udp", HOST, 5060))


async def test_udp_send_after_close_is_a_transport_error() -> None:
    """After ``close`` the UDP socket is closing and a send raises."""
    sip = await layer(Inbox())
    await sip.close()
    with pytest.raises(TransportError, match="UDP"):
        await sip.send(b"OPTIONS", Target("udp", HOST, 5060))


async def test_close_ends_a_dial_in_progress() -> None:
    """``close`` ends a TCP/TLS dial at once: no sender is left waiting on it.

    The TLS handshake waits for a server that accepts and never speaks. Both the
    send that dials and one waiting for that connection fail with a
    :class:`TransportError` as soon as ``close`` returns, and the dialled socket
    is closed (the server reads the end of the stream).
    """
    loop = asyncio.get_running_loop()
    sip = await layer(Inbox())
    server = listener()
    target = Target("tls", HOST, server.getsockname()[1])
    senders = [asyncio.ensure_future(sip.send(b"OPTIONS", target))]
    accepted: list[socket.socket] = []
    try:
        peer, _ = await asyncio.wait_for(loop.sock_accept(server), 5)
        accepted.append(peer)
        senders.append(asyncio.ensure_future(sip.send(b"OPTIONS", target)))
        await asyncio.sleep(0)
        assert not any(sender.done() for sender in senders)
        await sip.close()
        await asyncio.sleep(0)
        assert all(sender.done() for sender in senders)
        for sender in senders:
            assert not sender.cancelled()
            assert isinstance(sender.exception(), TransportError)
        while await asyncio.wait_for(loop.sock_recv(peer, 4096), 5):
            pass  # the ClientHello, then the end of the stream
    finally:
        for sender in senders:
            if not sender.done():
                sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
        await sip.close()
        for sock in (*accepted, server):
            sock.close()


async def test_unsupported_uri_scheme_answered_416_on_udp() -> None:
    """A request whose Request-URI scheme we cannot handle gets 416 (RFC 3261 8.2.2.1)."""
    sip = await layer(Inbox())
    try:
        with UdpPeer() as peer:
            bad = (
                options("udp", peer.port)
                .to_bytes()
                .replace(b"OPTIONS sip:b@127.0.0.1", b"OPTIONS mailto:b@127.0.0.1", 1)
            )
            assert bad.startswith(b"OPTIONS mailto:")
            await peer.send(bad, sip.port)
            response = parse_message(await peer.receive())
            assert isinstance(response, SipResponse)
            assert response.status == 416
            assert not response.reason.startswith("Bad Request")
            assert response.call_id == "c1@test"
    finally:
        await sip.close()


def test_tls_handshake_that_never_ends_times_out() -> None:
    """A server that accepts TCP but never answers the TLS hello fails the send.

    Runs on the virtual clock: the connect timeout passes without waiting for it.
    """

    async def scenario() -> None:
        sip = await layer(Inbox())
        server = listener()
        try:
            target = Target("tls", HOST, server.getsockname()[1])
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(TransportError, match="connection timed out"):
                await sip.send(b"OPTIONS", target)
            assert loop.time() - start == pytest.approx(
                transport_module.CONNECT_TIMEOUT, abs=0.5
            )
        finally:
            server.close()
            await sip.close()

    run_virtual(scenario)


async def test_layer_without_listener_connects_from_an_ephemeral_port() -> None:
    """A layer that listens nowhere still dials TCP (from any port) and reports refusals."""
    inbox = Inbox()
    server = await layer(inbox)
    client = SipTransportLayer(Inbox(), bind_host=HOST, port_min=0, port_max=0)
    refused_port = closed_port()
    try:
        await client.send(
            options("tcp", 5060, call_id="unbound"), Target("tcp", HOST, server.port)
        )
        message, source = await inbox.get()
        assert message.call_id == "unbound"
        assert source.port not in (0, server.port)
        with pytest.raises(TransportError):
            await client.send(b"OPTIONS", Target("tcp", HOST, refused_port))
    finally:
        await client.close()
        await server.close()


async def test_no_free_port_for_tls_is_logged_and_tls_stays_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the range has no port left for TLS, UDP/TCP work and TLS is off (warned)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for _ in range(20):
        blocker = socket.socket()
        blocker.bind((HOST, 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        sip = SipTransportLayer(
            Inbox(),
            bind_host=HOST,
            port_min=taken - 1,
            port_max=taken,
            tls_server_context=context,
        )
        try:
            await sip.start()
        except TransportError:
            blocker.close()
            continue  # taken - 1 is busy too: try another pair
        try:
            assert sip.port == taken - 1
            assert sip.tls_port is None
            assert "No free port for the TLS server" in caplog.text
        finally:
            await sip.close()
            blocker.close()
        return
    pytest.fail("no pair of neighbouring ports found")


@pytest.mark.parametrize(
    ("host", "port", "reason"),
    [
        ("::1", 5060, "::1:5060: Address family"),  # an IPv4 socket, an IPv6 peer
        ("127.255.255.255", 5060, "Permission denied"),  # broadcast: EACCES
        ("127.0.0.1", 0, "Invalid argument"),  # port 0: EINVAL
    ],
)
async def test_udp_send_error_is_a_transport_error(
    caplog: pytest.LogCaptureFixture, host: str, port: int, reason: str
) -> None:
    """A datagram the kernel refuses to send raises, naming why (RFC 3261 18.4).

    asyncio hands sendto's OSError to the protocol instead of raising it; the
    layer catches it there, so the sender sees a :class:`TransportError` (the
    transaction then ends with 503) rather than waiting for a timeout. Nothing
    leaves the machine: each of these sends is refused before it goes out.
    """
    caplog.set_level(logging.DEBUG, logger=transport_module.__name__)
    sip = await layer(Inbox())
    try:
        with pytest.raises(TransportError, match=f"cannot send to .*{reason}"):
            await sip.send(b"OPTIONS", Target("udp", host, port))
        assert "UDP error" not in caplog.text
        # The socket still works afterwards.
        with UdpPeer() as peer:
            await sip.send(b"OPTIONS", Target("udp", HOST, peer.port))
            assert await peer.receive() == b"OPTIONS"
    finally:
        await sip.close()


async def test_udp_error_outside_a_send_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An error asyncio reports later (a buffered datagram) is logged, not raised."""
    caplog.set_level(logging.DEBUG, logger=transport_module.__name__)
    sip = await layer(Inbox())
    try:
        udp = sip._udp
        assert udp is not None
        udp.error_received(ConnectionRefusedError(111, "Connection refused"))
        assert "UDP error: [Errno 111] Connection refused" in caplog.text
        await sip.send(b"OPTIONS", Target("udp", HOST, sip.port))  # no stale error
    finally:
        await sip.close()


async def test_udp_to_a_name_before_start_is_a_transport_error() -> None:
    """A host name is resolved (any family) and the send then fails: UDP not started."""
    sip = SipTransportLayer(Inbox(), bind_host=HOST, port_min=0, port_max=0)
    with pytest.raises(TransportError, match="UDP not started"):
        await sip.send(b"OPTIONS", Target("udp", "localhost", 5060))


async def test_empty_via_line_request_answered_400_response_dropped() -> None:
    """An empty ``Via:`` line beside real ones is a malformed Via (RFC 3261 20.42).

    The request gets a 400 (routed by its real top Via, no empty Via echoed) and is
    not delivered; a response with one is dropped; a good request still gets in.
    """
    inbox = Inbox()
    sip = await layer(inbox)
    try:
        with UdpPeer() as peer:
            request = options("udp", peer.port, call_id="empty-via").to_bytes()
            head, _, rest = request.partition(b"\r\n")
            bad = (
                head
                + b"\r\n"
                + rest.replace(b"\r\nMax-Forwards", b"\r\nVia: \r\nMax-Forwards")
            )
            assert b"\r\nVia: \r\n" in bad
            await peer.send(bad, sip.port)
            response = parse_message(await peer.receive())
            assert isinstance(response, SipResponse)
            assert response.status == 400
            assert response.call_id == "empty-via"
            assert response.headers.count("via") == 1
            assert response.top_via.received == HOST
            answer = SipResponse(200, None, parse_message(request).headers)
            answer_bytes = answer.to_bytes()
            status_line, _, answer_rest = answer_bytes.partition(b"\r\n")
            broken = status_line + b"\r\nVia:\r\n" + answer_rest
            await peer.send(broken, sip.port)
            good = options("udp", peer.port, call_id="good").to_bytes()
            await peer.send(good, sip.port)
            message, _ = await inbox.get()
            assert message.call_id == "good"
            assert inbox.items.empty()
    finally:
        await sip.close()


async def test_a_cancelled_sender_leaves_the_dial_to_the_others() -> None:
    """Cancelling the send that started a dial cancels that send only.

    The dial (a TLS handshake with a silent server) goes on for the other sender,
    which ``close`` then releases with a :class:`TransportError`; after ``close``
    a TCP send fails at once, without dialling.
    """
    loop = asyncio.get_running_loop()
    sip = await layer(Inbox())
    server = listener()
    target = Target("tls", HOST, server.getsockname()[1])
    first = asyncio.ensure_future(sip.send(b"OPTIONS", target))
    accepted: list[socket.socket] = []
    try:
        peer, _ = await asyncio.wait_for(loop.sock_accept(server), 5)
        accepted.append(peer)
        second = asyncio.ensure_future(sip.send(b"OPTIONS", target))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0)
        assert not second.done()
        await sip.close()
        await asyncio.sleep(0)
        assert isinstance(second.exception(), TransportError)
        with pytest.raises(TransportError, match="transport closed"):
            await sip.send(b"OPTIONS", Target("tcp", HOST, server.getsockname()[1]))
    finally:
        first.cancel()
        await sip.close()
        for sock in (*accepted, server):
            sock.close()
