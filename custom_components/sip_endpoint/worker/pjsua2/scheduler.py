"""Timers run by the polling thread (retry backoff, keep-alives, deadlines)."""

from collections.abc import Callable
from dataclasses import dataclass, field
import heapq
import itertools
import time


@dataclass(order=True, slots=True)
class TimerHandle:
    """A scheduled callback; `cancel` keeps it from running."""

    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True


class Scheduler:
    """A heap of timers, checked on every turn of the polling loop."""

    def __init__(self) -> None:
        """Start with no timers."""
        self._heap: list[TimerHandle] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` on the polling thread after ``delay`` seconds."""
        handle = TimerHandle(time.monotonic() + delay, next(self._seq), callback)
        heapq.heappush(self._heap, handle)
        return handle

    def due(self) -> list[Callable[[], None]]:
        """Pop and return the callbacks whose time has come."""
        now = time.monotonic()
        ready: list[Callable[[], None]] = []
        while self._heap and self._heap[0].when <= now:
            handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                ready.append(handle.callback)
        return ready

    def clear(self) -> None:
        """Drop every timer."""
        self._heap.clear()
