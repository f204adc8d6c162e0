"""Edge paths of the built-in engine's transactions: failing handlers, late input, limits.

Same style as test_transaction: a virtual-clock loop and raw UDP peers on loopback.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipResponse,
    make_response,
)
from custom_components.sip_endpoint.worker.builtin.sip.transaction import (
    MAX_CLIENT_TRANSACTIONS,
    InviteOkRetransmitter,
    ServerInviteTransaction,
    ServerTransaction,
    State,
    ack_for_non_2xx,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    Source,
    Target,
    TransportError,
)

from .test_transaction import (
    HOST,
    T1,
    Endpoint,
    Peer,
    peer_request,
    run_virtual,
    state_of,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


def _boom(*_args: object) -> None:
    raise RuntimeError("handler bug")


def test_failing_response_handler_is_logged_and_the_final_still_resolves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TU handler that raises does not break the transaction; a late 200 is ignored."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            seen: list[int] = []

            def handler(response: SipResponse) -> None:
                seen.append(response.status)
                raise RuntimeError("handler bug")

            request = ours.request("OPTIONS", peer.port)
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port), on_response=handler
            )
            received = await peer.recv()
            ok = make_response(received, 200, to_tag="p")  # type: ignore[arg-type]
            peer.send(ok, ours.transport.port)
            final = await asyncio.wait_for(transaction.final(), 5)
            assert final.status == 200
            assert state_of(transaction) == State.COMPLETED
            peer.send(ok, ours.transport.port)  # retransmitted 200 in Completed
            await asyncio.sleep(0.001)
            assert seen == [200]
            assert ours.stray == []
        peer.close()

    caplog.set_level(logging.DEBUG)
    run_virtual(scenario)
    assert "SIP response handler failed" in caplog.text


def test_failing_request_handler_is_logged_and_delivery_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception from the TU's request handler never leaves ``receive``."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            ours.handler = _boom
            peer.send(peer_request("OPTIONS", peer), ours.transport.port)
            await asyncio.sleep(0.01)
            ours.handler = None
            peer.send(peer_request("OPTIONS", peer), ours.transport.port)
            await asyncio.sleep(0.01)
            assert len(ours.requests) == 2
        peer.close()

    run_virtual(scenario)
    assert "SIP transaction handling failed" in caplog.text


def test_request_after_close_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """A closed layer takes no new server transaction: nothing reaches the TU."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            ours.layer.close()
            peer.send(peer_request("OPTIONS", peer), ours.transport.port)
            await asyncio.sleep(0.01)
            assert ours.requests == []
            assert await peer.collect(0.05) == []
        peer.close()

    run_virtual(scenario)
    assert "Dropping a OPTIONS" in caplog.text


def test_response_after_the_final_is_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    """Once a final response went out, another one is logged and dropped."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            pending: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: pending.append(transaction)
            options = peer_request("OPTIONS", peer)
            peer.send(options, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = pending[0]
            assert transaction is not None
            transaction.respond(make_response(options, 200, to_tag="me"))
            transaction.respond(make_response(options, 500, to_tag="me"))
            answers = await peer.collect(0.05)
            assert [m.status for m in answers if isinstance(m, SipResponse)] == [200]
        peer.close()

    caplog.set_level(logging.DEBUG)
    run_virtual(scenario)
    assert "response 500 after the final one" in caplog.text


def test_failing_ack_timeout_handler_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Timer H ends the INVITE transaction even when its handler raises."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=10) as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = holder[0]
            assert isinstance(transaction, ServerInviteTransaction)
            transaction.on_ack_timeout = _boom
            transaction.respond(make_response(invite, 486, to_tag="me"))
            transaction.respond(make_response(invite, 200, to_tag="me"))  # too late
            await asyncio.sleep(64 * T1 + 0.01)
            assert state_of(transaction) == State.TERMINATED
            # The peer got the 486 and its Timer G retransmissions, never the 200.
            statuses = {m.status for m in await collected(peer)}
            assert statuses == {486}
        peer.close()

    caplog.set_level(logging.DEBUG)
    run_virtual(scenario)
    assert "ACK timeout handler failed" in caplog.text
    assert "response 200 after the final one" in caplog.text


async def collected(peer: Peer) -> list[SipResponse]:
    """Read every response already queued at the peer."""
    out = await peer.collect(0.001)
    return [m for m in out if isinstance(m, SipResponse)]


def test_response_that_cannot_be_sent_ends_the_server_transaction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the transport refuses a response, the transaction terminates (logged).

    The 2xx retransmitter logs its failed retransmissions and keeps its timer.
    """

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=10) as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = holder[0]
            assert transaction is not None
            await ours.transport.close()
            ok = make_response(invite, 200, to_tag="me")
            transaction.respond(ok)
            retransmitter = InviteOkRetransmitter(
                ours.layer, ok, transaction.source, reliable=False
            )
            await asyncio.sleep(2 * T1)
            assert state_of(transaction) == State.TERMINATED
            assert not retransmitter.done
            retransmitter.stop()
        peer.close()

    caplog.set_level(logging.DEBUG)
    run_virtual(scenario)
    assert "cannot send a response: UDP closed" in caplog.text
    assert "2xx retransmission failed: UDP closed" in caplog.text


