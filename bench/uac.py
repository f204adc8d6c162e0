"""A minimal SIP caller for the benchmarks: INVITE, ACK, BYE over UDP, and RTP.

Not a user agent: just enough of RFC 3261 to place calls straight at a worker's SIP
port from 127.0.0.1 (the registrar's address, so the source filter lets it in), and a
PCMU stream paced at 20 ms by absolute deadlines, with the arrival time of every RTP
packet the worker sends back.
"""

import asyncio
from dataclasses import dataclass, field
import itertools
import secrets
import struct
import time
from typing import Any

SDP = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {rtp} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
"""
FRAME_SECONDS = 0.02
ANSWER_TIMEOUT = 35.0  # Timer F and a little
PCMU_SILENCE = b"\xff" * 160


class Uac(asyncio.DatagramProtocol):
    """SIP over UDP: requests out, responses into a queue with their arrival time."""

    def __init__(self) -> None:
        """Start without a transport."""
        self.transport: asyncio.DatagramTransport | None = None
        self.responses: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Queue a response; requests from the worker (a BYE) are answered 200."""
        if data.startswith(b"SIP/2.0 "):
            self.responses.put_nowait((time.perf_counter(), data))
        elif data.startswith(b"BYE ") and self.transport is not None:
            self.transport.sendto(ok_for(data), addr)

    def send(self, text: str, target: tuple[str, int]) -> float:
        """Send one request; return when it was sent."""
        assert self.transport is not None
        sent = time.perf_counter()
        self.transport.sendto(text.replace("\n", "\r\n").encode(), target)
        return sent

    async def final(
        self, call_id: str, method: str
    ) -> tuple[float, int, dict[str, str]]:
        """Wait for the final response to ``method`` of ``call_id`` (at most 35 s)."""
        async with asyncio.timeout(ANSWER_TIMEOUT):
            return await self._final(call_id, method)

    async def _final(
        self, call_id: str, method: str
    ) -> tuple[float, int, dict[str, str]]:
        while True:
            arrived, data = await self.responses.get()
            code, headers = parse_response(data)
            if (
                code >= 200
                and headers.get("cseq", "").endswith(method)
                and headers.get("call-id") == call_id
            ):
                return arrived, code, headers
            if code >= 200 and headers.get("call-id") != call_id:
                self.responses.put_nowait((arrived, data))
                await asyncio.sleep(0.001)


def parse_response(data: bytes) -> tuple[int, dict[str, str]]:
    """Return the status code and the first value of each header."""
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    code = int(head[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return code, headers


def ok_for(request: bytes) -> bytes:
    """Return a 200 OK for a request (its Via, From, To, Call-ID, CSeq copied)."""
    lines = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    kept = [
        line
        for line in lines[1:]
        if line.split(b":", 1)[0].strip().lower()
        in (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")
    ]
    return b"\r\n".join([b"SIP/2.0 200 OK", *kept, b"Content-Length: 0", b"", b""])


def request(
    method: str, uri: str, local: int, call_id: str, cseq: int, **extra: str
) -> str:
    """Build a SIP request (LF line ends; `Uac.send` turns them into CRLF)."""
    body = extra.pop("body", "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:9001@127.0.0.1>;tag={extra.pop('from_tag')}",
        f"To: {extra.pop('to')}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:9001@127.0.0.1:{local}>",
        *(f"{name}: {value}" for name, value in extra.items()),
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}")
    return "\n".join(lines) + "\n\n" + body


@dataclass
class Dialog:
    """What the caller needs to end an answered call."""

    call_id: str
    from_tag: str
    to: str
    contact: str


async def place_call(
    uac: Uac, target: tuple[str, int], extension: str, local: int, rtp_port: int
) -> tuple[float, Dialog]:
    """INVITE ``extension`` at ``target``; return INVITE->200 in ms and the dialog."""
    call_id = f"bench-{secrets.token_hex(6)}@127.0.0.1"
    from_tag = secrets.token_hex(4)
    uri = f"sip:{extension}@{target[0]}:{target[1]}"
    sent = uac.send(
        request(
            "INVITE",
            uri,
            local,
            call_id,
            1,
            from_tag=from_tag,
            to=f"<sip:{extension}@127.0.0.1>",
            body=SDP.format(rtp=rtp_port),
        ),
        target,
    )
    arrived, code, headers = await uac.final(call_id, "INVITE")
    if code != 200:
        raise RuntimeError(f"INVITE answered {code}")
    contact = headers["contact"].split("<", 1)[-1].split(">", 1)[0]
    dialog = Dialog(call_id, from_tag, headers["to"], contact)
    uac.send(
        request("ACK", contact, local, call_id, 1, from_tag=from_tag, to=dialog.to),
        target,
    )
    return (arrived - sent) * 1000, dialog


async def end_call(
    uac: Uac, target: tuple[str, int], dialog: Dialog, local: int
) -> None:
    """Send BYE and wait for its final response."""
    uac.send(
        request(
            "BYE",
            dialog.contact,
            local,
            dialog.call_id,
            2,
            from_tag=dialog.from_tag,
            to=dialog.to,
        ),
        target,
    )
    await uac.final(dialog.call_id, "BYE")


@dataclass
class RtpPeer(asyncio.DatagramProtocol):
    """Sends PCMU silence every 20 ms to where the worker's RTP comes from.

    Keeps the arrival time of every packet the worker sends (on loopback, arrival is
    the worker's send time plus a few microseconds).
    """

    arrivals: list[float] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    peer: tuple[str, int] | None = None
    _task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Note the arrival; latch the worker's address for our own stream."""
        self.arrivals.append(time.perf_counter())
        if self.peer is None:
            self.peer = (str(addr[0]), int(addr[1]))
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ssrc = secrets.randbits(32)
        sequence = 0
        while self.transport is not None and self.peer is not None:
            header = struct.pack(
                "!BBHII",
                0x80,
                0,
                sequence & 0xFFFF,
                (sequence * 160) & 0xFFFFFFFF,
                ssrc,
            )
            self.transport.sendto(header + PCMU_SILENCE, self.peer)
            sequence += 1
            await asyncio.sleep(
                max(0.0, start + sequence * FRAME_SECONDS - loop.time())
            )

    def close(self) -> None:
        """Stop sending and close the socket."""
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def intervals_ms(self, since: float) -> list[float]:
        """Return the gaps between packets that arrived after ``since``, in ms."""
        times = [t for t in self.arrivals if t >= since]
        return [(b - a) * 1000 for a, b in itertools.pairwise(times)]
