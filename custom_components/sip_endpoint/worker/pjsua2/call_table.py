"""The worker's calls: the live ones by protocol id, and the refused ones until they end.

The polling loop owns the table and hands it to the requests and to the INVITE
handler. A call reports its own end through the callback it was made with
(`CallTable.finish`); the loop reaps finished calls after each pass, never inside
the call's own pjsua2 callback.
"""

from collections import deque
from collections.abc import Mapping
import time

from ...protocol.payloads import CallDirection
from .call import WorkerCall

# Fast call churn: pjsua opens an RTP and an RTCP socket in the media ioqueue for every
# call (before any callback), and pjlib gives a closed socket's slot back only 500 ms
# later (PJ_IOQUEUE_KEY_FREE_DELAY); past 64 slots a C assert aborts the worker. Once
# more than CHURN_LIMIT calls began within CHURN_WINDOW, an answer waits until its call
# is CHURN_HOLD old: the 4 call slots stay taken that long, pjsua answers further
# INVITEs 486 itself (no sockets), and the churn stays at most 4 calls per CHURN_HOLD.
CHURN_WINDOW = 0.5
CHURN_LIMIT = 12
CHURN_HOLD = 0.1


class CallTable:
    """Every pjsua2 call the worker holds; each must stay referenced until it ends."""

    def __init__(self) -> None:
        """Start empty."""
        self._live: dict[str, WorkerCall] = {}
        self._refused: list[WorkerCall] = []
        self._finished: list[WorkerCall] = []
        self._starts: deque[float] = deque(maxlen=CHURN_LIMIT + 1)

    @property
    def live(self) -> Mapping[str, WorkerCall]:
        """Return the calls requests can name, by protocol id."""
        return self._live

    def add(self, call: WorkerCall) -> None:
        """Keep an outbound call, or an inbound call that was announced."""
        self._live[call.call_id] = call
        if call.direction is CallDirection.INBOUND:
            self._starts.append(time.monotonic())

    def keep_refused(self, call: WorkerCall) -> None:
        """Keep a refused call until it is disconnected (a collected Call hangs up)."""
        self._refused.append(call)

    def finish(self, call: WorkerCall) -> None:
        """Take note that ``call`` is disconnected; `reap` drops it later."""
        self._finished.append(call)

    def reap(self) -> None:
        """Release the media of the finished calls and drop them (polling thread)."""
        finished, self._finished = self._finished, []
        for call in finished:
            call.release_media()
            self._live.pop(call.call_id, None)
            if call in self._refused:
                self._refused.remove(call)

    def answer_delay(self, created_at: float) -> float:
        """Return how long an answer to a call created at ``created_at`` must wait."""
        starts = self._starts
        now = time.monotonic()
        if len(starts) <= CHURN_LIMIT or now - starts[0] > CHURN_WINDOW:
            return 0.0
        return max(0.0, created_at + CHURN_HOLD - now)

    def clear(self) -> None:
        """Drop every call (teardown, before the library is destroyed)."""
        self._live.clear()
        self._refused.clear()
        self._finished.clear()
