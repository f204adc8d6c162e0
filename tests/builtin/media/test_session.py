"""MediaSession end to end on 127.0.0.1: pacing, latching, playback, recording, DTMF."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import itertools
from pathlib import Path
import socket
import struct
import threading

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.sip_endpoint.worker.builtin.media import (
    session as session_module,
)
from custom_components.sip_endpoint.worker.builtin.media.player import load_wav
from custom_components.sip_endpoint.worker.builtin.media.rtp import (
    RtpPacket,
    decode,
)
from custom_components.sip_endpoint.worker.builtin.media.session import (
    DtmfUnavailableError,
    MediaSession,
    NoCommonCodecError,
    WavError,
)
from tests.sipbed.audio import dominant_frequency, read_pcm, sox_sine, trim_silence

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOST = "127.0.0.1"
TONE_HZ = 440


def offer_to(port: int, *media_lines: str, codecs: str = "0 8 101") -> str:
    """Return a peer's offer sending to ``port`` on 127.0.0.1."""
    lines = [
        "v=0",
        "o=peer 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {port} RTP/AVP {codecs}",
        "a=rtpmap:101 telephone-event/8000",
        *media_lines,
    ]
    return "\r\n".join(lines) + "\r\n"


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds; fail after five seconds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not reached in 5 s")


