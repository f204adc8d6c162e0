"""The quick reachability check the flows run before a registration test."""

import asyncio
from collections.abc import AsyncIterator
import socket
from typing import Any
from unittest.mock import patch

import pytest

from custom_components.sip_endpoint.engine.models import ServerSettings
from custom_components.sip_endpoint.engine.reachability import (
    Reach,
    check_reachable,
    next_hop,
)
from custom_components.sip_endpoint.protocol.payloads import Transport
from tests.sipbed.kamailio import Kamailio
from tests.sipbed.netutil import free_tcp_port


class _Responder(asyncio.DatagramProtocol):
    """Records requests; answers each with `answer(request)` unless it returns None."""

    def __init__(self, call_id_of_answer: str | None) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.requests: list[bytes] = []
        self.call_id_of_answer = call_id_of_answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.requests.append(data)
        if self.call_id_of_answer is None:
            return
        lines = data.decode().split("\r\n")
        copied = [
            line
            for line in lines
            if line.split(":")[0] in {"Via", "From", "To", "CSeq"}
        ]
        call_id = self.call_id_of_answer or next(
            line for line in lines if line.startswith("Call-ID:")
        ).removeprefix("Call-ID: ")
        response = "\r\n".join(
            ["SIP/2.0 404 Not Here", *copied, f"Call-ID: {call_id}", "", ""]
        )
        assert self.transport is not None
        self.transport.sendto(response.encode(), addr)


async def _udp_server(
    call_id_of_answer: str | None,
) -> tuple[asyncio.DatagramTransport, _Responder, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Responder(call_id_of_answer), local_addr=("127.0.0.1", 0)
    )
    return transport, protocol, transport.get_extra_info("sockname")[1]


@pytest.fixture
async def silent_udp(socket_enabled: None) -> AsyncIterator[tuple[_Responder, int]]:
    """Bind a UDP port that reads and never answers."""
    transport, protocol, port = await _udp_server(None)
    yield protocol, port
    transport.close()


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.AUTO, Transport.TCP])
async def test_closed_port_is_refused_at_once(
    socket_enabled: None, transport: Transport
) -> None:
    """Port unreachable (UDP) or a refused connection (TCP) ends the check."""
    port = free_tcp_port()
    check = await check_reachable(
        ServerSettings("127.0.0.1", port, transport), "127.0.0.1", timeout=30
    )
    assert check.reach is Reach.REFUSED
    assert check.target == f"127.0.0.1:{port}"
    assert check.transport is (
        Transport.TCP if transport is Transport.TCP else Transport.UDP
    )
    assert not check.via_proxy


async def test_silent_server_gets_retransmitted_options(
    silent_udp: tuple[_Responder, int],
) -> None:
    """No answer: OPTIONS is sent again (T1 doubling), then the check gives up."""
    server, port = silent_udp
    check = await check_reachable(
        ServerSettings("127.0.0.1", port, Transport.UDP), "127.0.0.1", timeout=1.0
    )
    assert check.reach is Reach.SILENT
    assert len(server.requests) == 2  # at 0 and 0.5 s
    request = server.requests[0]
    assert request.startswith(f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n".encode())
    assert b"\r\nVia: SIP/2.0/UDP 127.0.0.1:" in request
    assert server.requests[0] == server.requests[1]  # a retransmission


async def test_any_response_with_our_call_id_counts(socket_enabled: None) -> None:
    """A 404 to OPTIONS still proves a SIP server listens there."""
    transport, _, port = await _udp_server("")
    try:
        check = await check_reachable(
            ServerSettings("127.0.0.1", port, Transport.UDP), "127.0.0.1"
        )
    finally:
        transport.close()
    assert check.reach is Reach.ANSWERED
    assert check.detail == "answered 404 Not Here"


async def test_a_response_to_another_request_is_ignored(socket_enabled: None) -> None:
    """A response that does not carry our Call-ID is not an answer."""
    transport, _, port = await _udp_server("someone-else@elsewhere")
    try:
        check = await check_reachable(
            ServerSettings("127.0.0.1", port, Transport.UDP), "127.0.0.1", timeout=0.6
        )
    finally:
        transport.close()
    assert check.reach is Reach.SILENT


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
async def test_kamailio_answers(kamailio: Kamailio, transport: Transport) -> None:
    """A real SIP server answers OPTIONS over UDP and accepts TCP connections."""
    check = await check_reachable(
        ServerSettings(kamailio.host, kamailio.port, transport), "127.0.0.1"
    )
    assert check.reach is Reach.ANSWERED


async def test_outbound_proxy_is_the_hop_checked(
    kamailio: Kamailio, silent_udp: tuple[_Responder, int]
) -> None:
    """With an outbound proxy, the proxy is checked, not the server."""
    server, port = silent_udp
    settings = ServerSettings(
        "127.0.0.1", port, Transport.UDP, f"sip:127.0.0.1:{kamailio.port};lr"
    )
    check = await check_reachable(settings, "127.0.0.1")
    assert check.reach is Reach.ANSWERED
    assert check.via_proxy
    assert check.target == f"127.0.0.1:{kamailio.port}"
    assert server.requests == []


@pytest.mark.parametrize(
    ("server", "hop"),
    [
        (ServerSettings("pbx.example.com"), ("pbx.example.com", 5060, False)),
        (
            ServerSettings("pbx.example.com", None, Transport.TLS),
            ("pbx.example.com", 5061, False),
        ),
        (ServerSettings("[::1]", 5070), ("::1", 5070, False)),
        (
            ServerSettings("pbx", 5060, Transport.UDP, "sip:proxy.example.com:5070;lr"),
            ("proxy.example.com", 5070, True),
        ),
        (
            ServerSettings("pbx", 5060, Transport.TLS, "<sips:proxy.example.com>"),
            ("proxy.example.com", 5061, True),
        ),
        (
            ServerSettings("pbx", 5060, Transport.UDP, "[2001:db8::1]:5080"),
            ("2001:db8::1", 5080, True),
        ),
        (ServerSettings("pbx", 5060, Transport.UDP, "proxy:port"), None),
        (ServerSettings("pbx", 5060, Transport.UDP, "proxy:70000"), None),
    ],
)
def test_next_hop(server: ServerSettings, hop: tuple[str, int, bool] | None) -> None:
    """The checked hop: the outbound proxy when set, default ports per transport."""
    assert next_hop(server) == hop


async def test_unreadable_proxy_skips_the_check() -> None:
    """A proxy that is no host[:port] is left to the registration test."""
    check = await check_reachable(
        ServerSettings("pbx", 5060, Transport.UDP, "proxy:port"), ""
    )
    assert check.reach is Reach.SKIPPED
    assert check.target == "proxy:port"


async def test_unknown_name_is_unresolved() -> None:
    """A failed lookup is reported as such (edge case: the lookup is faked)."""
    loop = asyncio.get_running_loop()
    with patch.object(
        loop,
        "getaddrinfo",
        side_effect=socket.gaierror(-2, "Name or service not known"),
    ):
        check = await check_reachable(ServerSettings("pbx.invalid", 5060), "")
    assert check.reach is Reach.UNRESOLVED
    assert "Name or service not known" in check.detail
