"""State shared by the worker's accounts and calls, owned by the polling thread."""

from collections import deque
from collections.abc import Callable
import queue
import time
from typing import TYPE_CHECKING, Any

from ...protocol.payloads import EventName, Payload, RegistrationExchange
from ..core.channel import ProtocolWriter
from ..core.redact import redact
from .scheduler import Scheduler
from .tls import TlsFailures

if TYPE_CHECKING:
    from .call import WorkerCall

MAX_EXCHANGES = 50
# Fast call churn: pjsua opens an RTP and an RTCP socket in the media ioqueue for every
# call (before any callback), and pjlib gives a closed socket's slot back only 500 ms
# later (PJ_IOQUEUE_KEY_FREE_DELAY); past 64 slots a C assert aborts the worker. Once
# more than CHURN_LIMIT calls began within CHURN_WINDOW, an answer waits until its call
# is CHURN_HOLD old: the 4 call slots stay taken that long, pjsua answers further
# INVITEs 486 itself (no sockets), and the churn stays at most 4 calls per CHURN_HOLD.
CHURN_WINDOW = 0.5
CHURN_LIMIT = 12
CHURN_HOLD = 0.1
# How long a disconnected player or stream port is kept before it is deleted.
RETIRE_SECONDS = 0.5

type Posted = Callable[[], None]


def _no_wake() -> None:
    """Wake nobody (before the SIP port exists)."""


class WorkerContext:
    """What accounts and calls need from the worker: events, timers, shared state."""

    def __init__(self, writer: ProtocolWriter) -> None:
        """Start empty; the runtime fills in the source policy at `start`."""
        self.writer = writer
        self.scheduler = Scheduler()
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.restrict_sources = True
        self.allowed_sources: frozenset[str] = frozenset()
        self.secrets: set[str] = set()
        self.calls: dict[str, WorkerCall] = {}
        self.refused_calls: list[WorkerCall] = []
        self.finished_calls: list[WorkerCall] = []
        self.exchanges: deque[RegistrationExchange] = deque(maxlen=MAX_EXCHANGES)
        self.retired: deque[tuple[float, Any]] = deque()
        self.tls_failures = TlsFailures()  # filled by the endpoint's transport states
        self.call_starts: deque[float] = deque(maxlen=CHURN_LIMIT + 1)
        # Makes the polling thread's libHandleEvents return (set by the runtime).
        self.wake: Callable[[], None] = _no_wake

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

    def note_call_start(self) -> None:
        """Record that a call (with its media sockets) began now."""
        self.call_starts.append(time.monotonic())

    def answer_delay(self, created_at: float) -> float:
        """Return how long an answer to a call created at ``created_at`` must wait."""
        starts = self.call_starts
        now = time.monotonic()
        if len(starts) <= CHURN_LIMIT or now - starts[0] > CHURN_WINDOW:
            return 0.0
        return max(0.0, created_at + CHURN_HOLD - now)

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
