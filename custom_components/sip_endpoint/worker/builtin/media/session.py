"""The media of one call: the façade the call layer uses.

Everything runs on the worker's asyncio loop thread; no method blocks the loop for
more than a frame (`play` converts files over 1 MiB in a thread).

Public API (stable: names are only ever added)::

    session = await MediaSession.open(bind_host, port_range=(10000, 20000))
        # binds one UDP socket for RTP: an even free port of the inclusive range, or one
        # the OS chooses; OSError when none is free. `advertise_host=` sets the address
        # written into SDP when it differs from bind_host (default: bind_host);
        # ValueError when that address is 0.0.0.0 or :: or not an IP literal
        # (bind_host too: no name is resolved here). accept_any_source=True
        # latches the first RTP source from any host (peers behind NAT that
        # advertise a private address); by default only the SDP's host is heard.
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
                                             # has been sent to its end (never on stop);
                                             # a file over 1 MiB is converted in a thread
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
    session.direction -> str | None          # ours: sendrecv/sendonly/recvonly/inactive
    session.stats -> MediaStats              # packets and bytes both ways, send intervals
    session.close() -> float | None          # stops everything, closes the socket;
                                             # the recording's duration in seconds, if any;
                                             # idempotent (None the second time)

Callbacks (on_done, on_dtmf, the stream) run on the loop thread inside the media clock
or the socket's receive handler; an exception in one is logged, never raised into the
media. A callback may call any method, close() included. After close(), start(),
play() and record() raise RuntimeError.
"""

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import ipaddress
import logging
import random

from .codec import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, G711, RATE, Resampler
from .dtmf import DtmfReceiver, DtmfSender, DtmfUnavailableError
from .jitter import JitterBuffer
from .player import Player, WavError, check_wav, load_wav
from .recorder import Recorder
from .rtp import Pacer, RtpPacket, RtpSocket
from .sdp import MediaParams, NoCommonCodecError, SdpError, SdpNegotiator

__all__ = [
    "DtmfUnavailableError",
    "MediaSession",
    "MediaStats",
    "NoCommonCodecError",
    "SdpError",
    "WavError",
]

_LOGGER = logging.getLogger(__name__)

SEND_INTERVALS_KEPT = 3000
MAX_REPLAYED_FRAMES = 50
INLINE_LOAD_BYTES = 1024 * 1024
STREAM_RATE = 16000
_SILENCE = bytes(FRAME_BYTES)
_STATIC_CODECS = {0: "PCMU", 8: "PCMA"}
_DIRECTIONS = {
    (True, True): "sendrecv",
    (True, False): "sendonly",
    (False, True): "recvonly",
    (False, False): "inactive",
}


@dataclass(slots=True)
class MediaStats:
    """Counters of one call's RTP, and the recent send intervals for benchmarks.

    ``send_intervals`` holds the seconds between consecutive packets sent (the last
    `SEND_INTERVALS_KEPT`), measured on the loop's clock.
    """

    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_dropped: int = 0
    packets_lost: int = 0
    packets_late: int = 0
    jitter_delay_ms: int = 0
    send_intervals: deque[float] = field(
        default_factory=lambda: deque(maxlen=SEND_INTERVALS_KEPT)
    )


def _guarded(what: str, callback: Callable[[], None]) -> None:
    """Run a callback of the call layer; log (never raise) its errors."""
    try:
        callback()
    except Exception:
        _LOGGER.exception("Media %s callback failed", what)


