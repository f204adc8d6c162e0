"""RFC 4733 telephone events: receive digits, send digits.

`DtmfReceiver.feed` reads one telephone-event payload and returns a digit once per
event: every packet of an event (its updates and its end packet, usually sent three
times) carries the event's start timestamp, so a timestamp seen before is the same
event. `DtmfSender` turns queued digits into the packets of one event per digit, one
packet per 20 ms tick: updates with a growing duration (the first with the marker
bit), then the end packet three times, then a short gap of audio before the next one.
"""

from collections import deque
from dataclasses import dataclass
import struct

DIGITS = "0123456789*#ABCD"
EVENT = struct.Struct("!BBH")
SAMPLES_PER_TICK = 160
EVENT_TICKS = 8  # 160 ms
END_REPEATS = 3
GAP_TICKS = 3  # 60 ms of audio between digits
VOLUME = 10  # -10 dBm0
RECENT_EVENTS = 16
MAX_QUEUED = 64


class DtmfUnavailableError(RuntimeError):
    """The peer did not negotiate telephone-event: send the digit by SIP INFO instead."""


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One telephone-event packet to send."""

    payload: bytes
    timestamp: int
    marker: bool


class DtmfReceiver:
    """Finds the digits in received telephone-event payloads."""

    def __init__(self) -> None:
        """Start with no events seen."""
        self._recent: deque[int] = deque(maxlen=RECENT_EVENTS)
        self._last: tuple[int, int, int, bool] | None = None

    def feed(self, timestamp: int, payload: bytes) -> str | None:
        """Return the digit when this packet starts a new event, else None."""
        if len(payload) < EVENT.size:
            return None
        event, flags, duration = EVENT.unpack_from(payload)
        ended = bool(flags & 0x80)
        last = self._last
        self._last = (timestamp, event, duration, ended)
        if timestamp in self._recent:
            return None
        self._recent.append(timestamp)
        if (
            last is not None
            and last[1] == event
            and not last[3]
            and (timestamp - last[0]) % (1 << 32) == last[2]
        ):
            # A long event's next segment (RFC 4733 2.5.2.3): the same digit.
            return None
        if event >= len(DIGITS):
            return None
        return DIGITS[event]


class DtmfSender:
    """Makes the telephone-event packets of queued digits, one per tick."""

    def __init__(self) -> None:
        """Start with nothing queued."""
        self._queue: deque[int] = deque()
        self._event: int | None = None
        self._start = 0
        self._tick = 0
        self._gap = 0

    @property
    def busy(self) -> bool:
        """Return whether a digit is being sent or waits."""
        return self._event is not None or bool(self._queue) or self._gap > 0

    def queue(self, digit: str) -> None:
        """Queue one digit of "0-9*#A-D"; ValueError for anything else."""
        if len(digit) != 1 or digit.upper() not in DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        if len(self._queue) >= MAX_QUEUED:
            raise ValueError("too many DTMF digits queued")
        self._queue.append(DIGITS.index(digit.upper()))

    def clear(self) -> None:
        """Forget queued digits (the one being sent ends without its end packets)."""
        self._queue.clear()
        self._event = None
        self._gap = 0

    def next_packet(self, timestamp: int) -> EventPacket | None:
        """Return this tick's event packet, or None to send audio this tick.

        ``timestamp`` is the RTP timestamp of this tick; an event starting now keeps
        it for all its packets.
        """
        if self._event is None:
            if self._gap > 0:
                self._gap -= 1
                return None
            if not self._queue:
                return None
            self._event = self._queue.popleft()
            self._start = timestamp
            self._tick = 0
        tick = self._tick
        self._tick += 1
        ended = tick >= EVENT_TICKS - 1
        duration = SAMPLES_PER_TICK * min(tick + 1, EVENT_TICKS)
        payload = EVENT.pack(self._event, (0x80 if ended else 0) | VOLUME, duration)
        packet = EventPacket(payload, self._start, marker=tick == 0)
        if tick >= EVENT_TICKS - 1 + END_REPEATS - 1:
            self._event = None
            self._gap = GAP_TICKS
        return packet
