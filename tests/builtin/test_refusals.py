"""The refusal summary (`worker/core/refusals.py`) on a fake clock and timer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import Refused
from custom_components.sip_endpoint.worker.core.refusals import (
    MAX_KINDS,
    OTHER_KIND,
    OTHER_SOURCES,
    BurstSummary,
    RefusalLog,
    Summary,
)

if TYPE_CHECKING:
    from collections.abc import Callable

INTERVAL = 60.0


class FakeTimer:
    """A clock and a one-shot timer list, advanced by hand."""

    def __init__(self) -> None:
        """Start at 1000 s with nothing scheduled."""
        self.now = 1000.0
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        """Return the fake time."""
        return self.now

    def schedule(self, delay: float, callback: Callable[[], None]) -> FakeHandle:
        """Remember ``callback`` for ``now + delay``."""
        item = (self.now + delay, callback)
        self.pending.append(item)
        return FakeHandle(self, item)

    def advance(self, seconds: float) -> None:
        """Move the clock, running what falls due (in order)."""
        target = self.now + seconds
        while due := sorted(
            (item for item in self.pending if item[0] <= target), key=lambda i: i[0]
        ):
            when, callback = due[0]
            self.pending.remove(due[0])
            self.now = when
            callback()
        self.now = target


class FakeHandle:
    """Cancels one pending callback of a `FakeTimer`."""

    def __init__(
        self, timer: FakeTimer, item: tuple[float, Callable[[], None]]
    ) -> None:
        """Point at ``item``."""
        self._timer = timer
        self._item = item

    def cancel(self) -> None:
        """Drop the callback if it has not run."""
        if self._item in self._timer.pending:
            self._timer.pending.remove(self._item)


class Recorder:
    """Collects what a `BurstSummary` reports."""

    def __init__(self) -> None:
        """Start empty."""
        self.firsts: list[tuple[str, str]] = []
        self.summaries: list[Summary] = []

    def first(self, source: str, kind: str) -> None:
        """Record a burst's first."""
        self.firsts.append((source, kind))

    def summary(self, summary: Summary) -> None:
        """Record a summary."""
        self.summaries.append(summary)


@pytest.fixture
def timer() -> FakeTimer:
    """Return a fake clock and timer."""
    return FakeTimer()


@pytest.fixture
def recorder() -> Recorder:
    """Return an empty recorder."""
    return Recorder()


@pytest.fixture
def bursts(timer: FakeTimer, recorder: Recorder) -> BurstSummary:
    """Return a summary on the fake clock, 60 s interval."""
    return BurstSummary(
        recorder.first,
        recorder.summary,
        timer.schedule,
        interval=INTERVAL,
        clock=timer.clock,
        max_sources=3,
    )


def test_a_flood_gives_one_first_and_one_summary_per_interval(
    bursts: BurstSummary, recorder: Recorder, timer: FakeTimer
) -> None:
    """20000 requests over 150 s: a first, then a summary each interval, then quiet."""
    for _second in range(150):
        for _ in range(133):
            bursts.note("192.0.2.7", "OPTIONS")
        timer.advance(1)
    for _ in range(50):
        bursts.note("192.0.2.7", "OPTIONS")
    timer.advance(5 * INTERVAL)
    assert recorder.firsts == [("192.0.2.7", "OPTIONS")]
    counts = [s.count for s in recorder.summaries]
    # Ticks at 60, 120 and 180 s: the flood ends in the third interval.
    assert len(counts) == 3
    assert 1 + sum(counts) == 150 * 133 + 50
    assert all(s.kinds == {"OPTIONS": s.count} for s in recorder.summaries)
    assert recorder.summaries[0].seconds == pytest.approx(INTERVAL)
    # A quiet interval ended the burst: nothing is tracked, no timer is left.
    assert bursts.sources == []
    assert timer.pending == []


def test_a_single_refusal_is_reported_once(
    bursts: BurstSummary, recorder: Recorder, timer: FakeTimer
) -> None:
    """One request: its first line, no summary ever; the next burst is a first again."""
    bursts.note("192.0.2.7", "INVITE")
    timer.advance(10 * INTERVAL)
    assert recorder.firsts == [("192.0.2.7", "INVITE")]
    assert recorder.summaries == []
    bursts.note("192.0.2.7", "SUBSCRIBE")
    assert recorder.firsts[-1] == ("192.0.2.7", "SUBSCRIBE")


def test_each_source_has_its_own_burst(
    bursts: BurstSummary, recorder: Recorder, timer: FakeTimer
) -> None:
    """Two sources: a first each, and each one's count in its own summary."""
    for _ in range(5):
        bursts.note("192.0.2.7", "INVITE")
        bursts.note("192.0.2.8", "OPTIONS")
    bursts.note("192.0.2.8", "INVITE")
    timer.advance(INTERVAL)
    assert recorder.firsts == [("192.0.2.7", "INVITE"), ("192.0.2.8", "OPTIONS")]
    by_source = {s.source: s for s in recorder.summaries}
    assert by_source["192.0.2.7"].count == 4
    assert by_source["192.0.2.8"].count == 5
    assert by_source["192.0.2.8"].kinds == {"OPTIONS": 4, "INVITE": 1}
    assert by_source["192.0.2.8"].kinds_text == "OPTIONS, INVITE"


