"""State shared by the worker's accounts and calls, owned by the polling thread.

The calls themselves are not here: the polling loop keeps them in a `CallTable`
(`call_table.py`), so this module, which accounts, calls and media ports all use,
knows none of them.
"""

from collections import deque
from collections.abc import Callable
import queue
import time
from typing import Any

from ...protocol.payloads import EventName, Payload, RegistrationExchange
from ..core.channel import ProtocolWriter
from ..core.redact import redact
from ..core.refusals import RefusalLog
from .scheduler import Scheduler
from .tls import TlsFailures

MAX_EXCHANGES = 50
# How long a disconnected player or stream port is kept before it is deleted.
RETIRE_SECONDS = 0.5

type Posted = Callable[[], None]


def _no_wake() -> None:
    """Wake nobody (before the SIP port exists)."""


class WorkerContext:
    """What accounts, calls and ports need from the worker: events, timers, secrets."""

    def __init__(self, writer: ProtocolWriter) -> None:
        """Start empty; the runtime fills in the source policy at `start`."""
        self.writer = writer
        self.scheduler = Scheduler()
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.restrict_sources = True
        self.allowed_sources: frozenset[str] = frozenset()
        self.secrets: set[str] = set()
        self.exchanges: deque[RegistrationExchange] = deque(maxlen=MAX_EXCHANGES)
        self.retired: deque[tuple[float, Any]] = deque()
        self.tls_failures = TlsFailures()  # filled by the endpoint's transport states
        # Makes the polling thread's libHandleEvents return (set by the runtime).
        self.wake: Callable[[], None] = _no_wake
        self.refusals = RefusalLog(
            lambda refused: self.emit(EventName.REFUSED, refused),
            self.scheduler.call_later,
        )

    def emit(self, name: EventName, payload: Payload) -> None:
        """Send an event to the Home Assistant side (any thread)."""
        self.writer.event(name, payload)

    def post(self, work: Posted) -> None:
        """Run ``work`` on the polling thread soon (any thread)."""
        self.deliver(work)

    def deliver(self, item: Any) -> None:
        """Put a request line or work in the inbox and wake the polling thread."""
        self.inbox.put(item)
        self.wake()

    def source_allowed(self, host: str) -> bool:
        """Return whether SIP requests from ``host`` are accepted."""
        return not self.restrict_sources or host in self.allowed_sources

    def scrub(self, text: str) -> str:
        """Return ``text`` without any credential."""
        return redact(text, self.secrets)

    def retire(self, media: Any) -> None:
        """Delete a disconnected pjsua2 player or port after `RETIRE_SECONDS`.

        pjsua2 2.15 removes conference ports asynchronously and delivers a
        player's end-of-file callback from its media event thread. An object
        deleted right after it was disconnected can still be called into from
        those threads, and the worker dies with SIGSEGV.
        """
        self.retired.append((time.monotonic() + RETIRE_SECONDS, media))

    def drop_retired(self, *, everything: bool = False) -> None:
        """Delete the retired objects whose time is up (polling thread)."""
        now = time.monotonic()
        while self.retired and (everything or self.retired[0][0] <= now):
            _, media = self.retired.popleft()
            destroy_native(media)


def destroy_native(media: Any) -> None:
    """Delete a pjsua2 object's C++ side while its Python side is still alive.

    The C++ destructor unhooks the object from pjmedia's clock thread, and it
    runs without the GIL. If Python's garbage collection triggered it, that
    thread could call back into the half-freed Python object meanwhile.
    """
    if media.thisown:
        type(media).__swig_destroy__(media)
