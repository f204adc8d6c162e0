"""Async helpers that place calls through Kamailio and answer them through the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    CallPhase,
    CallStateChanged,
    IncomingCall,
)

from .proxycall import ProxyCaller

if TYPE_CHECKING:
    from custom_components.sip_endpoint.engine.sip_engine import SipEngine
    from tests.engine.conftest import EventRecorder
    from tests.sipbed.kamailio import Kamailio


def incoming_calls(recorder: EventRecorder) -> list[IncomingCall]:
    """Return the incoming calls recorded so far."""
    return [event for event in recorder.events if isinstance(event, IncomingCall)]


def ended_calls(recorder: EventRecorder) -> dict[str, CallEnded]:
    """Return the ended calls recorded so far, by call id."""
    return {
        event.call_id: event
        for event in recorder.events
        if isinstance(event, CallEnded)
    }


async def answered_call(
    engine: SipEngine,
    recorder: EventRecorder,
    kamailio: Kamailio,
    callee: str,
) -> tuple[ProxyCaller, IncomingCall]:
    """Call ``callee`` through Kamailio, answer it through the engine, ACK it."""
    caller = ProxyCaller((kamailio.host, kamailio.port), callee)
    seen = {call.call_id for call in incoming_calls(recorder)}
    caller.invite()

    def arrived(_: object) -> bool:
        return any(
            call.call_id not in seen and call.display_name == caller.name
            for call in incoming_calls(recorder)
        )

    await recorder.wait_for(arrived)
    call = next(
        call
        for call in incoming_calls(recorder)
        if call.call_id not in seen and call.display_name == caller.name
    )
    await engine.answer(call.call_id)
    answer = await asyncio.to_thread(caller.wait_final)
    assert answer.code == 200, f"{callee}: {answer.code} {answer.reason}"
    caller.ack(answer)
    return caller, call


async def one_call(
    engine: SipEngine, recorder: EventRecorder, kamailio: Kamailio, callee: str
) -> CallEnded:
    """Place, answer and hang up one call; return how the engine saw it end."""
    caller, call = await answered_call(engine, recorder, kamailio, callee)
    # Kamailio's two UDP children may pass a BYE on before the ACK: wait for the ACK.
    await recorder.wait_for(
        lambda events: any(
            isinstance(e, CallStateChanged)
            and e.call_id == call.call_id
            and e.phase is CallPhase.CONFIRMED
            for e in events
        )
    )
    try:
        assert await asyncio.to_thread(caller.bye) == 200
    finally:
        caller.close()
    await recorder.wait_for(lambda _: call.call_id in ended_calls(recorder))
    return ended_calls(recorder)[call.call_id]


def own_rss_kib() -> int:
    """Return this process's resident memory in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")
