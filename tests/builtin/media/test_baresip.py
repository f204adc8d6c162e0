"""MediaSession with a real peer: baresip calls a minimal SIP answerer on 127.0.0.1.

The SIP side here is a few lines of raw UDP (INVITE answered 200 with our SDP answer,
ACK ignored, BYE answered 200); the media side is the real MediaSession. Audio and
DTMF go both ways, and each side's recording is checked for the other side's tone.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path
import secrets

import pytest

from custom_components.sip_endpoint.worker.builtin.media.session import MediaSession
from tests.sipbed.audio import dominant_frequency, read_pcm, trim_silence, write_tone
from tests.sipbed.baresip import BaresipFactory

HOST = "127.0.0.1"
BARESIP_TONE_HZ = 440
OUR_TONE_HZ = 650


class Answerer(asyncio.DatagramProtocol):
    """Answers one INVITE with the media session's SDP answer; answers BYE."""

    def __init__(self, session: MediaSession) -> None:
        """Answer for ``session``."""
        self.session = session
        self.transport: asyncio.DatagramTransport | None = None
        self.established = asyncio.Event()
        self.ended = asyncio.Event()
        self._tag = secrets.token_hex(4)
        self._answer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def _reply(self, request: str, addr: tuple[str, int], body: str = "") -> None:
        head, _, _ = request.partition("\r\n\r\n")
        lines = head.split("\r\n")
        copied = [
            line
            for line in lines[1:]
            if line.lower().startswith(
                ("via:", "v:", "from:", "f:", "call-id:", "i:", "cseq:")
            )
        ]
        to = next(line for line in lines if line.lower().startswith(("to:", "t:")))
        if ";tag=" not in to:
            to += f";tag={self._tag}"
        port = self.transport.get_extra_info("sockname")[1] if self.transport else 0
        headers = [
            "SIP/2.0 200 OK",
            *copied,
            to,
            f"Contact: <sip:media@{HOST}:{port}>",
        ]
        if body:
            headers.append("Content-Type: application/sdp")
        headers.append(f"Content-Length: {len(body.encode())}")
        assert self.transport is not None
        self.transport.sendto(("\r\n".join(headers) + "\r\n\r\n" + body).encode(), addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Answer INVITE and BYE; note ACK."""
        text = data.decode(errors="replace")
        method = text.split(" ", 1)[0]
        if method == "INVITE":
            if self._answer is None:
                self._answer = self.session.answer_offer(text.partition("\r\n\r\n")[2])
            self._reply(text, addr, self._answer)
        elif method == "ACK":
            self.established.set()
        elif method == "BYE":
            self._reply(text, addr)
            self.ended.set()


async def in_thread(function: Callable[[], object]) -> None:
    """Run a blocking baresip control call off the loop."""
    await asyncio.to_thread(function)


async def test_audio_and_dtmf_both_ways_with_baresip(
    baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    tone = write_tone(tmp_path / "baresip-tone.wav", BARESIP_TONE_HZ, 6)
    ours = write_tone(tmp_path / "our-tone.wav", OUR_TONE_HZ, 1.5)
    baresip = await asyncio.to_thread(
        lambda: baresip_factory(
            user="caller",
            password=None,
            registrar=None,
            audio_file=tone,
            register=False,
        )
    )
    session = await MediaSession.open(HOST)
    loop = asyncio.get_running_loop()
    transport, answerer = await loop.create_datagram_endpoint(
        lambda: Answerer(session), local_addr=(HOST, 0)
    )
    heard: list[str] = []
    session.on_dtmf = heard.append
    recording = tmp_path / "from-baresip.wav"
    try:
        port = transport.get_extra_info("sockname")[1]
        await in_thread(lambda: baresip.dial(f"sip:media@{HOST}:{port}"))
        async with asyncio.timeout(10):
            await answerer.established.wait()
        assert session.codec == "PCMU"
        assert session.dtmf_available
        session.start()
        session.record(str(recording))
        await in_thread(baresip.wait_established)
        session.play(str(ours))
        await asyncio.sleep(0.5)
        session.send_dtmf("4")
        session.send_dtmf("#")
        await in_thread(lambda: baresip.send_dtmf("7"))
        await asyncio.sleep(1.5)
        received = await asyncio.to_thread(baresip.received_dtmf)
        await in_thread(baresip.hangup)
        async with asyncio.timeout(10):
            await answerer.ended.wait()
        duration = session.close()
        await in_thread(baresip.wait_closed)
    finally:
        session.close()
        transport.close()

    assert received == "4#"
    assert heard == ["7"]
    assert duration is not None
    assert duration > 1.5
    samples, rate = read_pcm(recording)
    loud = trim_silence(samples)
    assert len(loud) > rate
    assert dominant_frequency(loud[:rate], rate) == pytest.approx(
        BARESIP_TONE_HZ, abs=10
    )
    assert baresip.recording is not None
    theirs, their_rate = read_pcm(baresip.recording)
    their_loud = trim_silence(theirs)
    assert len(their_loud) > their_rate
    assert dominant_frequency(their_loud[:their_rate], their_rate) == pytest.approx(
        OUR_TONE_HZ, abs=10
    )