def test_flush_reports_what_is_pending_and_forgets_the_bursts(
    bursts: BurstSummary, recorder: Recorder, timer: FakeTimer
) -> None:
    """At shutdown every pending count is reported at once."""
    for _ in range(7):
        bursts.note("192.0.2.7", "INVITE")
    timer.advance(12)
    bursts.flush()
    assert [(s.source, s.count) for s in recorder.summaries] == [("192.0.2.7", 6)]
    assert recorder.summaries[0].seconds == pytest.approx(12)
    assert bursts.sources == []
    assert timer.pending == []  # its timer is cancelled
    bursts.flush()
    assert len(recorder.summaries) == 1


def test_too_many_sources_share_one_bucket(
    bursts: BurstSummary, recorder: Recorder, timer: FakeTimer
) -> None:
    """Spoofed sources past the table's size are counted together, without firsts."""
    for index in range(100):
        bursts.note(f"198.51.100.{index}", "OPTIONS")
    assert len(recorder.firsts) == 3
    assert len(bursts.sources) == 4
    timer.advance(INTERVAL)
    assert [(s.source, s.count) for s in recorder.summaries] == [(OTHER_SOURCES, 97)]


def test_kinds_are_capped(
    bursts: BurstSummary, recorder: Recorder, timer: FakeTimer
) -> None:
    """A scanner's invented methods cannot grow a summary past MAX_KINDS names."""
    bursts.note("192.0.2.7", "FIRST")
    for index in range(50):
        bursts.note("192.0.2.7", f"M{index}")
    timer.advance(INTERVAL)
    (summary,) = recorder.summaries
    assert summary.count == 50
    assert len(summary.kinds) == MAX_KINDS + 1
    assert summary.kinds[OTHER_KIND] == 50 - MAX_KINDS


def test_a_failing_reporter_does_not_stop_the_count(
    timer: FakeTimer, caplog: pytest.LogCaptureFixture
) -> None:
    """A reporter that raises is logged; counting and the timer go on."""
    summaries: list[Summary] = []

    def broken_first(source: str, kind: str) -> None:
        raise RuntimeError("pipe closed")

    bursts = BurstSummary(
        broken_first, summaries.append, timer.schedule, clock=timer.clock
    )
    bursts.note("192.0.2.7", "INVITE")
    bursts.note("192.0.2.7", "INVITE")
    timer.advance(INTERVAL)
    assert "Reporting a refusal failed" in caplog.text
    assert [s.count for s in summaries] == [1]


def test_refusal_log_sends_events_and_log_lines(
    timer: FakeTimer, caplog: pytest.LogCaptureFixture
) -> None:
    """`RefusalLog`: the first with its method, then a summary event with its count."""
    events: list[Refused] = []
    log = RefusalLog(
        events.append, timer.schedule, interval=INTERVAL, clock=timer.clock
    )
    caplog.set_level(logging.INFO)
    for _ in range(300):
        log.refuse("192.0.2.7", "OPTIONS")
    log.refuse("192.0.2.7", "TCP")
    timer.advance(INTERVAL)
    log.refuse("192.0.2.7", "INVITE")
    log.flush()
    assert events == [
        Refused(source="192.0.2.7", method="OPTIONS"),
        Refused(source="192.0.2.7", method="OPTIONS, TCP", count=300),
        Refused(source="192.0.2.7", method="INVITE", count=1),
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Refused OPTIONS from 192.0.2.7",
        "300 more requests from 192.0.2.7 refused in the last 60 s (OPTIONS, TCP)",
        "1 more requests from 192.0.2.7 refused in the last 0 s (INVITE)",
    ]


def test_invites_for_other_users_are_logged_per_burst(
    timer: FakeTimer, caplog: pytest.LogCaptureFixture
) -> None:
    """`not_found`: the first with its URI, then a count; no `refused` event."""
    events: list[Refused] = []
    log = RefusalLog(
        events.append, timer.schedule, interval=INTERVAL, clock=timer.clock
    )
    caplog.set_level(logging.INFO)
    for user in range(500):
        log.not_found("192.0.2.7", f"sip:{user}@192.0.2.1")
    timer.advance(INTERVAL)
    assert events == []
    assert [r.getMessage() for r in caplog.records] == [
        "Refused INVITE from 192.0.2.7 for another user: sip:0@192.0.2.1",
        "499 more INVITEs from 192.0.2.7 for other users refused in the last 60 s",
    ]
