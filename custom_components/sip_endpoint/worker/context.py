"""State shared by the worker's accounts and calls, owned by the polling thread."""

from collections import deque
from collections.abc import Callable
import queue
from typing import TYPE_CHECKING, Any

from ..protocol.payloads import EventName, Payload, RegistrationExchange
from .channel import ProtocolWriter
from .redact import redact
from .scheduler import Scheduler

if TYPE_CHECKING:
    from .call import WorkerCall

MAX_EXCHANGES = 50

type Posted = Callable[[], None]


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

    def emit(self, name: EventName, payload: Payload) -> None:
        """Send an event to the Home Assistant side (any thread)."""
        self.writer.event(name, payload)

    def post(self, work: Posted) -> None:
        """Run ``work`` on the polling thread soon (any thread)."""
        self.inbox.put(work)

    def source_allowed(self, host: str) -> bool:
        """Return whether SIP requests from ``host`` are accepted."""
        return not self.restrict_sources or host in self.allowed_sources

    def scrub(self, text: str) -> str:
        """Return ``text`` without any credential."""
        return redact(text, self.secrets)
