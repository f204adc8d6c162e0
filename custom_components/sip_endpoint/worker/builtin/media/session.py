"""The media of one call: the façade the call layer uses.

Everything runs on the worker's asyncio loop thread; no method blocks the loop for
more than a frame except `play` on a large file (use `play_file` to load it in a thread).

Public API (stable: names are only ever added)::

    session = await MediaSession.open(bind_host, port_range=(10000, 20000))
        # binds one UDP socket for RTP: an even free port of the inclusive range, or one
        # the OS chooses; OSError when none is free. `advertise_host=` sets the address
        # written into SDP when it differs from bind_host (default: bind_host).
    session.local_host, session.local_port   # where the peer sends RTP
    session.local_offer() -> str             # SDP offer (outbound INVITE, or a re-offer)
    session.answer_offer(offer_sdp) -> str   # SDP answer; raises SdpError (answer 488),
                                             # NoCommonCodecError is its subclass; may be
                                             # called again for a re-INVITE's offer
    session.apply_answer(answer_sdp) -> None # outbound: the peer's answer; SdpError
    session.start() -> None                  # 20 ms clock: send (silence unless playing)
                                             # and receive; idempotent
    session.play(path, *, loop=False, on_done=None) -> None   # WavError; replaces any
                                             # playback; on_done() once a non-looped file
                                             # has been sent to its end (never on stop)
    await session.play_file(path, *, loop=False, on_done=None)  # same, loads in a thread
    session.stop_playing() -> None
    session.playing -> bool
    session.record(path, *, rate=8000) -> None  # caller's audio to a 16-bit mono WAV
                                             # (8000 or 16000 Hz) until close(); OSError
    session.set_stream(callback | None)      # callback(pcm, rate): 20 ms chunks of the
                                             # caller's audio, 16 kHz s16le mono
    session.on_dtmf = callback | None        # callback(digit) per RFC 4733 event
    session.dtmf_available -> bool           # the peer negotiated telephone-event
    session.send_dtmf(digit) -> None         # "0-9*#A-D"; ValueError for another digit,
                                             # DtmfUnavailableError without telephone-event
    session.codec -> str | None              # "PCMU" or "PCMA" once negotiated
    session.remote -> tuple[str, int] | None # where RTP goes (latched source once heard)
    session.stats -> MediaStats              # packets and bytes both ways, send intervals
    session.close() -> float | None          # stops everything, closes the socket;
                                             # the recording's duration in seconds, if any
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .dtmf import DtmfUnavailableError
from .player import WavError
from .sdp import NoCommonCodecError, SdpError

__all__ = [
    "DtmfUnavailableError",
    "MediaSession",
    "MediaStats",
    "NoCommonCodecError",
    "SdpError",
    "WavError",
]

SEND_INTERVALS_KEPT = 3000
STREAM_RATE = 16000


@dataclass(slots=True)
class MediaStats:
    """Counters of one call's RTP, and the recent send intervals for benchmarks."""

    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_dropped: int = 0
    send_intervals: deque[float] = field(
        default_factory=lambda: deque(maxlen=SEND_INTERVALS_KEPT)
    )


class MediaSession:
    """One call's audio: negotiation, RTP both ways, playback, recording, stream, DTMF."""

    on_dtmf: Callable[[str], None] | None

    @classmethod
    async def open(
        cls,
        bind_host: str,
        *,
        port_range: tuple[int, int] | None = None,
        advertise_host: str | None = None,
    ) -> "MediaSession":
        """Bind the RTP socket and return a session that is not started yet."""
        raise NotImplementedError

    @property
    def local_host(self) -> str:
        """Return the address written into SDP."""
        raise NotImplementedError

    @property
    def local_port(self) -> int:
        """Return the bound RTP port."""
        raise NotImplementedError

    def local_offer(self) -> str:
        """Return an SDP offer: PCMU, PCMA, telephone-event/8000 0-16."""
        raise NotImplementedError

    def answer_offer(self, offer_sdp: str) -> str:
        """Return the SDP answer to the peer's offer; SdpError when it is not acceptable."""
        raise NotImplementedError

    def apply_answer(self, answer_sdp: str) -> None:
        """Take the peer's answer to `local_offer`; SdpError when it is not acceptable."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the 20 ms clock: send audio (silence unless playing) and receive."""
        raise NotImplementedError

    def play(
        self,
        path: str,
        *,
        loop: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Play a WAV file into the call, replacing any playback; WavError if bad."""
        raise NotImplementedError

    async def play_file(
        self,
        path: str,
        *,
        loop: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Like `play`, but read and convert the file in a thread."""
        raise NotImplementedError

    def stop_playing(self) -> None:
        """Stop the playback (on_done is not called)."""
        raise NotImplementedError

    @property
    def playing(self) -> bool:
        """Return whether a file is playing."""
        raise NotImplementedError

    def record(self, path: str, *, rate: int = 8000) -> None:
        """Record the caller's audio to a WAV file until `close`."""
        raise NotImplementedError

    def set_stream(self, callback: Callable[[bytes, int], None] | None) -> None:
        """Send the caller's audio to ``callback(pcm, rate)`` in 20 ms chunks, or stop."""
        raise NotImplementedError

    @property
    def dtmf_available(self) -> bool:
        """Return whether the peer negotiated RFC 4733 telephone-event."""
        raise NotImplementedError

    def send_dtmf(self, digit: str) -> None:
        """Queue one RFC 4733 digit."""
        raise NotImplementedError

    @property
    def codec(self) -> str | None:
        """Return the negotiated codec ("PCMU" or "PCMA"), None before negotiation."""
        raise NotImplementedError

    @property
    def remote(self) -> tuple[str, int] | None:
        """Return where RTP is sent."""
        raise NotImplementedError

    @property
    def stats(self) -> MediaStats:
        """Return the session's counters."""
        raise NotImplementedError

    def close(self) -> float | None:
        """Stop everything; return the recording's duration in seconds, if recording."""
        raise NotImplementedError
