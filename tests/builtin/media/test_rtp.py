"""RTP packets, the RTP socket's symmetric RTP, and the media clock."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
import socket
import struct
from typing import cast

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.sip_endpoint.worker.builtin.media.rtp import (
    MAX_PACKET,
    Pacer,
    RtpError,
    RtpPacket,
    RtpSocket,
    _host_of,
    decode,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOST = "127.0.0.1"


def test_packet_round_trip() -> None:
    packet = RtpPacket(8, 65535, 2**32 - 1, 0xDEADBEEF, b"\xd5" * 160, marker=True)
    data = packet.encode()
    assert len(data) == 172
    assert data[:2] == b"\x80\x88"
    assert decode(data) == packet


def test_sequence_and_timestamp_wrap_on_encode() -> None:
    packet = decode(RtpPacket(0, 65536 + 5, 2**32 + 7, 1, b"").encode())
    assert (packet.sequence, packet.timestamp, packet.marker) == (5, 7, False)


def test_csrcs_extension_and_padding_are_skipped() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0, 1, 2, 3)
    csrcs = struct.pack("!II", 10, 11)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = header + csrcs + extension + b"abc" + b"\x00\x00\x03"
    packet = decode(data)
    assert packet.payload == b"abc"
    assert (packet.sequence, packet.timestamp, packet.ssrc) == (1, 2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter"),
        (b"\x80" * 11, "shorter"),
        (b"\x40" + b"\x00" * 11, "version"),
        (b"\x80" + b"\x00" * (MAX_PACKET), "too large"),
        (b"\x8f" + b"\x00" * 20, "truncated packet"),
        (b"\x90" + b"\x00" * 12, "extension"),
        (b"\x90" + b"\x00" * 13 + b"\xff\xff", "truncated packet"),
        (b"\xa0" + b"\x00" * 11, "zero padding"),
        (b"\xa0" + b"\x00" * 11 + b"\x20", "truncated packet"),
    ],
)
def test_garbage_raises_rtp_error(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        decode(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_datagrams_only_raise_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        packet = decode(data)
        assert len(packet.payload) <= len(data) - 12


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    """Yield a raw UDP socket on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(2)
    yield sock
    sock.close()


@pytest.fixture
async def rtp() -> AsyncIterator[RtpSocket]:
    """Yield an RTP socket on 127.0.0.1 (OS-chosen port)."""
    opened = await RtpSocket.open(HOST)
    yield opened
    opened.close()


async def test_open_binds_even_ports_in_a_range() -> None:
    first = await RtpSocket.open(HOST, (40000, 40100))
    second = await RtpSocket.open(HOST, (40000, 40100))
    try:
        ports = {first.local_address[1], second.local_address[1]}
        assert len(ports) == 2
        assert all(port % 2 == 0 and 40000 <= port <= 40100 for port in ports)
    finally:
        first.close()
        second.close()


async def test_open_prefers_an_even_os_port(rtp: RtpSocket) -> None:
    assert rtp.local_address[0] == HOST
    assert rtp.local_address[1] % 2 == 0


def _odd_port_with_a_free_neighbour() -> int:
    """Return an odd UDP port on HOST whose even neighbour (port - 1) is free."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1]) | 1
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (port, port - 1):
                    sock = stack.enter_context(
                        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    )
                    sock.bind((HOST, candidate))
            except OSError:
                continue
        return port
    raise AssertionError("no odd port with a free even neighbour")


async def test_an_odd_os_port_gives_way_to_its_even_neighbour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the OS offers an odd port, the even port below it is tried next."""
    odd = _odd_port_with_a_free_neighbour()
    real_socket = socket.socket
    asked: list[int] = []

    class OddFirstSocket(socket.socket):
        """The OS's choice (port 0) is the odd port, every time."""

        def bind(self, address: object) -> None:
            host, port = cast("tuple[str, int]", address)
            asked.append(port)
            super().bind((host, port or odd))

    monkeypatch.setattr(socket, "socket", OddFirstSocket)
    opened = await RtpSocket.open(HOST)
    monkeypatch.setattr(socket, "socket", real_socket)
    try:
        assert opened.local_address[1] == odd - 1
        assert asked == [0, odd - 1]
    finally:
        opened.close()


async def test_open_fails_clearly_when_the_range_is_taken() -> None:
    taken = await RtpSocket.open(HOST, (40200, 40201))
    try:
        with pytest.raises(
            OSError, match=r"no free RTP port on 127\.0\.0\.1 in 40200-40201"
        ):
            await RtpSocket.open(HOST, (40200, 40201))
        with pytest.raises(ValueError, match="no even port"):
            await RtpSocket.open(HOST, (40201, 40201))
    finally:
        taken.close()


