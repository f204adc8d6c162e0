"""Load: 60 extensions, 20 concurrent calls, 200 calls in a row, an INVITE flood."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    CallPhase,
    CallStateChanged,
    EndCause,
    Refused,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.core.refusals import SUMMARY_INTERVAL
from tests.engine.conftest import latest_with_status
from tests.sipbed.rawsip import parse_response

from .calls import answered_call, ended_calls, incoming_calls, one_call, own_rss_kib
from .conftest import extension, server
from .proxycall import ProxyCaller

if TYPE_CHECKING:
    from custom_components.sip_endpoint.engine.sip_engine import SipEngine
    from tests.engine.conftest import EventRecorder
    from tests.sipbed.kamailio import Kamailio

    from .conftest import EngineFactory

CALLS_PER_WORKER = 3  # below the wheel's 4 calls per worker
WARMUP_CALLS = 10
# Calls in a row are spaced a little, like real pages (back to back: see below).
CALL_GAP = 0.6
BURST_CALLS = 100
# Growth allowed after a warm-up (docs/reliability.md). The worker keeps about 60-80 KiB
# per call (an open finding): the bound is per call, not flat.
WORKER_RSS_GROWTH_PER_CALL_KIB = 128
OWN_RSS_GROWTH_KIB = 16384


async def _engine_with_extension_2001(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> SipEngine:
    """Start an engine with extension 2001 and wait until it is registered."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(1))
    await recorder.wait_for(
        lambda events: (
            "id-2001" in latest_with_status(events, RegistrationStatus.SUCCESSFUL)
        )
    )
    return engine


async def _sixty(engine: SipEngine, recorder: EventRecorder) -> list[str]:
    await engine.start()
    settings = [extension(number) for number in range(60)]
    await asyncio.gather(*(engine.add_extension(ext) for ext in settings))
    ids = {ext.account_id for ext in settings}
    await recorder.wait_for(
        lambda events: ids <= latest_with_status(events, RegistrationStatus.SUCCESSFUL),
        limit=90,
    )
    return [ext.account_id for ext in settings]