class MediaSession:
    """One call's audio: negotiation, RTP both ways, playback, recording, stream, DTMF."""

    on_dtmf: Callable[[str], None] | None

    def __init__(
        self, rtp: RtpSocket, advertise_host: str, *, accept_any_source: bool = False
    ) -> None:
        """Wrap a bound RTP socket; use `open`."""
        self._rtp = rtp
        self._accept_any_source = accept_any_source
        self._negotiator = SdpNegotiator(advertise_host, rtp.local_address[1])
        self._params: MediaParams | None = None
        self._codec: G711 | None = None
        self._decoders: dict[int, G711] = {}
        self._pacer = Pacer(self._tick)
        self._timestamp = random.getrandbits(32)
        self._marker = True
        self._player: Player | None = None
        self._loading: object | None = None
        self._on_done: Callable[[], None] | None = None
        self._recorder: Recorder | None = None
        self._stream: Callable[[bytes, int], None] | None = None
        self._stream_resampler = Resampler(RATE, STREAM_RATE)
        self._jitter = JitterBuffer(frame_bytes=FRAME_BYTES)
        self._dtmf_in = DtmfReceiver()
        self._dtmf_out = DtmfSender()
        self._stats = MediaStats()
        self._last_send: float | None = None
        self._closed = False
        self.on_dtmf = None
        rtp.on_packet = self._on_packet

    @classmethod
    async def open(
        cls,
        bind_host: str,
        *,
        port_range: tuple[int, int] | None = None,
        advertise_host: str | None = None,
        accept_any_source: bool = False,
    ) -> "MediaSession":
        """Bind the RTP socket and return a session that is not started yet."""
        host = advertise_host or bind_host
        if ipaddress.ip_address(host).is_unspecified:
            raise ValueError("an address to advertise in SDP is needed")
        rtp = await RtpSocket.open(bind_host, port_range)
        return cls(rtp, host, accept_any_source=accept_any_source)

    @property
    def local_host(self) -> str:
        """Return the address written into SDP."""
        return self._negotiator.host

    @property
    def local_port(self) -> int:
        """Return the bound RTP port."""
        return self._rtp.local_address[1]

    def local_offer(self) -> str:
        """Return an SDP offer: PCMU, PCMA, telephone-event/8000 0-16."""
        return self._negotiator.offer()

    def answer_offer(self, offer_sdp: str) -> str:
        """Return the SDP answer to the peer's offer; SdpError when it is not acceptable."""
        answer, params = self._negotiator.answer(offer_sdp)
        self._apply(params)
        return answer

    def apply_answer(self, answer_sdp: str) -> None:
        """Take the peer's answer to `local_offer`; SdpError when it is not acceptable."""
        self._apply(self._negotiator.accept_answer(answer_sdp))

    def _apply(self, params: MediaParams) -> None:
        self._params = params
        self._codec = G711(params.codec)
        self._decoders = {pt: G711(name) for pt, name in _STATIC_CODECS.items()}
        self._decoders[params.payload_type] = self._codec
        accepted = set(self._decoders)
        if params.dtmf_payload_type is not None:
            accepted.add(params.dtmf_payload_type)
            self._decoders.pop(params.dtmf_payload_type, None)
        else:
            self._dtmf_out.clear()
        self._rtp.set_remote(
            params.remote,
            frozenset(accepted),
            accept_any_source=self._accept_any_source,
        )
        self._marker = True

    def start(self) -> None:
        """Start the 20 ms clock: send audio (silence unless playing) and receive."""
        if self._closed:
            raise RuntimeError("media session closed")
        self._pacer.start()

    def play(
        self,
        path: str,
        *,
        loop: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Play a WAV file into the call, replacing any playback; WavError if bad.

        A file up to `INLINE_LOAD_BYTES` is read and converted at once; a larger one
        has its header checked here and is converted in a thread, the call hearing
        silence meanwhile (`playing` is already True).
        """
        if self._closed:
            raise RuntimeError("media session closed")
        if check_wav(path) <= INLINE_LOAD_BYTES:
            self._play(load_wav(path), loop, on_done)
            return
        self.stop_playing()
        token = object()
        self._loading = token
        future = asyncio.get_running_loop().run_in_executor(None, load_wav, path)

        def loaded(done: "asyncio.Future[bytes]") -> None:
            if self._loading is not token:
                return  # replaced, stopped or closed meanwhile
            self._loading = None
            if done.cancelled():
                return
            error = done.exception()
            if error is None:
                self._play(done.result(), loop, on_done)
                return
            _LOGGER.warning("Cannot play %s: %s", path, error)
            if on_done is not None and not loop:
                _guarded("playback done", on_done)

        future.add_done_callback(loaded)

    async def play_file(
        self,
        path: str,
        *,
        loop: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Like `play`, but read and convert the file in a thread."""
        pcm = await asyncio.to_thread(load_wav, path)
        if not self._closed:
            self._play(pcm, loop, on_done)

    def _play(self, pcm: bytes, loop: bool, on_done: Callable[[], None] | None) -> None:
        self._loading = None
        self._player = Player(pcm, loop=loop)
        self._on_done = on_done
        self._marker = True

    def stop_playing(self) -> None:
        """Stop the playback (on_done is not called)."""
        self._loading = None
        self._player = None
        self._on_done = None

    @property
    def playing(self) -> bool:
        """Return whether a file is playing (or being loaded to play)."""
        return self._player is not None or self._loading is not None

    def record(self, path: str, *, rate: int = RATE) -> None:
        """Record the caller's audio to a WAV file until `close`.

        A second call closes the first recording and starts a new file.
        """
        if self._closed:
            raise RuntimeError("media session closed")
        recorder = Recorder(path, rate=rate)
        if self._recorder is not None:
            self._recorder.close()
        self._recorder = recorder

    def set_stream(self, callback: Callable[[bytes, int], None] | None) -> None:
        """Send the caller's audio to ``callback(pcm, rate)`` in 20 ms chunks, or stop."""
        if callback is not None and self._stream is None:
            self._stream_resampler = Resampler(RATE, STREAM_RATE)
        self._stream = callback

    @property
    def dtmf_available(self) -> bool:
        """Return whether the peer negotiated RFC 4733 telephone-event."""
        return self._params is not None and self._params.dtmf_payload_type is not None

    def send_dtmf(self, digit: str) -> None:
        """Queue one RFC 4733 digit."""
        if not self.dtmf_available:
            raise DtmfUnavailableError("the peer did not negotiate telephone-event")
        self._dtmf_out.queue(digit)

    @property
    def codec(self) -> str | None:
        """Return the negotiated codec ("PCMU" or "PCMA"), None before negotiation."""
        return self._params.codec if self._params is not None else None

    @property
    def direction(self) -> str | None:
        """Return our direction ("sendrecv", "sendonly", "recvonly", "inactive").

        None before negotiation; "sendonly" also when the peer holds us.
        """
        params = self._params
        if params is None:
            return None
        return _DIRECTIONS[params.send, params.receive]

    @property
    def remote(self) -> tuple[str, int] | None:
        """Return where RTP is sent."""
        return self._rtp.remote

    @property
    def stats(self) -> MediaStats:
        """Return the session's counters."""
        stats, counters, jitter = self._stats, self._rtp.counters, self._jitter.counters
        stats.packets_sent = counters.packets_sent
        stats.bytes_sent = counters.bytes_sent
        stats.packets_received = counters.packets_received
        stats.bytes_received = counters.bytes_received
        stats.packets_dropped = counters.packets_dropped
        stats.packets_lost = jitter.lost
        stats.packets_late = jitter.late + jitter.duplicate
        stats.jitter_delay_ms = self._jitter.delay_frames * FRAME_MS
        return stats

    def close(self) -> float | None:
        """Stop everything; return the recording's duration in seconds, if recording."""
        self._closed = True
        self._pacer.close()
        self._rtp.close()
        self.stop_playing()
        self._stream = None
        self.on_dtmf = None
        recorder, self._recorder = self._recorder, None
        return recorder.close() if recorder is not None else None

    def _on_packet(self, packet: RtpPacket) -> None:
        params = self._params
        if params is None:
            return
        if packet.payload_type == params.dtmf_payload_type:
            digit = self._dtmf_in.feed(packet.timestamp, packet.payload)
            on_dtmf = self.on_dtmf
            if digit is not None and on_dtmf is not None:
                _guarded("DTMF", lambda: on_dtmf(digit))
            return
        decoder = self._decoders.get(packet.payload_type)
        if decoder is not None and packet.payload:
            self._jitter.push(
                packet.sequence, packet.ssrc, decoder.decode(packet.payload)
            )

    def _tick(self, skipped: int) -> None:
        """Send this tick's packet and pass this tick's received audio on."""
        if skipped:
            # The loop stalled: the RTP clock moves on, and the recording and stream
            # get the missed frames (up to a second) so they keep the call's time.
            self._timestamp += FRAME_SAMPLES * skipped
            self._marker = True
            for _ in range(min(skipped, MAX_REPLAYED_FRAMES)):
                self._receive()
        self._send()
        self._timestamp = (self._timestamp + FRAME_SAMPLES) % (1 << 32)
        self._receive()

    def _next_audio(self) -> bytes | None:
        player = self._player
        if player is None:
            return None
        frame = player.next_frame()
        if frame is None:
            on_done = self._on_done
            self._player = None
            self._on_done = None
            if on_done is not None:
                _guarded("playback done", on_done)
        return frame

    def _send(self) -> None:
        params, codec = self._params, self._codec
        frame = self._next_audio()
        if params is None or codec is None or not params.send:
            return
        event = None
        dtmf_type = params.dtmf_payload_type
        if dtmf_type is not None and self._dtmf_out.busy:
            event = self._dtmf_out.next_packet(self._timestamp)
        if event is not None and dtmf_type is not None:
            sent = self._rtp.send(
                event.payload,
                payload_type=dtmf_type,
                timestamp=event.timestamp,
                marker=event.marker,
            )
        else:
            sent = self._rtp.send(
                codec.encode(frame) if frame is not None else codec.silence(),
                payload_type=params.payload_type,
                timestamp=self._timestamp,
                marker=self._marker,
            )
            self._marker = self._marker and not sent
        if sent:
            now = asyncio.get_running_loop().time()
            if self._last_send is not None:
                self._stats.send_intervals.append(now - self._last_send)
            self._last_send = now

    def _receive(self) -> None:
        recorder, stream = self._recorder, self._stream
        if recorder is None and stream is None:
            self._jitter.pop()
            return
        pcm = self._jitter.pop() or _SILENCE
        if recorder is not None:
            recorder.write(pcm)
        if stream is not None:
            chunk = self._stream_resampler.convert(pcm)
            _guarded("stream", lambda: stream(chunk, STREAM_RATE))