def playing(session: MediaSession) -> bool:
    """Return whether the session plays a file (a call, so mypy does not narrow it)."""
    return session.playing


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    """Yield a non-blocking raw UDP socket on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def receive_packets(sock: socket.socket, count: int) -> list[RtpPacket]:
    """Receive ``count`` RTP packets on a raw socket."""
    loop = asyncio.get_running_loop()
    packets: list[RtpPacket] = []
    async with asyncio.timeout(5):
        while len(packets) < count:
            data, _ = await loop.sock_recvfrom(sock, 2048)
            packets.append(decode(data))
    return packets


@pytest.fixture
async def sessions() -> AsyncIterator[Callable[[], "asyncio.Future[MediaSession]"]]:
    """Return a factory of MediaSessions on 127.0.0.1, all closed at teardown."""
    opened: list[MediaSession] = []

    async def make() -> MediaSession:
        session = await MediaSession.open(HOST)
        opened.append(session)
        return session

    yield make  # type: ignore[misc]
    for session in opened:
        session.close()


@pytest.fixture
async def pair(
    sessions: Callable[[], "asyncio.Future[MediaSession]"],
) -> tuple[MediaSession, MediaSession]:
    """Return a caller and a callee that negotiated and started."""
    caller = await sessions()
    callee = await sessions()
    caller.apply_answer(callee.answer_offer(caller.local_offer()))
    caller.start()
    callee.start()
    return caller, callee


def sox_tone(path: Path, seconds: float = 1.0, frequency: int = TONE_HZ) -> str:
    """Make a 16-bit 16 kHz mono sine WAV with the sox CLI."""
    options = ("-r", "16000", "-c", "1", "-b", "16")
    return str(sox_sine(path, *options, seconds=seconds, frequency=frequency))


async def test_open_refuses_an_unspecified_sdp_address() -> None:
    with pytest.raises(ValueError, match="advertise"):
        await MediaSession.open("0.0.0.0")


async def test_paced_stream_of_silence(
    sessions: Callable[[], "asyncio.Future[MediaSession]"], peer: socket.socket
) -> None:
    session = await sessions()
    answer = session.answer_offer(offer_to(peer.getsockname()[1]))
    assert f"m=audio {session.local_port} RTP/AVP 0 101" in answer
    assert session.local_host == HOST
    assert session.codec == "PCMU"
    assert session.remote == (HOST, peer.getsockname()[1])
    session.start()
    session.start()  # idempotent
    packets = await receive_packets(peer, 25)
    assert {p.payload_type for p in packets} == {0}
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert [p.marker for p in packets] == [True] + [False] * 24
    assert all(p.payload == b"\xff" * 160 for p in packets)
    for before, after in itertools.pairwise(packets):
        assert after.sequence == (before.sequence + 1) % 65536
        assert after.timestamp == (before.timestamp + 160) % 2**32
    stats = session.stats
    assert stats.packets_sent >= 25
    assert len(stats.send_intervals) >= 24
    assert stats.bytes_sent == 172 * stats.packets_sent
    assert stats.jitter_delay_ms == 60


async def test_pcma_offer_gets_pcma_silence(
    sessions: Callable[[], "asyncio.Future[MediaSession]"], peer: socket.socket
) -> None:
    session = await sessions()
    session.answer_offer(offer_to(peer.getsockname()[1], codecs="8"))
    assert session.codec == "PCMA"
    assert not session.dtmf_available
    session.start()
    packets = await receive_packets(peer, 3)
    assert {p.payload_type for p in packets} == {8}
    assert packets[1].payload == b"\xd5" * 160
    with pytest.raises(DtmfUnavailableError):
        session.send_dtmf("1")


async def test_nothing_is_heard_before_negotiation(
    sessions: Callable[[], "asyncio.Future[MediaSession]"],
) -> None:
    session = await sessions()
    assert session.direction is None
    assert session.codec is None
    assert session.remote is None
    assert not session.dtmf_available
    heard: list[str] = []
    session.on_dtmf = heard.append
    session._on_packet(RtpPacket(101, 1, 0, 7, b"\x01\x0a\x00\xa0"))
    assert heard == []


async def test_offer_without_g711_raises_for_a_488(
    sessions: Callable[[], "asyncio.Future[MediaSession]"],
) -> None:
    session = await sessions()
    with pytest.raises(NoCommonCodecError):
        session.answer_offer(offer_to(4000, "a=rtpmap:9 G722/8000", codecs="9"))
    assert session.codec is None


async def test_symmetric_rtp_answers_where_packets_come_from(
    sessions: Callable[[], "asyncio.Future[MediaSession]"], peer: socket.socket
) -> None:
    session = await sessions()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unused:
        unused.bind((HOST, 0))
        signalled = unused.getsockname()[1]
        session.answer_offer(offer_to(signalled))
        session.start()
        # The peer sends from another port than its SDP said (as behind NAT).
        peer.sendto(
            RtpPacket(0, 1, 0, 99, b"\xff" * 160).encode(), (HOST, session.local_port)
        )
        packets = await receive_packets(peer, 3)
    assert session.remote == peer.getsockname()
    assert {p.payload_type for p in packets} == {0}


async def test_accept_any_source_latches_a_peer_behind_nat(peer: socket.socket) -> None:
    session = await MediaSession.open(HOST, accept_any_source=True)
    try:
        # The SDP names another host than the packets come from (loopback only here).
        session.answer_offer(offer_to(40000).replace("127.0.0.1", "127.0.0.2"))
        assert session.remote == ("127.0.0.2", 40000)
        session.start()
        peer.sendto(
            RtpPacket(0, 1, 0, 99, b"\xff").encode(), (HOST, session.local_port)
        )
        await wait_until(lambda: session.remote == peer.getsockname())
        assert len(await receive_packets(peer, 2)) == 2
    finally:
        session.close()


async def test_tone_played_on_one_side_is_recorded_on_the_other(
    pair: tuple[MediaSession, MediaSession], tmp_path: Path
) -> None:
    caller, callee = pair
    recording = tmp_path / "heard.wav"
    callee.record(str(recording))
    done: list[bool] = []
    caller.play(
        sox_tone(tmp_path / "tone.wav"), loop=False, on_done=lambda: done.append(True)
    )
    assert playing(caller)
    await wait_until(lambda: bool(done))
    await asyncio.sleep(0.3)
    assert not playing(caller)
    duration = callee.close()
    assert duration is not None
    assert duration > 1.0
    samples, rate = read_pcm(recording)
    assert rate == 8000
    assert len(samples) == pytest.approx(duration * rate, abs=1)
    loud = trim_silence(samples)
    assert 0.8 * rate < len(loud) < 1.3 * rate
    assert dominant_frequency(loud, rate) == pytest.approx(TONE_HZ, abs=5)
    assert done == [True]


async def test_stream_gets_16khz_chunks_of_the_callers_audio(
    pair: tuple[MediaSession, MediaSession], tmp_path: Path
) -> None:
    caller, callee = pair
    chunks: list[tuple[bytes, int]] = []
    caller.play(sox_tone(tmp_path / "tone.wav", 2.0), loop=True, on_done=None)
    callee.set_stream(lambda pcm, rate: chunks.append((pcm, rate)))
    await wait_until(lambda: len(chunks) >= 50)
    callee.set_stream(None)
    count = len(chunks)
    await asyncio.sleep(0.1)
    assert len(chunks) == count
    assert {rate for _, rate in chunks} == {16000}
    assert {len(pcm) for pcm, _ in chunks[1:]} == {640}
    joined = b"".join(pcm for pcm, _ in chunks)
    loud = trim_silence(list(struct.unpack(f"<{len(joined) // 2}h", joined)))
    assert len(loud) > 16000 // 2
    assert dominant_frequency(loud, 16000) == pytest.approx(TONE_HZ, abs=5)


async def test_looped_playback_runs_until_stopped(
    pair: tuple[MediaSession, MediaSession], tmp_path: Path
) -> None:
    caller, _ = pair
    done: list[bool] = []
    caller.play(
        sox_tone(tmp_path / "short.wav", 0.1),
        loop=True,
        on_done=lambda: done.append(True),
    )
    await asyncio.sleep(0.3)
    assert playing(caller)
    caller.stop_playing()
    assert not playing(caller)
    await asyncio.sleep(0.05)
    assert done == []


async def test_play_file_loads_in_a_thread_and_reports_the_end(
    pair: tuple[MediaSession, MediaSession], tmp_path: Path
) -> None:
    caller, _ = pair
    done: list[bool] = []
    await caller.play_file(
        sox_tone(tmp_path / "short.wav", 0.1), on_done=lambda: done.append(True)
    )
    await wait_until(lambda: bool(done))
    with pytest.raises(WavError, match="cannot read"):
        caller.play(str(tmp_path / "missing.wav"))
    with pytest.raises(WavError, match="not a WAV"):
        await caller.play_file(__file__)


@pytest.fixture
def threaded_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load every file but the smallest (over 1000 bytes) in a thread."""
    monkeypatch.setattr(session_module, "INLINE_LOAD_BYTES", 1000)


