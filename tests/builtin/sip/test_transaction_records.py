"""Finished transactions are compact records: what they keep, when they end, no cycles.

Same style as test_transaction: a virtual-clock loop and raw UDP peers on loopback,
so the end of each record (64*T1 after its final response) is asserted exactly.
"""

from __future__ import annotations

import asyncio
from collections import Counter
import gc
import weakref

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipRequest,
    SipResponse,
    make_response,
)
from custom_components.sip_endpoint.worker.builtin.sip.transaction import (
    FinishedTransaction,
    ServerInviteTransaction,
    ServerTransaction,
    State,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import Target

from ..calls.test_call_memory import _answered_call
from ..calls.test_call_release import _started
from .test_transaction import T1, Endpoint, Peer, peer_request, run_virtual, state_of

pytestmark = pytest.mark.usefixtures("socket_enabled")


def test_a_retransmission_is_answered_from_the_record_alone() -> None:
    """Once the TU has dropped a finished BYE transaction, its record still answers.

    The record holds the response's bytes and where they go: a retransmitted BYE gets
    exactly the bytes of the first 200, and the TU does not see it again.
    """

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            bye = peer_request("BYE", peer)
            peer.send(bye, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = holder.pop()
            assert transaction is not None
            transaction.respond(make_response(bye, 200, to_tag="me"))
            first = await peer.recv()
            assert isinstance(first, SipResponse)
            (finished,) = ours.layer._servers.values()
            assert isinstance(finished, FinishedTransaction)
            assert finished.state == State.COMPLETED
            assert finished.resend == first.to_bytes()
            assert finished.to == Target("udp", "127.0.0.1", peer.port)
            assert len(ours.requests) == 1
            ours.requests.clear()  # the TU lets go of the transaction
            dropped = weakref.ref(transaction)
            del transaction
            gc.collect()
            assert dropped() is None  # nothing but the TU kept the transaction
            peer.send(bye, ours.transport.port)
            again = await peer.recv()
            assert isinstance(again, SipResponse)
            assert again.to_bytes() == first.to_bytes()
            assert ours.requests == []  # absorbed: the TU did not see it again
        peer.close()

    run_virtual(scenario)


def test_finished_transactions_end_in_order_each_at_its_own_time() -> None:
    """Records answered at 0, 0.1 and 0.2 s end at 64*T1 after each, no sooner.

    One timer serves them all; each one's state reads terminated from its end on.
    """

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            loop = asyncio.get_running_loop()
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            answered: list[tuple[float, ServerTransaction]] = []
            for index in range(3):
                bye = peer_request("BYE", peer)
                bye.headers.set("Call-ID", f"call-{index}@127.0.0.1")
                peer.send(bye, ours.transport.port)
                await asyncio.sleep(0.001)
                transaction = holder.pop()
                assert transaction is not None
                transaction.respond(make_response(bye, 200, to_tag="me"))
                answered.append((loop.time(), transaction))
                await asyncio.sleep(0.1)
            linger = 64 * T1
            for at, transaction in answered:
                await asyncio.sleep(max(0.0, at + linger - 0.001 - loop.time()))
                assert state_of(transaction) == State.COMPLETED
                await asyncio.sleep(0.002)
                assert state_of(transaction) == State.TERMINATED
            assert ours.layer._servers == {}
        peer.close()

    run_virtual(scenario)


def test_an_accepted_invite_record_absorbs_passes_the_ack_and_finds_the_invite() -> (
    None
):
    """Accepted (RFC 6026): INVITE retransmissions absorbed, the ACK to the TU.

    A CANCEL finds the INVITE transaction while its TU holds it, not afterwards.
    """

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=10) as ours:
            holder: list[tuple[SipRequest, ServerTransaction | None]] = []
            ours.handler = lambda request, transaction: holder.append(
                (request, transaction)
            )
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = holder[0][1]
            assert isinstance(transaction, ServerInviteTransaction)
            transaction.respond(make_response(invite, 200, to_tag="me"))
            assert isinstance(await peer.recv(), SipResponse)
            (finished,) = ours.layer._servers.values()
            assert isinstance(finished, FinishedTransaction)
            assert (finished.state, finished.resend) == (State.ACCEPTED, None)
            peer.send(invite, ours.transport.port)  # absorbed, not answered
            ack = peer_request("ACK", peer, branch=invite.top_via.branch)
            peer.send(ack, ours.transport.port)
            await asyncio.sleep(0.001)
            assert [(r.method, t) for r, t in holder] == [
                ("INVITE", transaction),
                ("ACK", None),
            ]
            assert await peer.collect(0.005) == []
            cancel = peer_request("CANCEL", peer, branch=invite.top_via.branch)
            assert ours.layer.find_invite_for_cancel(cancel) is transaction
            holder.clear()  # the TU lets go of the transaction
            ours.requests.clear()
            del transaction
            gc.collect()
            assert ours.layer.find_invite_for_cancel(cancel) is None
        peer.close()

    run_virtual(scenario)


async def test_an_answered_call_leaves_nothing_for_the_cycle_collector(
    socket_enabled: None,
) -> None:
    """Answered calls (real stack, raw SIP peer) are freed by reference counting alone.

    Garbage that only the cycle collector frees waits for a full collection, which
    the allocation-driven collector seldom runs: a media session in a cycle with its
    pacer kept every ended call's RTP socket and jitter buffer that long.
    """
    stack, _ = await _started()
    try:
        await _answered_call(stack)  # warm-up: first-time imports and caches
        await asyncio.sleep(0.2)
        gc.collect()
        gc.disable()
        try:
            for _ in range(3):
                await _answered_call(stack)
            await asyncio.sleep(0.2)  # the sockets' closing callbacks run
            gc.set_debug(gc.DEBUG_SAVEALL)
            found = gc.collect()
            kinds = Counter(type(item).__qualname__ for item in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert not {name for name in kinds if name in _CALL_OBJECTS}, kinds
        assert found == 0, kinds
    finally:
        await stack.close()


_CALL_OBJECTS = frozenset(
    {"MediaSession", "RtpSocket", "Pacer", "JitterBuffer", "InboundCall", "Dialog"}
)