async def test_sixty_extensions_take_twenty_concurrent_calls(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """60 extensions register at once; 20 calls over them are all answered together."""
    engine = engine_factory(server(kamailio))
    await _sixty(engine, recorder)
    workers = engine.workers()
    assert len(workers) == 8
    callees = [
        account_id.removeprefix("id-")
        for worker in workers
        for account_id in worker.account_ids[:CALLS_PER_WORKER]
    ][:20]
    assert len(callees) == 20

    callers = [ProxyCaller((kamailio.host, kamailio.port), c) for c in callees]
    try:
        for caller in callers:
            caller.invite()
        await recorder.wait_for(lambda _: len(incoming_calls(recorder)) >= 20)
        calls = incoming_calls(recorder)
        assert {c.account_id for c in calls} == {f"id-{c}" for c in callees}
        await asyncio.gather(*(engine.answer(call.call_id) for call in calls))
        answers = await asyncio.gather(
            *(asyncio.to_thread(caller.wait_final) for caller in callers)
        )
        assert [answer.code for answer in answers] == [200] * 20
        for caller, answer in zip(callers, answers, strict=True):
            caller.ack(answer)
        confirmed = {call.call_id for call in calls}
        await recorder.wait_for(
            lambda events: (
                confirmed
                <= {
                    e.call_id
                    for e in events
                    if isinstance(e, CallStateChanged)
                    and e.phase is CallPhase.CONFIRMED
                }
            )
        )
        statuses = await engine.worker_statuses()
        assert sum(status.calls for status in statuses.values()) == 20
        codes = await asyncio.gather(
            *(asyncio.to_thread(caller.bye) for caller in callers)
        )
        assert codes == [200] * 20
    finally:
        for caller in callers:
            caller.close()
    await recorder.wait_for(lambda _: confirmed <= set(ended_calls(recorder)))
    assert {ended_calls(recorder)[c].cause for c in confirmed} == {EndCause.BYE}
    ids = {f"id-{2000 + number}" for number in range(60)}
    assert ids <= latest_with_status(recorder.events, RegistrationStatus.SUCCESSFUL)


async def _memory(engine: SipEngine) -> tuple[int, int]:
    (status,) = (await engine.worker_statuses()).values()
    return status.rss_kib, own_rss_kib()


@pytest.mark.parametrize(
    "count",
    [pytest.param(50, id="50"), pytest.param(200, id="200", marks=pytest.mark.soak)],
)
async def test_calls_in_a_row(
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    count: int,
) -> None:
    """Answered and ended calls, one after another; memory stays bounded."""
    engine = await _engine_with_extension_2001(kamailio, engine_factory, recorder)
    for _ in range(WARMUP_CALLS):
        await one_call(engine, recorder, kamailio, "2001")
        await asyncio.sleep(CALL_GAP)
    worker_before, own_before = await _memory(engine)
    started = time.monotonic()
    causes = []
    for _ in range(count):
        causes.append((await one_call(engine, recorder, kamailio, "2001")).cause)
        await asyncio.sleep(CALL_GAP)
    elapsed = time.monotonic() - started
    worker_after, own_after = await _memory(engine)
    print(  # noqa: T201 - the figures docs/reliability.md records
        f"\n{count} calls in {elapsed:.1f} s; worker RSS "
        f"{worker_before} -> {worker_after} KiB; test process RSS "
        f"{own_before} -> {own_after} KiB"
    )
    assert causes == [EndCause.BYE] * count
    assert worker_after - worker_before <= WORKER_RSS_GROWTH_PER_CALL_KIB * count
    assert own_after - own_before <= OWN_RSS_GROWTH_KIB
    (status,) = (await engine.worker_statuses()).values()
    assert status.calls == 0
    assert engine.workers()[0].restarts == 0


async def test_calls_back_to_back(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Calls without a pause between them (each BYE after the ACK): no worker abort.

    With media sharing the SIP ioqueue, about 28 calls/s exhausted its 64 slots
    (each call's RTP and RTCP sockets come back 500 ms after they close) and the
    worker aborted after about 30 calls.
    """
    engine = await _engine_with_extension_2001(kamailio, engine_factory, recorder)
    causes = [
        (await one_call(engine, recorder, kamailio, "2001")).cause
        for _ in range(BURST_CALLS)
    ]
    assert causes == [EndCause.BYE] * BURST_CALLS
    assert engine.workers()[0].restarts == 0


_FLOOD_SDP = (
    "v=0\r\no=f 1 1 IN IP4 127.0.0.2\r\ns=f\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _flood(
    port: int, count: int, rate: float, *, sdp: bool = False
) -> tuple[int, dict[int, int]]:
    """Send ``count`` INVITEs from 127.0.0.2 at ``rate``/s.

    Return how many were sent and, per status code, how many INVITEs (Call-IDs) got it.
    Retransmissions of the same answer (the flood never ACKs) count once.
    """
    codes: dict[int, set[str]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.setblocking(False)
        local = sock.getsockname()[1]
        started = time.monotonic()
        for number in range(count):
            message = (
                f"INVITE sip:2001@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.2:{local};branch=z9hG4bKflood{number};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:flood@127.0.0.2:{local}>;tag=f{number}\r\n"
                "To: <sip:2001@127.0.0.1>\r\n"
                f"Call-ID: flood-{number}@127.0.0.2\r\n"
                "CSeq: 1 INVITE\r\n"
                f"Contact: <sip:flood@127.0.0.2:{local}>\r\n"
                + (
                    "Content-Type: application/sdp\r\n"
                    f"Content-Length: {len(_FLOOD_SDP)}\r\n\r\n{_FLOOD_SDP}"
                    if sdp
                    else "Content-Length: 0\r\n\r\n"
                )
            )
            sock.sendto(message.encode(), ("127.0.0.1", port))
            _collect(sock, codes)
            pause = started + (number + 1) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            _collect(sock, codes)
            time.sleep(0.02)
    return count, {code: len(call_ids) for code, call_ids in codes.items()}


def _collect(sock: socket.socket, codes: dict[int, set[str]]) -> None:
    while True:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            return
        try:
            response = parse_response(data)
        except ValueError:
            continue
        codes.setdefault(response.code, set()).add(response.header("call-id") or "")


@pytest.mark.parametrize(
    ("count", "rate", "sdp"),
    [
        pytest.param(16, 2.0, False, id="2-per-second"),
        pytest.param(16, 2.0, True, id="2-per-second-with-sdp"),
        pytest.param(1000, 250.0, False, id="250-per-second"),
    ],
)
async def test_invite_flood_from_a_stranger(
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    count: int,
    rate: float,
    sdp: bool,
) -> None:
    """INVITEs from 127.0.0.2 are refused; the registrar is still served meanwhile."""
    engine = await _engine_with_extension_2001(kamailio, engine_factory, recorder)
    (worker,) = engine.workers()
    assert worker.sip_port is not None
    began = time.monotonic()
    flood = asyncio.create_task(
        asyncio.to_thread(_flood, worker.sip_port, count, rate, sdp=sdp)
    )
    # During the flood: the registrar's answers still arrive, a call still gets through.
    registered_before = sum(
        1
        for e in recorder.events
        if getattr(e, "status", None) is RegistrationStatus.SUCCESSFUL
    )
    await engine.reregister("id-2001")
    await recorder.wait_for(
        lambda events: (
            sum(
                1
                for e in events
                if getattr(e, "status", None) is RegistrationStatus.SUCCESSFUL
            )
            > registered_before
        )
    )
    caller, call = await answered_call(engine, recorder, kamailio, "2001")
    try:
        assert not flood.done(), "the flood ended before the checks: raise its count"
        assert await asyncio.to_thread(caller.bye) == 200
    finally:
        caller.close()
    sent, codes = await flood
    await recorder.wait_for(lambda _: call.call_id in ended_calls(recorder))
    # pjsua itself answers 486 when its 4 call slots are taken by INVITEs being refused.
    assert set(codes) <= {100, 403, 486}
    assert codes.get(403, 0) + codes.get(486, 0) >= sent * 0.99
    assert not any(
        isinstance(e, CallEnded) and e.call_id != call.call_id for e in recorder.events
    )
    assert len(incoming_calls(recorder)) == 1
    (status,) = (await engine.worker_statuses()).values()
    assert status.calls == 0
    assert engine.workers()[0].restarts == 0
    assert recorder.latest_state("id-2001").status is RegistrationStatus.SUCCESSFUL  # type: ignore[union-attr]
    # Refusals come per burst (worker/core/refusals.py): the first, then summaries
    # with a count; the worker sends what is pending when it stops.
    await engine.stop()
    refused = [e for e in recorder.events if isinstance(e, Refused)]
    print(  # noqa: T201 - the figures docs/reliability.md records
        f"\nflood: {sent} INVITEs at {rate}/s, answers {codes}, "
        f"{len(refused)} refused events"
    )
    assert sum(e.count for e in refused) == codes[403]
    assert len(refused) <= 3 + (time.monotonic() - began) // SUMMARY_INTERVAL + 1
    assert {(e.source, e.method) for e in refused} == {("127.0.0.2", "INVITE")}


async def test_sdp_flood_does_not_abort_the_worker(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """An INVITE flood with SDP from a stranger: refused or busy, no abort, no loss."""
    engine = await _engine_with_extension_2001(kamailio, engine_factory, recorder)
    (worker,) = engine.workers()
    assert worker.sip_port is not None
    flood = asyncio.create_task(
        asyncio.to_thread(_flood, worker.sip_port, 1000, 250.0, sdp=True)
    )
    # During the flood the registrar is still served: a fresh REGISTER succeeds.
    await engine.reregister("id-2001")
    await recorder.wait_for(
        lambda events: (
            "id-2001" in latest_with_status(events, RegistrationStatus.SUCCESSFUL)
            and not flood.done()
        )
    )
    sent, codes = await flood
    print(  # noqa: T201 - the figures docs/reliability.md records
        f"\nSDP flood: {sent} INVITEs at 250/s, answers {codes}"
    )
    # Every INVITE is refused. Under load a few get 603 instead of 403 (an open finding
    # in docs/reliability.md); no INVITE is ever answered 200.
    assert set(codes) <= {100, 403, 486, 603}
    assert codes.get(403, 0) + codes.get(486, 0) + codes.get(603, 0) >= sent * 0.99
    assert engine.workers()[0].restarts == 0
    # After the flood, calls through the registrar are answered again.
    caller, call = await answered_call(engine, recorder, kamailio, "2001")
    try:
        assert await asyncio.to_thread(caller.bye) == 200
    finally:
        caller.close()
    await recorder.wait_for(lambda _: call.call_id in ended_calls(recorder))
    assert engine.workers()[0].restarts == 0