def test_failing_2xx_timeout_handler_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 2xx retransmitter stops at 64*T1 even when its timeout handler raises."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=10) as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = holder[0]
            assert transaction is not None
            ok = make_response(invite, 200, to_tag="me")
            transaction.respond(ok)
            retransmitter = InviteOkRetransmitter(
                ours.layer, ok, transaction.source, reliable=True, on_timeout=_boom
            )
            await asyncio.sleep(64 * T1 + 0.01)
            assert retransmitter.done
        peer.close()

    run_virtual(scenario)
    assert "2xx ACK timeout handler failed" in caplog.text


def test_invite_client_ignores_responses_that_do_not_fit_its_state() -> None:
    """After a 486: a 180 and a 200 are ignored. After a 200: a 486 is ignored.

    Only the first final reaches the TU; a closed transaction takes nothing.
    """

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            seen: list[int] = []
            for first, late in ((486, (180, 200)), (200, (486,))):
                seen.clear()
                transaction = ours.layer.send_request(
                    ours.request("INVITE", peer.port),
                    Target("udp", HOST, peer.port),
                    on_response=lambda response: seen.append(response.status),
                )
                invite = await peer.recv()
                peer.send(make_response(invite, first, to_tag="p"), ours.transport.port)  # type: ignore[arg-type]
                final = await asyncio.wait_for(transaction.final(), 5)
                assert final.status == first
                state = state_of(transaction)
                for status in late:
                    response = make_response(invite, status, to_tag="p")  # type: ignore[arg-type]
                    peer.send(response, ours.transport.port)
                    await asyncio.sleep(0.001)
                assert seen == [first]
                assert state_of(transaction) == state
                assert ours.stray == []
                transaction.close()
                assert state_of(transaction) == State.TERMINATED
                transaction.receive(make_response(invite, 200, to_tag="p"))  # type: ignore[arg-type]
                assert seen == [first]
                assert transaction.final_response is final
                await peer.collect(0.01)  # the ACK of the 486
        peer.close()

    run_virtual(scenario)


def test_non_invite_client_passes_every_provisional_to_the_tu() -> None:
    """A second 100 in Proceeding is passed on too; the state stays Proceeding."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            seen: list[int] = []
            transaction = ours.layer.send_request(
                ours.request("OPTIONS", peer.port),
                Target("udp", HOST, peer.port),
                on_response=lambda response: seen.append(response.status),
            )
            request = await peer.recv()
            for _ in range(2):
                trying = make_response(request, 100)  # type: ignore[arg-type]
                peer.send(trying, ours.transport.port)
                await asyncio.sleep(0.001)
            assert seen == [100, 100]
            assert state_of(transaction) == State.PROCEEDING
        peer.close()

    run_virtual(scenario)


def test_invite_server_absorbs_a_retransmitted_ack_and_times_out_without_handler() -> (
    None
):
    """A second ACK in Confirmed is absorbed; Timer H without a handler terminates."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=10) as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            await asyncio.sleep(0.001)
            confirmed = holder[0]
            assert confirmed is not None
            busy = make_response(invite, 486, to_tag="me")
            confirmed.respond(busy)
            assert isinstance(await peer.recv(), SipResponse)
            ack = ack_for_non_2xx(invite, busy)
            peer.send(ack, ours.transport.port)
            await asyncio.sleep(0.001)
            assert state_of(confirmed) == State.CONFIRMED
            peer.send(ack, ours.transport.port)
            await asyncio.sleep(0.001)
            assert state_of(confirmed) == State.CONFIRMED
            assert len(ours.requests) == 1  # neither ACK reached the TU
            assert await peer.collect(0.001) == []

            invite2 = peer_request("INVITE", peer)
            peer.send(invite2, ours.transport.port)
            await asyncio.sleep(0.001)
            unanswered = holder[1]
            assert unanswered is not None
            unanswered.respond(make_response(invite2, 486, to_tag="me"))
            await peer.collect(64 * T1 + 0.01)
            assert state_of(unanswered) == State.TERMINATED
        peer.close()

    run_virtual(scenario)


def test_2xx_retransmitter_without_timeout_handler_just_stops() -> None:
    """Without ``on_timeout`` the 2xx retransmitter is done after 64*T1."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=10) as ours:
            invite = peer_request("INVITE", peer)
            ok = make_response(invite, 200, to_tag="me")
            source = Source("udp", HOST, peer.port)
            retransmitter = InviteOkRetransmitter(ours.layer, ok, source, reliable=True)
            await asyncio.sleep(64 * T1 - 0.001)
            assert not is_done(retransmitter)
            await asyncio.sleep(0.002)
            assert is_done(retransmitter)
            assert await peer.collect(0.001) == []
        peer.close()

    run_virtual(scenario)


def is_done(retransmitter: InviteOkRetransmitter) -> bool:
    """Return ``done`` read afresh (so that type narrowing does not stick)."""
    return retransmitter.done


def test_client_transactions_are_bounded() -> None:
    """Past MAX_CLIENT_TRANSACTIONS running, a new request is refused (not queued)."""

    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            target = Target("udp", HOST, peer.port)
            for _ in range(MAX_CLIENT_TRANSACTIONS):
                ours.layer.send_request(ours.request("OPTIONS", peer.port), target)
            with pytest.raises(TransportError, match="too many transactions"):
                ours.layer.send_request(ours.request("OPTIONS", peer.port), target)
        peer.close()

    run_virtual(scenario)
