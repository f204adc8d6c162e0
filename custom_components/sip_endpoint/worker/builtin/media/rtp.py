"""RTP (RFC 3550) packets, one call's RTP socket, and the 20 ms send clock.

`decode` turns a datagram into an `RtpPacket` or raises `RtpError` (and nothing else).
`RtpSocket` is one call's UDP socket: it sends packets with its own SSRC and sequence
numbers, and hands received packets to ``on_packet`` after the source check of
symmetric RTP (RFC 4961): only packets from the host the SDP gave are taken, and
the first one fixes ("latches") the source; from then on only that source (or the
exact address the SDP gave, which wins the latch back) is heard, and packets are sent
to it, so a peer behind NAT is reached where it really is.
`Pacer` calls a function every 20 ms at absolute deadlines of the loop's clock, so
late callbacks do not accumulate drift.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import ipaddress
import logging
import random
import socket
import struct

_LOGGER = logging.getLogger(__name__)

VERSION = 2
HEADER = struct.Struct("!BBHII")
MAX_PACKET = 4096
SEQUENCE_MOD = 1 << 16
TIMESTAMP_MOD = 1 << 32
OS_PORT_ATTEMPTS = 16
RANGE_PORT_ATTEMPTS = 64
DSCP_EF = 0xB8


class RtpError(ValueError):
    """A datagram that is not an RTP packet we can read."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet (CSRCs, header extension and padding are dropped on decode)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def encode(self) -> bytes:
        """Return the packet's bytes."""
        return (
            HEADER.pack(
                VERSION << 6,
                (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                self.sequence % SEQUENCE_MOD,
                self.timestamp % TIMESTAMP_MOD,
                self.ssrc & 0xFFFFFFFF,
            )
            + self.payload
        )


def decode(data: bytes) -> RtpPacket:
    """Parse a datagram; raise RtpError when it is not a well-formed RTP packet."""
    if len(data) < HEADER.size:
        raise RtpError("shorter than an RTP header")
    if len(data) > MAX_PACKET:
        raise RtpError("datagram too large")
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != VERSION:
        raise RtpError("not RTP version 2")
    offset = HEADER.size + 4 * (first & 0x0F)
    end = len(data)
    if first & 0x10:
        if end < offset + 4:
            raise RtpError("truncated header extension")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpError("zero padding length")
        end -= padding
    if offset > end:
        raise RtpError("truncated packet")
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
    )


def _host_of(address: tuple[str | int, ...]) -> str | None:
    """Return the normalised IP of a socket address (scope ids dropped)."""
    host = str(address[0]).split("%", 1)[0]
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def _bind(host: str, port_range: tuple[int, int] | None) -> socket.socket:
    """Return a UDP socket bound on ``host`` at an even port (see `RtpSocket.open`)."""
    family = (
        socket.AF_INET6
        if ipaddress.ip_address(host.split("%", 1)[0]).version == 6
        else socket.AF_INET
    )
    if port_range is None:
        candidates = [0] * OS_PORT_ATTEMPTS
    else:
        low, high = port_range
        if not 0 < low <= high <= 65535:
            raise ValueError(f"bad RTP port range {port_range}")
        evens = list(range(low + low % 2, high + 1, 2))
        if not evens:
            raise ValueError(f"no even port in {port_range}")
        start = random.randrange(len(evens))
        candidates = (evens[start:] + evens[:start])[:RANGE_PORT_ATTEMPTS]
    rejected: list[socket.socket] = []
    last_error: str | None = None  # its text: the error itself would hold this frame
    try:
        while candidates:
            port = candidates.pop(0)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as err:
                sock.close()
                last_error = str(err)
                continue
            bound = sock.getsockname()[1]
            if bound % 2 and port == 0:
                rejected.append(sock)  # keep it bound so the OS offers another one
                # Its even neighbour is usually free too: try it before asking the
                # OS again (16 odd ports in a row, 1 in 65536, failed the call).
                candidates.insert(0, bound - 1)
                continue
            sock.setblocking(False)
            try:
                if family == socket.AF_INET:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DSCP_EF)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, DSCP_EF)
            except OSError:
                pass
            return sock
    finally:
        for sock in rejected:
            sock.close()
    raise OSError(
        f"no free RTP port on {host}"
        + (f" in {port_range[0]}-{port_range[1]}" if port_range else "")
        + (f": {last_error}" if last_error else "")
    )


@dataclass(slots=True)
class RtpCounters:
    """Packets and bytes through one socket."""

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_dropped: int = 0
    send_errors: int = 0