@pytest.mark.usefixtures("threaded_loads")
async def test_a_large_file_is_converted_in_a_thread(
    pair: tuple[MediaSession, MediaSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller, callee = pair
    loaded_in: list[str] = []

    def spying_load(path: str) -> bytes:
        loaded_in.append(threading.current_thread().name)
        return load_wav(path)

    monkeypatch.setattr(session_module, "load_wav", spying_load)
    recording = tmp_path / "heard.wav"
    callee.record(str(recording))
    done: list[bool] = []
    caller.play(sox_tone(tmp_path / "tone.wav"), on_done=lambda: done.append(True))
    assert playing(caller)
    await wait_until(lambda: bool(done))
    assert loaded_in
    assert loaded_in[0] != threading.current_thread().name
    await asyncio.sleep(0.3)
    callee.close()
    samples, rate = read_pcm(recording)
    loud = trim_silence(samples)
    assert 0.8 * rate < len(loud) < 1.3 * rate
    assert dominant_frequency(loud, rate) == pytest.approx(TONE_HZ, abs=5)


@pytest.mark.usefixtures("threaded_loads")
async def test_a_load_replaced_or_stopped_meanwhile_never_plays(
    pair: tuple[MediaSession, MediaSession], tmp_path: Path
) -> None:
    caller, _ = pair
    tone = sox_tone(tmp_path / "tone.wav", 0.2)
    done: list[str] = []
    caller.play(tone, on_done=lambda: done.append("stopped"))
    caller.stop_playing()
    assert not playing(caller)
    caller.play(tone, on_done=lambda: done.append("replaced"))
    caller.play(tone, on_done=lambda: done.append("last"))
    await wait_until(lambda: bool(done))
    await asyncio.sleep(0.3)
    assert done == ["last"]


@pytest.mark.usefixtures("threaded_loads")
async def test_a_failed_threaded_load_still_reports_the_end(
    pair: tuple[MediaSession, MediaSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller, _ = pair

    def failing_load(path: str) -> bytes:
        raise WavError("tone.wav: cannot read: Input/output error")

    monkeypatch.setattr(session_module, "load_wav", failing_load)
    done: list[bool] = []
    caller.play(sox_tone(tmp_path / "tone.wav"), on_done=lambda: done.append(True))
    await wait_until(lambda: bool(done))
    assert not playing(caller)
    caller.close()
    with pytest.raises(RuntimeError, match="closed"):
        caller.play(str(tmp_path / "tone.wav"))


async def test_dtmf_round_trip(pair: tuple[MediaSession, MediaSession]) -> None:
    caller, callee = pair
    heard: list[str] = []
    callee.on_dtmf = heard.append
    assert caller.dtmf_available
    for digit in "19#A":
        caller.send_dtmf(digit)
    with pytest.raises(ValueError, match="not a DTMF digit"):
        caller.send_dtmf("X")
    await wait_until(lambda: len(heard) >= 4)
    await asyncio.sleep(0.2)
    assert heard == ["1", "9", "#", "A"]


async def test_a_failing_callback_does_not_stop_the_media(
    pair: tuple[MediaSession, MediaSession],
) -> None:
    caller, callee = pair
    heard: list[str] = []

    def explode(digit: str) -> None:
        heard.append(digit)
        raise RuntimeError("boom")

    callee.on_dtmf = explode
    callee.set_stream(lambda pcm, rate: explode("stream"))
    caller.send_dtmf("5")
    await wait_until(lambda: "5" in heard)
    before = caller.stats.packets_received
    await wait_until(lambda: caller.stats.packets_received > before + 5)


async def test_hold_stops_sending_but_playback_still_ends(
    sessions: Callable[[], "asyncio.Future[MediaSession]"],
    peer: socket.socket,
    tmp_path: Path,
) -> None:
    session = await sessions()
    session.answer_offer(offer_to(peer.getsockname()[1], "a=sendonly"))
    done: list[bool] = []
    session.play(
        sox_tone(tmp_path / "short.wav", 0.1), on_done=lambda: done.append(True)
    )
    session.start()
    await wait_until(lambda: bool(done))
    assert session.stats.packets_sent == 0
    assert session.direction == "recvonly"
    # The peer takes us off hold with a re-INVITE.
    session.answer_offer(offer_to(peer.getsockname()[1], "a=sendrecv"))
    packets = await receive_packets(peer, 2)
    assert packets[0].marker
    assert session.direction == "sendrecv"


async def test_reinvite_moves_the_stream(
    sessions: Callable[[], "asyncio.Future[MediaSession]"], peer: socket.socket
) -> None:
    session = await sessions()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
        first.bind((HOST, 0))
        session.answer_offer(offer_to(first.getsockname()[1]))
        session.start()
        first.sendto(
            RtpPacket(0, 1, 0, 99, b"\xff").encode(), (HOST, session.local_port)
        )
        await wait_until(lambda: session.stats.packets_received == 1)
        assert session.remote == first.getsockname()
    session.answer_offer(offer_to(peer.getsockname()[1]))
    assert session.remote == peer.getsockname()
    assert len(await receive_packets(peer, 2)) == 2


async def test_close_finalises_the_recording_and_stops(
    sessions: Callable[[], "asyncio.Future[MediaSession]"], tmp_path: Path
) -> None:
    session = await sessions()
    session.answer_offer(offer_to(9))
    assert session.close() is None
    with pytest.raises(RuntimeError, match="closed"):
        session.start()

    recording = await sessions()
    recording.answer_offer(offer_to(9))
    recording.record(str(tmp_path / "first.wav"))
    recording.record(str(tmp_path / "second.wav"), rate=16000)
    recording.start()
    await asyncio.sleep(0.2)
    duration = recording.close()
    assert duration is not None
    assert duration > 0
    assert read_pcm(tmp_path / "first.wav") == ([], 8000)
    samples, rate = read_pcm(tmp_path / "second.wav")
    assert rate == 16000
    assert len(samples) == pytest.approx(duration * rate, abs=1)
    assert recording.close() is None
    with pytest.raises(RuntimeError, match="closed"):
        recording.record(str(tmp_path / "third.wav"))


async def test_ipv6_sessions_exchange_audio(tmp_path: Path) -> None:
    try:
        caller = await MediaSession.open("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    callee = await MediaSession.open("::1", port_range=(42000, 42100))
    try:
        offer = caller.local_offer()
        assert "c=IN IP6 ::1" in offer
        caller.apply_answer(callee.answer_offer(offer))
        assert callee.remote == ("::1", caller.local_port)
        assert 42000 <= callee.local_port <= 42100
        caller.start()
        callee.start()
        await wait_until(lambda: callee.stats.packets_received >= 5)
        await wait_until(lambda: caller.stats.packets_received >= 5)
        assert callee.remote == ("::1", caller.local_port)
    finally:
        caller.close()
        callee.close()


DATAGRAMS = st.one_of(
    st.builds(
        RtpPacket,
        payload_type=st.sampled_from([0, 8, 101, 13, 127]),
        sequence=st.integers(0, 65535),
        timestamp=st.integers(0, 2**32 - 1),
        ssrc=st.integers(0, 3),
        payload=st.binary(max_size=400),
        marker=st.booleans(),
    ).map(RtpPacket.encode),
    st.binary(max_size=100),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(DATAGRAMS, st.integers(0, 3)), max_size=60))
def test_fuzzed_packets_never_break_the_session(
    datagrams: list[tuple[bytes, int]],
) -> None:
    async def scenario() -> None:
        session = await MediaSession.open(HOST)
        digits: list[str] = []
        chunks: list[bytes] = []
        session.on_dtmf = digits.append
        session.set_stream(lambda pcm, rate: chunks.append(pcm))
        session.answer_offer(offer_to(9))
        rtp = session._rtp
        try:
            for data, ticks in datagrams:
                rtp.datagram_received(data, (HOST, 9))
                for _ in range(ticks):
                    session._tick(0)
        finally:
            session.close()
        assert set("".join(digits)) <= set("0123456789*#ABCD")
        assert all(len(chunk) == 640 for chunk in chunks[1:])
        assert session.stats.packets_received <= len(datagrams)

    asyncio.run(scenario())


async def test_a_stalled_loop_keeps_the_recordings_time(
    sessions: Callable[[], "asyncio.Future[MediaSession]"],
    peer: socket.socket,
    tmp_path: Path,
) -> None:
    session = await sessions()
    session.answer_offer(offer_to(peer.getsockname()[1]))
    session.record(str(tmp_path / "stall.wav"))
    session._tick(0)
    session._tick(10)
    session._tick(500)
    first, second, third = await receive_packets(peer, 3)
    assert second.timestamp == first.timestamp + 11 * 160
    assert third.timestamp == second.timestamp + 501 * 160
    assert second.marker
    assert third.marker
    duration = session.close()
    assert duration == pytest.approx((1 + 11 + 51) * 0.02)
