"""A small jitter buffer for received audio.

Packets go in as decoded PCM with their RTP sequence number and SSRC (`push`); the
media clock takes out one frame every 20 ms (`pop`). The buffer reorders by sequence
number, drops late and duplicate packets, and plays out after a delay (three frames,
60 ms, to start with): it waits until that much audio is buffered, then plays. A packet
still missing when its turn comes is played as silence. It adapts: when the buffer runs
dry (the network stalled, or the peer paused) it waits for the delay again, one frame
longer each time (up to ``max_delay_frames``); after ``calm_frames`` frames played
without running dry it shortens the delay by a frame again (down to the starting one),
dropping a frame of audio to do so; and when the peer's clock runs faster than ours and
audio piles up past the delay plus a margin, the oldest audio is dropped. Everything is
bounded: at most ``max_packets`` packets are held; a packet too far ahead, or a new
SSRC, restarts the buffer.
"""

from dataclasses import dataclass

SEQUENCE_MOD = 1 << 16
HALF_SEQUENCE = 1 << 15


@dataclass(slots=True)
class JitterCounters:
    """What the buffer did with the packets it was given."""

    pushed: int = 0
    late: int = 0
    duplicate: int = 0
    lost: int = 0
    dropped: int = 0  # frames of audio dropped to keep the delay
    underruns: int = 0
    restarts: int = 0


class JitterBuffer:
    """Reorders packets and plays them out as fixed-size frames after a delay."""

    def __init__(
        self,
        *,
        frame_bytes: int = 320,
        delay_frames: int = 3,
        margin_frames: int = 10,
        max_delay_frames: int = 8,
        calm_frames: int = 500,
        max_packets: int = 64,
    ) -> None:
        """Play ``frame_bytes`` per `pop`, after ``delay_frames`` frames are buffered."""
        self.frame_bytes = frame_bytes
        self.counters = JitterCounters()
        self._base_delay = self._delay = delay_frames * frame_bytes
        self._max_delay = max(max_delay_frames, delay_frames) * frame_bytes
        self._margin = margin_frames * frame_bytes
        self._calm_frames = calm_frames
        self._calm = 0
        self._max_packets = max_packets
        self._packets: dict[int, bytes] = {}
        self._buffered = 0
        self._fifo = bytearray()
        self._ssrc: int | None = None
        self._next = 0
        self._highest = 0
        self._playing = False
        self._started = False
        self._last_length = frame_bytes

    @property
    def delay_frames(self) -> int:
        """Return the current playout delay in frames."""
        return self._delay // self.frame_bytes

    @property
    def buffered_bytes(self) -> int:
        """Return how much audio waits to be played."""
        return self._buffered + len(self._fifo)

    def _restart(self, ssrc: int, sequence: int) -> None:
        if self._ssrc is not None:
            self.counters.restarts += 1
        self._ssrc = ssrc
        self._packets.clear()
        self._buffered = 0
        self._fifo.clear()
        self._playing = False
        self._started = False
        self._next = self._highest = SEQUENCE_MOD + sequence

    def _extend(self, sequence: int) -> int:
        delta = (sequence - self._highest) % SEQUENCE_MOD
        if delta >= HALF_SEQUENCE:
            delta -= SEQUENCE_MOD
        return self._highest + delta

    def push(self, sequence: int, ssrc: int, pcm: bytes) -> bool:
        """Add one packet's audio; False when it was late, a duplicate or empty."""
        counters = self.counters
        if not pcm:
            return False
        if ssrc != self._ssrc:
            self._restart(ssrc, sequence)
        index = self._extend(sequence)
        if (
            index < self._next
            and not self._started
            and self._highest - index < self._max_packets
        ):
            # Nothing played since the start: an earlier packet moves the start back.
            self._next = index
        if index < self._next:
            counters.late += 1
            return False
        if index in self._packets:
            counters.duplicate += 1
            return False
        if index >= self._next + self._max_packets:
            self._restart(ssrc, sequence)
            index = self._next
        counters.pushed += 1
        self._packets[index] = pcm
        self._buffered += len(pcm)
        self._highest = max(self._highest, index)
        self._last_length = len(pcm)
        return True

    def _take_next(self) -> bool:
        """Move the next packet (or silence for a lost one) to the FIFO."""
        packet = self._packets.pop(self._next, None)
        if packet is None:
            if not self._packets:
                return False
            self.counters.lost += 1
            packet = bytes(self._last_length)
        else:
            self._buffered -= len(packet)
        self._fifo += packet
        self._next += 1
        self._started = True
        return True

    def pop(self) -> bytes | None:
        """Return the next frame, or None while there is nothing to play."""
        size = self.frame_bytes
        if not self._playing:
            if self.buffered_bytes < self._delay:
                return None
            self._playing = True
        while len(self._fifo) < size:
            if not self._take_next():
                break
        if not self._fifo:
            self._ran_dry()
            return None
        if len(self._fifo) < size:
            # Ran dry mid-frame: pad this one and wait for the delay again.
            self._ran_dry()
            self._fifo += bytes(size - len(self._fifo))
        frame = bytes(self._fifo[:size])
        del self._fifo[:size]
        self._calm += 1
        if self._calm >= self._calm_frames and self._delay > self._base_delay:
            self._calm = 0
            self._delay -= size
            self._discard(size)
        if self.buffered_bytes > self._delay + self._margin:
            self._discard(self.buffered_bytes - self._delay)
        return frame

    def _ran_dry(self) -> None:
        """Wait for the delay again, one frame longer (up to the maximum)."""
        self.counters.underruns += 1
        self._playing = False
        self._calm = 0
        self._delay = min(self._delay + self.frame_bytes, self._max_delay)

    def _discard(self, size: int) -> None:
        """Drop ``size`` bytes of the oldest audio (missing packets count as silence)."""
        while len(self._fifo) < size and self._take_next():
            pass
        dropped = min(size, len(self._fifo))
        del self._fifo[:dropped]
        self.counters.dropped += -(-dropped // self.frame_bytes)