class RtpSocket(asyncio.DatagramProtocol):
    """One call's RTP over UDP, with symmetric RTP."""

    def __init__(self) -> None:
        """Create an unbound socket protocol; use `open`."""
        self.ssrc = random.getrandbits(32)
        self.on_packet: Callable[[RtpPacket], None] | None = None
        self.counters = RtpCounters()
        self._sequence = random.getrandbits(16)
        self._transport: asyncio.DatagramTransport | None = None
        self._local: tuple[str, int] = ("", 0)
        self._expected_host: str | None = None
        self._signalled: tuple[str, int] | None = None
        self._latched: tuple[str, int] | None = None
        self._payload_types: frozenset[int] = frozenset()
        self._accept_any_source = False

    @classmethod
    async def open(
        cls, bind_host: str, port_range: tuple[int, int] | None = None
    ) -> "RtpSocket":
        """Bind on ``bind_host``: an even free port of the inclusive range, else any.

        Without a range the OS chooses (even ports are preferred, as RFC 3550 asks).
        Raises OSError when no port can be bound.
        """
        sock = _bind(bind_host, port_range)
        protocol = cls()
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport
        name = transport.get_extra_info("sockname")
        self._local = (str(name[0]), int(name[1]))

    @property
    def local_address(self) -> tuple[str, int]:
        """Return the bound host and port."""
        return self._local

    @property
    def remote(self) -> tuple[str, int] | None:
        """Return where packets go: the latched source, else the SDP's address."""
        return self._latched or self._signalled

    @property
    def latched(self) -> bool:
        """Return whether the peer's source address has been learnt."""
        return self._latched is not None

    def set_remote(
        self,
        address: tuple[str, int] | None,
        payload_types: frozenset[int],
        *,
        accept_any_source: bool = False,
    ) -> None:
        """Set the peer's SDP address and payload types.

        A new address (a re-INVITE moving the stream) forgets the latched source.
        With ``accept_any_source`` the first packet from any address is latched
        (for peers behind NAT that advertise a private address).
        """
        if address != self._signalled:
            self._latched = None
        self._signalled = address
        self._expected_host = _host_of(address) if address is not None else None
        self._payload_types = payload_types
        self._accept_any_source = accept_any_source

    def send(
        self, payload: bytes, *, payload_type: int, timestamp: int, marker: bool
    ) -> bool:
        """Send one packet with the next sequence number; False when not sent."""
        target = self.remote
        if target is None or self._transport is None or self._transport.is_closing():
            return False
        packet = RtpPacket(
            payload_type, self._sequence, timestamp, self.ssrc, payload, marker
        ).encode()
        self._sequence = (self._sequence + 1) % SEQUENCE_MOD
        self._transport.sendto(packet, target)
        self.counters.packets_sent += 1
        self.counters.bytes_sent += len(packet)
        return True

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """Check the source, decode, latch, then hand the packet on."""
        counters = self.counters
        latched = self._latched
        if latched is not None and addr[0] == latched[0] and addr[1] == latched[1]:
            host: str | None = latched[0]  # the usual case, without parsing the address
        else:
            host = _host_of(addr)
        source = (host, int(addr[1])) if host is not None else None
        if self._latched is not None:
            accepted = source in (self._latched, self._signalled)
        else:
            accepted = source is not None and (
                self._accept_any_source
                or (self._expected_host is not None and host == self._expected_host)
            )
        if not accepted or source is None:
            counters.packets_dropped += 1
            return
        try:
            packet = decode(data)
        except RtpError:
            counters.packets_dropped += 1
            return
        if packet.payload_type not in self._payload_types:
            counters.packets_dropped += 1
            return
        if self._latched != source:
            self._latched = source
        counters.packets_received += 1
        counters.bytes_received += len(data)
        if self.on_packet is not None:
            try:
                self.on_packet(packet)
            except Exception:
                _LOGGER.exception("RTP packet handler failed")

    def error_received(self, exc: Exception) -> None:
        """Count ICMP errors (the peer's port is closed); keep going."""
        self.counters.send_errors += 1

    def close(self) -> None:
        """Close the socket."""
        self.on_packet = None
        if self._transport is not None:
            self._transport.close()


class Pacer:
    """Calls ``tick(skipped)`` every ``interval`` seconds at absolute deadlines.

    Deadlines are ``start + n * interval`` on the loop's clock, so a late callback
    shortens the next wait instead of shifting every later one. After a short stall
    the missed ticks run back to back; after a stall longer than ``max_catch_up``
    ticks they are skipped and ``tick`` learns how many were skipped (to move the RTP
    timestamp on).
    """

    def __init__(
        self,
        tick: Callable[[int], None],
        interval: float = 0.02,
        max_catch_up: int = 5,
    ) -> None:
        """Prepare the clock; `start` runs it."""
        self._tick = tick
        self._interval = interval
        self._max_catch_up = max_catch_up
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """Return whether the clock runs."""
        return self._handle is not None

    def start(self) -> None:
        """Run the first tick now and the next ones every interval."""
        if self._handle is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._next = self._loop.time()
        self._handle = self._loop.call_at(self._next, self._run)

    def stop(self) -> None:
        """Stop the clock."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Stop for good and let go of ``tick``.

        ``tick`` is usually a method of the pacer's owner, which holds the pacer: a
        reference cycle that only the cyclic garbage collector would free, late.
        """
        self.stop()
        self._tick = _no_tick

    def _run(self) -> None:
        assert self._loop is not None
        # Deadlines passed, this one included (the epsilon absorbs float error).
        due = int((self._loop.time() - self._next) / self._interval + 1e-6) + 1
        skipped = 0
        if due > self._max_catch_up:
            skipped, due = due - 1, 1
        self._next += (due + skipped) * self._interval
        self._handle = self._loop.call_at(self._next, self._run)
        for index in range(due):
            try:
                self._tick(skipped if index == 0 else 0)
            except Exception:
                _LOGGER.exception("Media clock tick failed")
            if not self.running:
                return


def _no_tick(_skipped: int) -> None:
    """Do nothing: the tick of a closed pacer."""
