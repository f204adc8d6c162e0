"""Bursts of unwanted input, summarised: one line per source and interval, not per packet.

A SIP scanner sends thousands of requests a second. Each refusal (or malformed
message) logged and reported on its own floods Home Assistant's log and the worker's
pipe. `BurstSummary` counts them per source instead:

* the first one of a burst is reported at once, with what it was (`on_first`);
* further ones are counted; every ``interval`` seconds each source with a count gets
  one summary (`on_summary`: how many, which kinds, over how long);
* a source with nothing new for a whole interval ends its burst (its next one is a
  first again); `flush` reports every pending count at once (the worker stops).

So a burst of ``D`` seconds from one source gives at most ``2 + D / interval``
reports, however many packets it holds. Past `MAX_SOURCES` sources in one interval,
new sources are counted together under `OTHER_SOURCES` (spoofed UDP sources cannot
grow the table). `RefusalLog` is the one both engines use for refused requests: an
INFO line and a `refused` event (with the count) per report.

The clock and the timer are given (the asyncio loop's, or the pjsua2 polling
thread's scheduler), so tests run it on a fake clock. Not thread-safe: one thread
calls everything.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import time
from typing import Final, Protocol

from ...protocol.payloads import Refused

_LOGGER = logging.getLogger(__name__)

SUMMARY_INTERVAL: Final = 60.0  # seconds between two summaries of one source
MAX_SOURCES: Final = 64  # sources tracked at once; more share OTHER_SOURCES
MAX_KINDS: Final = 16  # kinds named in one summary (SIP has 14 methods); more: "other"
OTHER_SOURCES: Final = "other sources"
OTHER_KIND: Final = "other"


class TimerHandle(Protocol):
    """A scheduled callback (`asyncio.TimerHandle`, the pjsua2 scheduler's)."""

    def cancel(self) -> None:
        """Do not run the callback."""


type Schedule = Callable[[float, Callable[[], None]], TimerHandle]


@dataclass(frozen=True, slots=True)
class Summary:
    """Refusals from one source since its last report."""

    source: str
    count: int
    kinds: dict[str, int]  # kind (e.g. a SIP method) -> how many, most first
    seconds: float  # how long they were counted over

    @property
    def kinds_text(self) -> str:
        """Return the kinds, most frequent first, comma-separated."""
        return ", ".join(self.kinds)


@dataclass(slots=True)
class _Burst:
    since: float
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def pending(self) -> int:
        return sum(self.kinds.values())


class BurstSummary:
    """Counts unwanted input per source; reports a burst's first and then summaries."""

    def __init__(
        self,
        on_first: Callable[[str, str], None],
        on_summary: Callable[[Summary], None],
        schedule: Schedule,
        *,
        interval: float = SUMMARY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        """Report through ``on_first(source, kind)`` and ``on_summary(summary)``.

        ``schedule(delay, callback)`` runs ``callback`` once after ``delay`` seconds
        on the caller's thread (``loop.call_later``, `Scheduler.call_later`).
        """
        self._on_first = on_first
        self._on_summary = on_summary
        self._schedule = schedule
        self._interval = interval
        self._clock = clock
        self._max_sources = max_sources
        self._bursts: dict[str, _Burst] = {}
        self._timer: TimerHandle | None = None

    @property
    def sources(self) -> list[str]:
        """Return the sources in a burst now (tracked until a quiet interval)."""
        return list(self._bursts)

    def note(self, source: str, kind: str) -> None:
        """Count one refusal of ``kind`` (e.g. "INVITE") from ``source``."""
        burst = self._bursts.get(source)
        if burst is None:
            if len(self._bursts) >= self._max_sources:
                self._count(OTHER_SOURCES, kind)
                return
            self._bursts[source] = _Burst(self._clock())
            self._arm()
            self._report_first(source, kind)
            return
        self._count(source, kind)

    def flush(self) -> None:
        """Report every pending count now and forget every burst (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._clock()
        bursts, self._bursts = self._bursts, {}
        for source, burst in bursts.items():
            if burst.pending:
                self._report(source, burst, now)

    def tick(self) -> None:
        """Summarise each source with a count; end the bursts that were quiet."""
        self._timer = None
        now = self._clock()
        for source, burst in list(self._bursts.items()):
            if not burst.pending:
                del self._bursts[source]  # a quiet interval ends the burst
                continue
            self._report(source, burst, now)
            burst.since = now
            burst.kinds.clear()
        if self._bursts:
            self._arm()

    def _count(self, source: str, kind: str) -> None:
        burst = self._bursts.get(source)
        if burst is None:  # OTHER_SOURCES, first counted
            burst = self._bursts[source] = _Burst(self._clock())
            self._arm()
        if kind not in burst.kinds and len(burst.kinds) >= MAX_KINDS:
            kind = OTHER_KIND
        burst.kinds[kind] += 1

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self._schedule(self._interval, self.tick)

    def _report_first(self, source: str, kind: str) -> None:
        try:
            self._on_first(source, kind)
        except Exception:
            _LOGGER.exception("Reporting a refusal failed")

    def _report(self, source: str, burst: _Burst, now: float) -> None:
        summary = Summary(
            source, burst.pending, dict(burst.kinds.most_common()), now - burst.since
        )
        try:
            self._on_summary(summary)
        except Exception:
            _LOGGER.exception("Reporting refusals failed")


class RefusalLog:
    """Refused requests of both engines: INFO lines and `refused` events, summarised.

    The first refusal of a burst logs "Refused INVITE from 192.0.2.7" and sends
    ``Refused(source, method)`` (count 1); each summary logs "41 more requests from
    192.0.2.7 refused in the last 60 s (OPTIONS, INVITE)" and sends ``Refused`` with
    ``count=41`` and ``method="OPTIONS, INVITE"``.
    """

    def __init__(
        self,
        emit: Callable[[Refused], None],
        schedule: Schedule,
        *,
        interval: float = SUMMARY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Send events through ``emit``; time summaries with ``schedule``."""
        self._emit = emit
        self.bursts = BurstSummary(
            self._first, self._summary, schedule, interval=interval, clock=clock
        )

        self.strays = BurstSummary(
            _first_stray, _stray_summary, schedule, interval=interval, clock=clock
        )

    def refuse(self, source: str, method: str) -> None:
        """Count one refused request (or connection: method "TCP"/"TLS")."""
        self.bursts.note(source, method)

    def not_found(self, source: str, request_uri: str) -> None:
        """Count an INVITE from an allowed source for no extension of ours (404).

        Logged per burst too (no event): without a source filter a scanner's
        INVITEs for guessed users all end here.
        """
        self.strays.note(source, request_uri[:80])

    def flush(self) -> None:
        """Report what is pending (the worker stops)."""
        self.bursts.flush()
        self.strays.flush()

    def _first(self, source: str, method: str) -> None:
        _LOGGER.info("Refused %s from %s", method, source)
        self._emit(Refused(source=source, method=method))

    def _summary(self, summary: Summary) -> None:
        _LOGGER.info(
            "%d more requests from %s refused in the last %.0f s (%s)",
            summary.count,
            summary.source,
            summary.seconds,
            summary.kinds_text,
        )
        self._emit(
            Refused(
                source=summary.source,
                method=summary.kinds_text,
                count=summary.count,
            )
        )


def _first_stray(source: str, request_uri: str) -> None:
    _LOGGER.info("Refused INVITE from %s for another user: %s", source, request_uri)


def _stray_summary(summary: Summary) -> None:
    _LOGGER.info(
        "%d more INVITEs from %s for other users refused in the last %.0f s",
        summary.count,
        summary.source,
        summary.seconds,
    )
