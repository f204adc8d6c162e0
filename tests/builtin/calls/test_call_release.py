"""Calls that ended are released: nothing keeps a call object alive afterwards.

The real built-in stack runs in the test's own loop on 127.0.0.1 (no worker process)
so that the call objects can be watched with weak references; the peer is the raw SIP
peer, run in a thread. A call kept alive by a transaction's timer, a retransmitter or
a background task would be memory held per call, which the 1000-call benchmark
(bench/engine.py) would only show as RSS growth.
"""

from __future__ import annotations

import asyncio
import gc
import io
from typing import Any
import weakref

from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    EndCause,
    EventName,
    MakeCallParams,
    Payload,
    StartParams,
)
from custom_components.sip_endpoint.worker.builtin.account import BuiltinAccount
from custom_components.sip_endpoint.worker.builtin.sip.transaction import (
    FinishedTransaction,
    State,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import Target
from custom_components.sip_endpoint.worker.builtin.stack import BuiltinStack
from custom_components.sip_endpoint.worker.core.channel import ProtocolWriter

from .rawpeer import RawPeer, sdp

CALLS = 5


class WatchedStack(BuiltinStack):
    """A built-in stack whose events go to a queue instead of a protocol pipe."""

    def __init__(self) -> None:
        """Prepare; `start` binds the sockets."""
        super().__init__(ProtocolWriter(io.BytesIO()))  # never started: see emit
        self.events: asyncio.Queue[tuple[EventName, Any]] = asyncio.Queue()

    def emit(self, name: EventName, payload: Payload) -> None:
        """Queue the event."""
        self.events.put_nowait((name, payload))

    async def next(self, name: EventName) -> Any:
        """Return the payload of the next event called ``name`` (others are skipped)."""
        async with asyncio.timeout(10):
            while True:
                event, payload = await self.events.get()
                if event is name:
                    return payload


async def _started() -> tuple[WatchedStack, BuiltinAccount]:
    stack = WatchedStack()
    stack.set_sources(True, ["127.0.0.1"])
    await stack.start(
        StartParams(
            bind_host="127.0.0.1",
            port_min=0,
            port_max=0,
            allowed_sources=["127.0.0.1"],
        )
    )
    params = AccountParams(
        account_id="ext-2040",
        extension="2040",
        auth_id="2040",
        password="pw-2040",
        domain="127.0.0.1",
        port=9,  # never registered: calls do not need it
    )
    account = BuiltinAccount(stack, params)
    stack.accounts[params.account_id] = account
    return stack, account


async def _settled(alive: weakref.WeakSet[Any]) -> int:
    """Let the background sends finish, collect garbage, count the living calls."""
    await asyncio.sleep(0.2)
    gc.collect()
    return len(alive)


async def test_inbound_calls_are_released_after_they_end(socket_enabled: None) -> None:
    """Answered calls ended by the caller's BYE and refused calls leave nothing behind."""
    stack, _ = await _started()
    alive: weakref.WeakSet[Any] = weakref.WeakSet()
    try:
        for number in range(CALLS):
            peer = RawPeer("2040", stack.sip_port)
            try:
                await asyncio.to_thread(peer.invite)
                incoming = await stack.next(EventName.INCOMING_CALL)
                call = stack.calls[incoming.call_id]
                alive.add(call)
                if number % 2:
                    call.hangup(486)
                    final = await asyncio.to_thread(peer.wait, "INVITE")
                    assert final.code == 486
                    await asyncio.to_thread(peer.ack, final)
                else:
                    call.answer()
                    ok = await asyncio.to_thread(peer.wait, "INVITE")
                    await asyncio.to_thread(peer.ack, ok)
                    await asyncio.to_thread(peer.in_dialog, "BYE")
                    assert (await asyncio.to_thread(peer.wait, "BYE")).code == 200
                ended = await stack.next(EventName.CALL_ENDED)
                assert ended.call_id == incoming.call_id
                del call
            finally:
                peer.close()
        assert not stack.calls
        assert await _settled(alive) == 0
        # What lingers (Timers J and L) is what a retransmission needs, no more:
        # a record with the bytes of the final response, not the transaction.
        lingering = list(stack.transactions._servers.values())
        assert len(lingering) >= CALLS
        for finished in lingering:
            assert isinstance(finished, FinishedTransaction)
            if finished.state == State.COMPLETED:  # a BYE: its 200 is sent again
                assert finished.resend is not None
                assert finished.resend.startswith(b"SIP/2.0 200 ")
                assert isinstance(finished.to, Target)
            else:
                # An answered INVITE (its 2xx is retransmitted by the call, never by
                # the transaction) or a refused and acknowledged one: nothing to send.
                assert finished.state in (State.ACCEPTED, State.CONFIRMED)
                assert finished.resend is None
        assert any(t.state == State.ACCEPTED for t in lingering)
    finally:
        await stack.close()


async def test_outbound_calls_are_released_after_they_end(socket_enabled: None) -> None:
    """Calls we placed, answered and hung up, leave nothing behind either."""
    stack, account = await _started()
    alive: weakref.WeakSet[Any] = weakref.WeakSet()
    try:
        for _ in range(CALLS):
            callee = RawPeer("2040", stack.sip_port)
            try:
                target = f"sip:9009@127.0.0.1:{callee.local_port}"
                call = stack.start_outbound_call(
                    account, MakeCallParams(account_id="ext-2040", target=target)
                )
                alive.add(call)
                invite = await asyncio.to_thread(callee.wait, "INVITE", request=True)
                contact = f"Contact: <{target}>\r\n"
                answer = sdp(callee.rtp_port(0))
                await asyncio.to_thread(
                    callee.respond, invite, 200, tag="t", extra=contact, body=answer
                )
                await asyncio.to_thread(callee.wait, "ACK", request=True)
                bye = await asyncio.to_thread(callee.wait, "BYE", request=True)
                await asyncio.to_thread(callee.respond, bye, 200)
                ended = await stack.next(EventName.CALL_ENDED)
                assert (ended.call_id, ended.cause) == (call.call_id, EndCause.LOCAL)
                del call
            finally:
                callee.close()
        assert not stack.calls
        assert await _settled(alive) == 0
    finally:
        await stack.close()