async def test_ipv6_socket() -> None:
    try:
        opened = await RtpSocket.open("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        assert opened.local_address[0] == "::1"
    finally:
        opened.close()


async def receive(sock: socket.socket) -> tuple[bytes, tuple[str, int]]:
    """Receive one datagram without blocking the loop."""
    data, address = await asyncio.to_thread(sock.recvfrom, 2048)
    return data, address


async def test_symmetric_rtp_latches_the_first_source(
    rtp: RtpSocket, peer: socket.socket
) -> None:
    received: list[RtpPacket] = []
    rtp.on_packet = received.append
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        signalled_port = probe.getsockname()[1]  # what the SDP said (free again)
    rtp.set_remote((HOST, signalled_port), frozenset({0}))
    assert rtp.remote == (HOST, signalled_port)

    peer.sendto(RtpPacket(0, 1, 160, 7, b"\xff" * 160).encode(), rtp.local_address)
    await asyncio.sleep(0.1)
    assert [p.sequence for p in received] == [1]
    assert rtp.latched is True
    assert rtp.remote == peer.getsockname()

    assert rtp.send(b"\xff" * 160, payload_type=0, timestamp=320, marker=True)
    data, _ = await receive(peer)
    packet = decode(data)
    assert (packet.payload_type, packet.timestamp, packet.marker) == (0, 320, True)
    assert packet.ssrc == rtp.ssrc

    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind((HOST, 0))
    try:
        other.sendto(RtpPacket(0, 2, 320, 7, b"\xff").encode(), rtp.local_address)
        await asyncio.sleep(0.1)
    finally:
        other.close()
    assert [p.sequence for p in received] == [1]
    assert rtp.counters.packets_dropped == 1

    # A packet from the exact address the SDP gave takes the latch back.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as signalled:
        signalled.bind((HOST, signalled_port))
        signalled.sendto(RtpPacket(0, 3, 480, 7, b"\xff").encode(), rtp.local_address)
        await asyncio.sleep(0.1)
    assert [p.sequence for p in received] == [1, 3]
    assert rtp.remote == (HOST, signalled_port)
    peer.sendto(RtpPacket(0, 4, 640, 7, b"\xff").encode(), rtp.local_address)
    await asyncio.sleep(0.1)
    assert [p.sequence for p in received] == [1, 3]
    rtp.set_remote((HOST, 1), frozenset({0}))
    peer.sendto(RtpPacket(0, 5, 800, 7, b"\xff").encode(), rtp.local_address)
    await asyncio.sleep(0.1)
    assert rtp.remote == peer.getsockname()

    # A re-INVITE with the same address keeps the latch; a new address drops it.
    rtp.set_remote((HOST, 1), frozenset({0}))
    assert rtp.remote == peer.getsockname()
    rtp.set_remote((HOST, 3), frozenset({0}))
    assert rtp.remote == (HOST, 3)


async def test_packets_from_another_host_are_not_heard(
    rtp: RtpSocket, peer: socket.socket
) -> None:
    received: list[RtpPacket] = []
    rtp.on_packet = received.append
    rtp.set_remote(("127.0.0.2", 40000), frozenset({0}))
    peer.sendto(RtpPacket(0, 1, 160, 7, b"\xff").encode(), rtp.local_address)
    await asyncio.sleep(0.1)
    assert received == []
    assert not rtp.latched
    assert rtp.counters.packets_dropped == 1

    rtp.set_remote(("127.0.0.2", 40000), frozenset({0}), accept_any_source=True)
    peer.sendto(RtpPacket(0, 2, 160, 7, b"\xff").encode(), rtp.local_address)
    await asyncio.sleep(0.1)
    assert [p.sequence for p in received] == [2]
    assert rtp.remote == peer.getsockname()


async def test_garbage_and_foreign_payload_types_are_dropped(
    rtp: RtpSocket, peer: socket.socket
) -> None:
    received: list[RtpPacket] = []
    rtp.on_packet = received.append
    rtp.set_remote((HOST, peer.getsockname()[1]), frozenset({8, 101}))
    for data in (b"junk", RtpPacket(0, 1, 0, 7, b"").encode(), b"\x80\xc8" + bytes(30)):
        peer.sendto(data, rtp.local_address)
    peer.sendto(
        RtpPacket(101, 2, 0, 7, b"\x01\x0a\x00\xa0").encode(), rtp.local_address
    )
    await asyncio.sleep(0.1)
    assert [p.payload_type for p in received] == [101]
    assert rtp.counters.packets_dropped == 3
    assert rtp.counters.packets_received == 1


async def test_handler_errors_do_not_escape(
    rtp: RtpSocket, peer: socket.socket
) -> None:
    def explode(packet: RtpPacket) -> None:
        raise RuntimeError("boom")

    rtp.on_packet = explode
    rtp.set_remote((HOST, peer.getsockname()[1]), frozenset({0}))
    peer.sendto(RtpPacket(0, 1, 0, 7, b"").encode(), rtp.local_address)
    await asyncio.sleep(0.1)
    assert rtp.counters.packets_received == 1


async def test_nothing_is_sent_without_a_remote(rtp: RtpSocket) -> None:
    assert not rtp.send(b"", payload_type=0, timestamp=0, marker=False)
    rtp.close()
    rtp.set_remote((HOST, 9), frozenset({0}))
    assert not rtp.send(b"", payload_type=0, timestamp=0, marker=False)


async def test_pacer_ticks_and_skips_after_a_stall() -> None:
    ticks: list[int] = []
    pacer = Pacer(ticks.append, interval=0.01, max_catch_up=3)
    pacer.start()
    pacer.start()  # idempotent
    await asyncio.sleep(0.055)
    count = len(ticks)
    # Every deadline passed is a tick or counted as skipped (a loaded machine may
    # have stalled the loop already).
    assert count + sum(ticks) >= 5
    # Block the loop for far longer than max_catch_up intervals.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
        blocker.settimeout(0.1)
        with contextlib.suppress(TimeoutError):
            blocker.recv(1)
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    pacer.stop()
    assert pacer.running is False
    assert any(skipped >= 5 for skipped in ticks[count:])
    frozen = len(ticks)
    await asyncio.sleep(0.03)
    assert len(ticks) == frozen


async def test_pacer_survives_a_failing_tick() -> None:
    calls: list[int] = []

    def tick(skipped: int) -> None:
        calls.append(skipped)
        raise RuntimeError("boom")

    pacer = Pacer(tick, interval=0.01)
    pacer.start()
    await asyncio.sleep(0.035)
    pacer.stop()
    assert len(calls) >= 2


class FakeLoop:
    """A loop clock the test moves by hand; call_at only records the next callback."""

    def __init__(self) -> None:
        """Start at time 100."""
        self.now = 100.0
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        """Return the fake time."""
        return self.now

    def get_debug(self) -> bool:
        """Answer what asyncio.Handle asks."""
        return False

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """Accept what TimerHandle.cancel tells."""

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Record the callback."""
        self.scheduled.append((when, callback))
        return asyncio.TimerHandle(
            when, callback, (), cast("asyncio.AbstractEventLoop", self)
        )


def test_pacer_deadlines_do_not_drift_when_callbacks_run_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = FakeLoop()
    monkeypatch.setattr(asyncio, "get_running_loop", lambda: loop)
    ticks: list[int] = []
    pacer = Pacer(ticks.append, interval=0.02, max_catch_up=5)
    pacer.start()
    for _ in range(200):
        when, callback = loop.scheduled[-1]
        loop.now = when + 0.004  # every callback runs 4 ms late
        callback()
    deadlines = [when for when, _ in loop.scheduled]
    assert deadlines == pytest.approx([100 + 0.02 * n for n in range(201)])
    assert ticks == [0] * 200

    # A 30 ms late callback catches up (two ticks at once), still on the grid.
    when, callback = loop.scheduled[-1]
    loop.now = when + 0.03
    callback()
    assert ticks[200:] == [0, 0]
    assert loop.scheduled[-1][0] == pytest.approx(when + 0.04)

    # A 300 ms stall is skipped, not replayed, and the grid holds.
    when, callback = loop.scheduled[-1]
    loop.now = when + 0.3
    callback()
    assert ticks[202:] == [15]
    assert loop.scheduled[-1][0] == pytest.approx(when + 0.32)
    pacer.stop()


@pytest.mark.parametrize(
    ("address", "host"),
    [
        (("127.0.0.1", 1), "127.0.0.1"),
        (("::ffff:127.0.0.1", 1, 0, 0), "127.0.0.1"),
        (("fe80::1%lo", 1, 0, 1), "fe80::1"),
        (("2001:DB8::1", 1, 0, 0), "2001:db8::1"),
        (("not-an-address", 1), None),
    ],
)
def test_source_addresses_are_normalised(
    address: tuple[str | int, ...], host: str | None
) -> None:
    assert _host_of(address) == host


@pytest.mark.parametrize("port_range", [(0, 10), (10, 5), (65534, 65536)])
async def test_bad_port_ranges_are_refused(port_range: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="bad RTP port range"):
        await RtpSocket.open(HOST, port_range)


async def test_icmp_errors_and_odd_sources_are_counted(rtp: RtpSocket) -> None:
    rtp.error_received(ConnectionRefusedError())
    assert rtp.counters.send_errors == 1
    rtp.set_remote((HOST, 9), frozenset({0}), accept_any_source=True)
    rtp.datagram_received(RtpPacket(0, 1, 0, 7, b"").encode(), ("bogus", 9))
    assert rtp.counters.packets_dropped == 1
    assert rtp.remote == (HOST, 9)
