"""The built-in transport refuses strangers' connections at accept, unread."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipRequest,
    SipResponse,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    Connection,
    SipTransportLayer,
    Source,
)
from custom_components.sip_endpoint.worker.core.refusals import SUMMARY_INTERVAL

pytestmark = pytest.mark.usefixtures("socket_enabled")

ALLOWED = "127.0.0.1"
STRANGER = "127.0.0.2"
SUMMARY = re.compile(r"Dropped (\d+) more malformed SIP inputs from 127\.0\.0\.1 ")
OPTIONS = (
    "OPTIONS sip:2000@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/TCP {host}:5060;branch=z9hG4bKopt\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:9@{host}>;tag=a\r\n"
    "To: <sip:2000@127.0.0.1>\r\n"
    "Call-ID: opt@{host}\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)


class Recording(SipTransportLayer):
    """A layer on loopback that records messages, refusals and closed connections."""

    def __init__(self) -> None:
        """Bind lazily (`start`); accept only 127.0.0.1."""
        super().__init__(self._message, bind_host=ALLOWED, port_min=0, port_max=0)
        self.messages: list[tuple[SipRequest | SipResponse, Source]] = []
        self.delivered = asyncio.Event()
        self.refused: list[tuple[str, str]] = []
        self.closed: list[Connection] = []
        self.source_filter = lambda host: host == ALLOWED
        self.on_refused_connection = lambda host, kind: self.refused.append(
            (host, kind)
        )

    def _message(self, message: SipRequest | SipResponse, source: Source) -> None:
        self.messages.append((message, source))
        self.delivered.set()

    def connection_closed(self, connection: Connection) -> None:
        """Record, then forget, a closed connection."""
        self.closed.append(connection)
        super().connection_closed(connection)


async def _send_and_wait_close(host: str, port: int, data: bytes) -> bytes:
    """Connect from ``host``, send ``data``, return what comes back until EOF."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    received = b""
    try:
        await loop.sock_connect(sock, (ALLOWED, port))
        await loop.sock_sendall(sock, data)
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(sock, 4096):
                received += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return received


async def test_a_strangers_connection_is_closed_before_anything_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A valid OPTIONS over TCP from 127.0.0.2: closed unread, reported, not kept."""
    layer = Recording()
    await layer.start()
    try:
        for _ in range(20):
            data = OPTIONS.format(host=STRANGER).encode()
            assert await _send_and_wait_close(STRANGER, layer.port, data) == b""
        assert layer.messages == []
        assert layer.refused == [(STRANGER, "TCP")] * 20
        # Never registered: nobody is told that a connection of ours closed.
        assert layer.closed == []
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await layer.close()


async def test_the_allowed_source_is_read(caplog: pytest.LogCaptureFixture) -> None:
    """The same OPTIONS from 127.0.0.1 is delivered; broken framing is summarised."""
    began = time.monotonic()
    layer = Recording()
    await layer.start()
    try:
        reader, writer = await asyncio.open_connection(ALLOWED, layer.port)
        writer.write(OPTIONS.format(host=ALLOWED).encode())
        await writer.drain()
        await asyncio.wait_for(layer.delivered.wait(), 5)
        (message, source), *_ = layer.messages
        assert isinstance(message, SipRequest)
        assert source.host == ALLOWED
        writer.close()
        await writer.wait_closed()
        del reader
        caplog.set_level(logging.INFO)
        oversized = (
            b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"
        )
        for _ in range(30):
            await _send_and_wait_close(ALLOWED, layer.port, oversized)
        assert layer.refused == []
    finally:
        await layer.close()  # flushes the summary of what was dropped
    dropped = [r.getMessage() for r in caplog.records if "Dropped" in r.getMessage()]
    # The first, then summaries (one, unless a minute passed) of the other 29.
    assert dropped[0].startswith("Dropped SIP input from 127.0.0.1: TCP")
    summarised = [SUMMARY.match(line) for line in dropped[1:]]
    assert all(summarised)
    assert sum(int(m.group(1)) for m in summarised if m) == 29
    assert len(dropped) <= 3 + (time.monotonic() - began) // SUMMARY_INTERVAL
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
