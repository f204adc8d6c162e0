"""Answered calls leave no objects behind once their transactions have ended.

The 1000-call benchmark (bench/engine.py) sees the worker's RSS grow; this test tells
a leak (objects per call still referenced after the call and its transactions end)
from memory the allocator keeps. The real built-in stack runs in the test's loop on
127.0.0.1 with a short T1, so that Timers J and L (64*T1) end the lingering server
transactions within a second; the caller is the raw SIP peer, run in a thread. After
the calls, the count of live SIP, call, dialog, media and asyncio objects must be back
to what it was after the warm-up calls.
"""

from __future__ import annotations

import asyncio
from collections import Counter
import gc

from custom_components.sip_endpoint.protocol.payloads import EventName
from custom_components.sip_endpoint.worker.builtin.call import BuiltinCall
from custom_components.sip_endpoint.worker.builtin.dialog import Dialog
from custom_components.sip_endpoint.worker.builtin.media.session import MediaSession
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipRequest,
    SipResponse,
)
from custom_components.sip_endpoint.worker.builtin.sip.transaction import (
    ClientTransaction,
    InviteOkRetransmitter,
    ServerTransaction,
)

from .rawpeer import RawPeer
from .test_call_release import WatchedStack, _started

WARMUP = 3
CALLS = 25
T1 = 0.01  # Timers J and L: 64*T1 = 0.64 s

WATCHED: tuple[type, ...] = (
    BuiltinCall,
    Dialog,
    MediaSession,
    ServerTransaction,
    ClientTransaction,
    InviteOkRetransmitter,
    SipRequest,
    SipResponse,
    asyncio.TimerHandle,
    asyncio.Task,
    asyncio.DatagramTransport,
)


def _live() -> Counter[str]:
    """Count the live objects of the watched kinds, by type name."""
    gc.collect()
    return Counter(
        type(item).__qualname__
        for item in gc.get_objects()
        if isinstance(item, WATCHED)
    )


async def _answered_call(stack: WatchedStack) -> None:
    """Place one call from a raw peer, answer it, let the peer hang up."""
    peer = RawPeer("2040", stack.sip_port)
    try:
        await asyncio.to_thread(peer.invite)
        incoming = await stack.next(EventName.INCOMING_CALL)
        stack.calls[incoming.call_id].answer()
        ok = await asyncio.to_thread(peer.wait, "INVITE")
        assert ok.code == 200
        await asyncio.to_thread(peer.ack, ok)
        await asyncio.to_thread(peer.in_dialog, "BYE")
        assert (await asyncio.to_thread(peer.wait, "BYE")).code == 200
        ended = await stack.next(EventName.CALL_ENDED)
        assert ended.call_id == incoming.call_id
    finally:
        peer.close()


async def _settle(stack: WatchedStack) -> None:
    """Wait until every transaction has ended (Timers J/L) and the sends are done."""
    layer = stack.transactions
    await stack.wait_until(
        lambda: not layer._servers and not layer._clients and not layer._tasks, 10
    )
    assert not layer._servers
    assert not layer._clients
    await asyncio.sleep(0.1)  # the loop drops the handles of cancelled timers


async def test_answered_calls_leave_no_objects_behind(socket_enabled: None) -> None:
    """After 25 answered calls the live call/SIP/media/asyncio objects are as before."""
    stack, _ = await _started()
    stack.transactions.t1 = T1
    try:
        for _ in range(WARMUP):
            await _answered_call(stack)
        await _settle(stack)
        baseline = _live()
        assert baseline["ServerInviteTransaction"] == 0

        for _ in range(CALLS):
            await _answered_call(stack)
        assert not stack.calls
        await _settle(stack)
        after = _live()
        grown = {
            name: after[name] - baseline[name]
            for name in after | baseline
            if after[name] != baseline[name]
        }
        assert grown == {}
    finally:
        await stack.close()
