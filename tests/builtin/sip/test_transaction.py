"""Raw-SIP tests of the built-in engine's transactions: timers, retransmissions, matching.

Timing tests run on an event loop with a virtual clock: when nothing is ready, the loop
jumps to its next timer instead of sleeping. Real sockets on loopback still carry every
datagram, and the arrival time of each datagram is read from the virtual clock, so the
intervals of Timer A, E and G are asserted exactly, not against wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from typing import TYPE_CHECKING, Any, Self

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    make_response,
    new_branch,
    new_tag,
    parse_message,
)
from custom_components.sip_endpoint.worker.builtin.sip.transaction import (
    InviteOkRetransmitter,
    ServerInviteTransaction,
    ServerTransaction,
    State,
    TransactionLayer,
    ack_for_non_2xx,
    cancel_request,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    SipTransportLayer,
    Source,
    Target,
    TlsVerificationError,
    TransportError,
    client_tls_context,
    via_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOST = "127.0.0.1"
T1 = 0.010
T2 = 0.040
T4 = 0.050


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer when nothing is ready."""

    def __init__(self) -> None:
        """Wrap the selector's select()."""
        super().__init__(selectors.DefaultSelector())
        self._now = 0.0
        selector = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[Any]:
            events: list[Any] = real_select(0)
            if events or timeout == 0:
                return events
            if timeout is None:
                return list(real_select(1.0))  # waiting for I/O only
            self._now += timeout
            return []

        selector.select = select

    def time(self) -> float:
        """Return the virtual time."""
        return self._now


def run_virtual(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``test`` on a fresh virtual-clock loop."""
    loop = VirtualClockLoop()
    try:
        loop.run_until_complete(asyncio.wait_for(test(), 120))
    finally:
        loop.close()


class Peer:
    """A raw UDP socket playing the other side; records virtual arrival times."""

    def __init__(self) -> None:
        """Bind on loopback."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[
            tuple[float, SipRequest | SipResponse, tuple[str, int]]
        ] = []

    async def recv(self, limit: float = 5.0) -> SipRequest | SipResponse:
        """Return the next message (waits at most ``limit`` virtual seconds)."""
        loop = asyncio.get_running_loop()
        data, addr = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), limit)
        message = parse_message(data)
        self.received.append((loop.time(), message, addr))
        return message

    async def collect(self, duration: float) -> list[SipRequest | SipResponse]:
        """Receive everything for ``duration`` virtual seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        out: list[SipRequest | SipResponse] = []
        while (left := end - loop.time()) > 0:
            try:
                out.append(await self.recv(left))
            except TimeoutError:
                break
        return out

    def send(self, message: SipRequest | SipResponse, port: int) -> None:
        """Send a message to our endpoint."""
        self.sock.sendto(message.to_bytes(), (HOST, port))

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class Endpoint:
    """Our side: a transport and a transaction layer with small timers."""

    def __init__(self, *, trying_delay: float = 0.2) -> None:
        """Prepare the layers."""
        self.requests: list[tuple[SipRequest, Source, ServerTransaction | None]] = []
        self.handler: Callable[[SipRequest, ServerTransaction | None], None] | None = (
            None
        )
        self.stray: list[SipResponse] = []
        self.layer = TransactionLayer(
            self._on_request,
            on_stray_response=lambda response, _source: self.stray.append(response),
            t1=T1,
            t2=T2,
            t4=T4,
            trying_delay=trying_delay,
            timer_d=0.5,
        )
        self.transport = SipTransportLayer(
            self.layer.receive, bind_host=HOST, port_min=0, port_max=0
        )
        self.layer.transport = self.transport

    def _on_request(
        self, request: SipRequest, source: Source, transaction: ServerTransaction | None
    ) -> None:
        self.requests.append((request, source, transaction))
        if self.handler is not None:
            self.handler(request, transaction)

    async def __aenter__(self) -> Self:
        """Start the transport."""
        await self.transport.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close everything."""
        self.layer.close()
        await self.transport.close()

    def request(
        self, method: str, peer_port: int, transport: str = "udp"
    ) -> SipRequest:
        """Build a request to the peer with a fresh branch."""
        via = via_for(self.transport, transport, HOST, new_branch())
        headers = Headers(
            [
                ("Via", str(via)),
                ("Max-Forwards", "70"),
                ("From", f"<sip:me@{HOST}>;tag={new_tag()}"),
                ("To", f"<sip:peer@{HOST}:{peer_port}>"),
                ("Call-ID", f"{new_tag()}@{HOST}"),
                ("CSeq", f"1 {method}"),
            ]
        )
        return SipRequest(
            method, SipUri(user="peer", host=HOST, port=peer_port), headers
        )


def peer_request(
    method: str, peer: Peer | int, *, branch: str | None = None
) -> SipRequest:
    """Build a request the peer (or a peer on that port) sends us."""
    port = peer if isinstance(peer, int) else peer.port
    via = Via("UDP", HOST, port, {"branch": branch or new_branch(), "rport": None})
    headers = Headers(
        [
            ("Via", str(via)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:peer@{HOST}>;tag=peer-tag"),
            ("To", f"<sip:me@{HOST}>"),
            ("Call-ID", "peer-call@127.0.0.1"),
            ("CSeq", f"7 {method}"),
        ]
    )
    return SipRequest(method, SipUri(user="me", host=HOST), headers)


def expected_times(first_interval: float, cap: float | None, end: float) -> list[float]:
    """Return send times 0, i1, i1+i2, ... (interval doubling, capped) before ``end``."""
    times = [0.0]
    interval = first_interval
    while times[-1] + interval < end:
        times.append(times[-1] + interval)
        interval = interval * 2 if cap is None else min(interval * 2, cap)
    return times


def state_of(transaction: object) -> State:
    """Return a transaction's state (read afresh, so that type narrowing does not stick)."""
    state = getattr(transaction, "state")  # noqa: B009
    assert isinstance(state, State)
    return state


def relative_times(peer: Peer) -> list[float]:
    start = peer.received[0][0]
    return [round(at - start, 6) for at, _, _ in peer.received]


# --- client transactions ------------------------------------------------------------


def test_non_invite_client_timer_e_then_f_local_408() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("OPTIONS", peer.port)
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port)
            )
            await peer.collect(64 * T1 + 0.5)
            final = await transaction.final()
            assert final.status == 408
            assert final.from_network is False
            assert state_of(transaction) == State.TERMINATED
            assert transaction.error is None
            # Timer E: T1, 2*T1, 4*T1, then T2 each time, until Timer F (64*T1).
            want = expected_times(T1, T2, 64 * T1)
            assert relative_times(peer) == pytest.approx(want, abs=1e-6)
            assert len(want) == 18
            assert all(
                m.headers.get("via") == request.headers.get("via")
                for _, m, _ in peer.received
            )
        peer.close()

    run_virtual(scenario)


def test_invite_client_timer_a_then_b_local_408() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("INVITE", peer.port)
            responses: list[SipResponse] = []
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port), on_response=responses.append
            )
            await peer.collect(64 * T1 + 0.5)
            final = await transaction.final()
            assert (final.status, final.from_network) == (408, False)
            assert responses == [final]
            # Timer A doubles without a cap: 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1.
            want = expected_times(T1, None, 64 * T1)
            assert relative_times(peer) == pytest.approx(want, abs=1e-6)
            assert len(want) == 7
        peer.close()

    run_virtual(scenario)


def test_client_timeout_override_for_liveness_probe() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("OPTIONS", peer.port)
            loop = asyncio.get_running_loop()
            start = loop.time()
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port), timeout=0.035
            )
            collector = asyncio.ensure_future(peer.collect(0.1))
            final = await transaction.final()
            assert (final.status, final.from_network) == (408, False)
            assert loop.time() - start == pytest.approx(0.035, abs=1e-6)
            await collector
            assert relative_times(peer) == pytest.approx([0.0, T1, 3 * T1], abs=1e-6)
        peer.close()

    run_virtual(scenario)


def test_provisional_moves_non_invite_retransmissions_to_t2() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("OPTIONS", peer.port)
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port)
            )
            first = await peer.recv()
            assert isinstance(first, SipRequest)
            peer.send(make_response(first, 100), ours.transport.port)
            await peer.collect(0.2)
            # Sent at 0; the 100 arrived at once; the pending Timer E fires at T1 and
            # from then on it is reset to T2 each time (17.1.2.2).
            times = relative_times(peer)
            assert times[:4] == pytest.approx([0.0, T1, T1 + T2, T1 + 2 * T2], abs=1e-6)
            peer.send(make_response(first, 200), ours.transport.port)
            final = await transaction.final()
            assert (final.status, final.from_network) == (200, True)
            assert state_of(transaction) == State.COMPLETED
            count = len(peer.received)
            await peer.collect(0.3)
            assert len(peer.received) == count  # no retransmission after the final
            assert state_of(transaction) == State.TERMINATED  # Timer K (T4) ended it
        peer.close()

    run_virtual(scenario)


def test_invite_client_acks_non_2xx_and_its_retransmission() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("INVITE", peer.port)
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port)
            )
            invite = await peer.recv()
            assert isinstance(invite, SipRequest)
            peer.send(make_response(invite, 180, to_tag="callee"), ours.transport.port)
            await asyncio.sleep(0.001)
            busy = make_response(invite, 486, to_tag="callee")
            peer.send(busy, ours.transport.port)
            final = await transaction.final()
            assert (final.status, final.from_network) == (486, True)
            ack = await peer.recv()
            assert isinstance(ack, SipRequest)
            assert ack.method == "ACK"
            assert ack.cseq.seq == invite.cseq.seq
            assert ack.cseq.method == "ACK"
            assert ack.top_via.branch == invite.top_via.branch
            assert ack.to_addr.tag == "callee"
            assert ack.call_id == invite.call_id
            assert str(ack.uri) == str(invite.uri)
            peer.send(busy, ours.transport.port)  # the 486 again: ACK again
            again = await peer.recv()
            assert isinstance(again, SipRequest)
            assert again.method == "ACK"
            # Only INVITE (at 0, before the 180), then the two ACKs: the 180 stopped Timer A.
            methods = [
                m.method for _, m, _ in peer.received if isinstance(m, SipRequest)
            ]
            assert methods == ["INVITE", "ACK", "ACK"]
        peer.close()

    run_virtual(scenario)


def test_ringing_invite_is_not_timed_out_by_timer_b() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("INVITE", peer.port)
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port)
            )
            invite = await peer.recv()
            assert isinstance(invite, SipRequest)
            peer.send(make_response(invite, 180, to_tag="callee"), ours.transport.port)
            await asyncio.sleep(3 * 64 * T1)  # long past Timer B
            assert state_of(transaction) == State.PROCEEDING
            peer.send(make_response(invite, 200, to_tag="callee"), ours.transport.port)
            final = await transaction.final()
            assert (final.status, final.from_network) == (200, True)
            # With an explicit timeout, the limit holds through Proceeding too.
            limited = ours.layer.send_request(
                ours.request("INVITE", peer.port),
                Target("udp", HOST, peer.port),
                timeout=0.1,
            )
            second = await peer.recv()
            assert isinstance(second, SipRequest)
            peer.send(make_response(second, 180, to_tag="callee"), ours.transport.port)
            final = await limited.final()
            assert (final.status, final.from_network) == (408, False)
        peer.close()

    run_virtual(scenario)


def test_invite_client_2xx_retransmissions_reach_the_tu() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("INVITE", peer.port)
            seen: list[SipResponse] = []
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port), on_response=seen.append
            )
            invite = await peer.recv()
            assert isinstance(invite, SipRequest)
            ok = make_response(invite, 200, to_tag="callee")
            peer.send(ok, ours.transport.port)
            final = await transaction.final()
            assert final.status == 200
            assert state_of(transaction) == State.ACCEPTED
            peer.send(ok, ours.transport.port)
            await asyncio.sleep(0.005)
            assert [response.status for response in seen] == [200, 200]
            # No ACK from the transaction for a 2xx: that is the dialog's job.
            assert await peer.collect(0.1) == []
        peer.close()

    run_virtual(scenario)


async def test_transport_error_ends_client_transaction_with_local_503() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind((HOST, 0))
    port = closed.getsockname()[1]
    closed.close()
    async with Endpoint() as ours:
        request = ours.request("REGISTER", port, "tcp")
        transaction = ours.layer.send_request(request, Target("tcp", HOST, port))
        final = await asyncio.wait_for(transaction.final(), 10)
        assert (final.status, final.from_network) == (503, False)
        assert isinstance(transaction.error, TransportError)
        assert state_of(transaction) == State.TERMINATED


# --- server transactions ------------------------------------------------------------


def test_server_non_invite_absorbs_duplicates_and_answers_with_last_response() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            pending: list[ServerTransaction] = []
            ours.handler = lambda _request, transaction: pending.append(transaction)  # type: ignore[arg-type]
            options = peer_request("OPTIONS", peer)
            peer.send(options, ours.transport.port)
            peer.send(options, ours.transport.port)  # duplicate in Trying: absorbed
            await peer.collect(0.05)
            assert peer.received == []
            assert len(ours.requests) == 1
            assert ours.requests[0][1].port == peer.port  # the source is known
            transaction = pending[0]
            transaction.respond(make_response(transaction.request, 200, to_tag="me"))
            first = await peer.recv()
            peer.send(options, ours.transport.port)  # duplicate in Completed
            second = await peer.recv()
            assert isinstance(first, SipResponse)
            assert isinstance(second, SipResponse)
            assert (first.status, second.status) == (200, 200)
            assert first.to_addr.tag == second.to_addr.tag == "me"
            assert len(ours.requests) == 1  # the TU saw the request once
            # Our response went back to the source port (rport) with received set.
            assert first.top_via.rport == peer.port
            assert first.top_via.received == HOST
        peer.close()

    run_virtual(scenario)


def test_server_invite_sends_100_then_retransmits_non_2xx_until_ack() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            trying = await peer.recv()
            assert isinstance(trying, SipResponse)
            assert trying.status == 100
            assert trying.to_addr.tag is None
            trying_at = peer.received[0][0]
            assert trying_at == pytest.approx(0.2, abs=1e-6)  # the TU was silent 200 ms
            peer.send(invite, ours.transport.port)  # retransmission: the 100 again
            assert isinstance(again := await peer.recv(), SipResponse)
            assert again.status == 100
            transaction = holder[0]
            assert isinstance(transaction, ServerInviteTransaction)
            peer.received.clear()
            transaction.respond(make_response(invite, 486, to_tag="me"))
            finals = await peer.collect(7 * T1 + 0.001)
            # Timer G: 0, T1, 3T1 (then 4T1 capped to T2=4T1): 7T1.
            assert relative_times(peer) == pytest.approx(
                [0.0, T1, 3 * T1, 7 * T1], abs=1e-6
            )
            assert all(isinstance(m, SipResponse) and m.status == 486 for m in finals)
            ack = peer_request("ACK", peer, branch=invite.top_via.branch)
            ack.headers.set("To", f"<sip:me@{HOST}>;tag=me")
            peer.send(ack, ours.transport.port)
            await asyncio.sleep(0.001)
            assert state_of(transaction) == State.CONFIRMED
            assert await peer.collect(0.3) == []  # no more 486
            assert state_of(transaction) == State.TERMINATED  # Timer I
            assert [request.method for request, _, _ in ours.requests] == ["INVITE"]
        peer.close()

    run_virtual(scenario)


def test_server_invite_timer_h_without_ack() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=0) as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            trying = await peer.recv()
            assert isinstance(trying, SipResponse)
            assert trying.status == 100  # at once with trying_delay=0
            transaction = holder[0]
            assert isinstance(transaction, ServerInviteTransaction)
            timeouts: list[bool] = []
            transaction.on_ack_timeout = lambda: timeouts.append(True)
            peer.received.clear()
            transaction.respond(make_response(invite, 603, to_tag="me"))
            await peer.collect(64 * T1 + 0.2)
            assert timeouts == [True]
            assert state_of(transaction) == State.TERMINATED
            assert relative_times(peer) == pytest.approx(
                expected_times(T1, T2, 64 * T1), abs=1e-6
            )
        peer.close()

    run_virtual(scenario)


def test_cancel_matches_the_invite_server_transaction() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            seen: list[tuple[SipRequest, ServerTransaction | None]] = []

            def handler(
                request: SipRequest, transaction: ServerTransaction | None
            ) -> None:
                seen.append((request, transaction))
                if request.method == "CANCEL" and transaction is not None:
                    invite_tx = ours.layer.find_invite_for_cancel(request)
                    assert invite_tx is not None
                    transaction.respond(make_response(request, 200, to_tag="me"))
                    invite_tx.respond(
                        make_response(invite_tx.request, 487, to_tag="me")
                    )

            ours.handler = handler
            invite = peer_request("INVITE", peer)
            peer.send(invite, ours.transport.port)
            await asyncio.sleep(0.001)
            cancel = peer_request("CANCEL", peer, branch=invite.top_via.branch)
            other = peer_request("CANCEL", peer)  # another branch: matches nothing
            assert ours.layer.find_invite_for_cancel(other) is None
            peer.send(cancel, ours.transport.port)
            one, two = await peer.recv(), await peer.recv()
            statuses = sorted(
                (m.cseq.method, m.status)
                for m in (one, two)
                if isinstance(m, SipResponse)
            )
            assert statuses == [("CANCEL", 200), ("INVITE", 487)]
            invite_tx = seen[0][1]
            assert isinstance(invite_tx, ServerInviteTransaction)
            assert invite_tx.cancelled
            assert [request.method for request, _ in seen] == ["INVITE", "CANCEL"]
        peer.close()

    run_virtual(scenario)


def test_cancel_after_the_final_response_has_no_effect() -> None:
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
            invite_tx = holder[0][1]
            assert isinstance(invite_tx, ServerInviteTransaction)
            invite_tx.respond(make_response(invite, 486, to_tag="me"))
            cancel = peer_request("CANCEL", peer, branch=invite.top_via.branch)
            peer.send(cancel, ours.transport.port)
            await asyncio.sleep(0.001)
            assert [request.method for request, _ in holder] == ["INVITE", "CANCEL"]
            assert ours.layer.find_invite_for_cancel(cancel) is invite_tx
            assert not invite_tx.cancelled
        peer.close()

    run_virtual(scenario)


def test_2xx_retransmitted_until_ack_and_timeout_without() -> None:
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
                ours.layer, ok, transaction.source, reliable=False
            )
            await peer.collect(15 * T1 + 0.001)
            # 0 (the transaction), then T1, 2T1, 4T1 after each other: 1, 3, 7, 11, 15 T1.
            assert relative_times(peer) == pytest.approx(
                [0.0, T1, 3 * T1, 7 * T1, 11 * T1, 15 * T1], abs=1e-6
            )
            peer.send(invite, ours.transport.port)  # INVITE retransmission: absorbed
            await asyncio.sleep(0.001)
            assert state_of(transaction) == State.ACCEPTED
            assert len(ours.requests) == 1
            retransmitter.ack_received()
            assert await peer.collect(0.2) == []
            # Without ACK: 64*T1, then the timeout callback (the UA sends BYE).
            timed_out: list[bool] = []
            second = InviteOkRetransmitter(
                ours.layer,
                ok,
                transaction.source,
                reliable=True,
                on_timeout=lambda: timed_out.append(True),
            )
            assert (
                await peer.collect(64 * T1 + 0.01) == []
            )  # reliable: no retransmission
            assert timed_out == [True]
            assert second.done
        peer.close()

    run_virtual(scenario)


def test_ack_reusing_the_invite_branch_after_2xx_goes_to_the_tu() -> None:
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
            transaction.respond(make_response(invite, 200, to_tag="me"))
            ack = peer_request("ACK", peer, branch=invite.top_via.branch)
            peer.send(ack, ours.transport.port)
            await asyncio.sleep(0.001)
            assert [(r.method, t) for r, _, t in ours.requests] == [
                ("INVITE", transaction),
                ("ACK", None),
            ]
        peer.close()

    run_virtual(scenario)


def test_client_cancel_of_a_ringing_invite() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("INVITE", peer.port)
            target = Target("udp", HOST, peer.port)
            invite_tx = ours.layer.send_request(request, target)
            invite = await peer.recv()
            assert isinstance(invite, SipRequest)
            peer.send(make_response(invite, 180, to_tag="callee"), ours.transport.port)
            await asyncio.sleep(0.001)
            cancel_tx = ours.layer.send_request(cancel_request(request), target)
            cancel = await peer.recv()
            assert isinstance(cancel, SipRequest)
            assert cancel.method == "CANCEL"
            assert cancel.top_via.branch == invite.top_via.branch
            assert cancel.cseq == type(cancel.cseq)(invite.cseq.seq, "CANCEL")
            assert cancel.call_id == invite.call_id
            assert cancel.to_addr.tag is None
            assert str(cancel.uri) == str(invite.uri)
            peer.send(make_response(cancel, 200, to_tag="callee"), ours.transport.port)
            peer.send(make_response(invite, 487, to_tag="callee"), ours.transport.port)
            assert (await cancel_tx.final()).status == 200
            assert (await invite_tx.final()).status == 487
            ack = await peer.recv()
            assert isinstance(ack, SipRequest)
            assert ack.method == "ACK"
        peer.close()

    run_virtual(scenario)


def test_stray_response_goes_to_the_tu() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            invite = peer_request("INVITE", peer)
            peer.send(make_response(invite, 200, to_tag="x"), ours.transport.port)
            await asyncio.sleep(0.001)
            assert [response.status for response in ours.stray] == [200]
        peer.close()

    run_virtual(scenario)


def test_close_ends_pending_transactions_with_local_503() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            request = ours.request("INVITE", peer.port)
            transaction = ours.layer.send_request(
                request, Target("udp", HOST, peer.port)
            )
            await peer.recv()
            ok = make_response(peer_request("INVITE", peer), 200, to_tag="me")
            retransmitter = InviteOkRetransmitter(
                ours.layer, ok, Source("udp", HOST, peer.port), reliable=False
            )
            ours.layer.close()
            final = await transaction.final()
            assert (final.status, final.from_network) == (503, False)
            assert isinstance(transaction.error, TransportError)
            assert retransmitter.done
            assert await peer.collect(1.0) == []  # every timer was cancelled
            with pytest.raises(TransportError):
                ours.layer.send_request(
                    ours.request("OPTIONS", peer.port), Target("udp", HOST, peer.port)
                )
        peer.close()

    run_virtual(scenario)


async def test_send_request_refusals() -> None:
    async with Endpoint() as ours:
        target = Target("udp", HOST, 9)
        ack = ours.request("ACK", 9)
        with pytest.raises(ValueError, match="ACK"):
            ours.layer.send_request(ack, target)
        no_branch = ours.request("OPTIONS", 9)
        no_branch.replace_top_via(Via("UDP", HOST, 5060, {"branch": "old-style"}))
        with pytest.raises(ValueError, match="branch"):
            ours.layer.send_request(no_branch, target)
        request = ours.request("OPTIONS", 9)
        ours.layer.send_request(request, target)
        with pytest.raises(ValueError, match="running"):
            ours.layer.send_request(request, target)
    no_transport = TransactionLayer(lambda *_: None)
    with pytest.raises(TransportError):
        _ = no_transport.sender


def test_server_non_invite_provisional_then_final_then_timer_j() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint() as ours:
            holder: list[ServerTransaction | None] = []
            ours.handler = lambda _request, transaction: holder.append(transaction)
            bye = peer_request("BYE", peer)
            peer.send(bye, ours.transport.port)
            await asyncio.sleep(0.001)
            transaction = holder[0]
            assert transaction is not None
            transaction.respond(make_response(bye, 180))
            assert state_of(transaction) == State.PROCEEDING
            peer.send(bye, ours.transport.port)  # retransmission: the 180 again
            await asyncio.sleep(0.001)
            transaction.respond(make_response(bye, 200, to_tag="me"))
            transaction.respond(
                make_response(bye, 500, to_tag="me")
            )  # too late: ignored
            got = await peer.collect(0.05)
            statuses = [m.status for m in got if isinstance(m, SipResponse)]
            assert statuses == [180, 180, 200]
            assert state_of(transaction) == State.COMPLETED
            await asyncio.sleep(64 * T1 + 0.01)
            assert state_of(transaction) == State.TERMINATED  # Timer J
            # After Timer J the same request is new again for the TU.
            peer.send(bye, ours.transport.port)
            await asyncio.sleep(0.001)
            assert len(ours.requests) == 2
        peer.close()

    run_virtual(scenario)


def test_trying_echoes_timestamp_and_rfc2543_retransmissions_match() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with Endpoint(trying_delay=0) as ours:
            invite = peer_request("INVITE", peer)
            invite.replace_top_via(Via("UDP", HOST, peer.port, {}))  # no branch at all
            invite.headers.add("Timestamp", "54")
            peer.send(invite, ours.transport.port)
            trying = await peer.recv()
            assert isinstance(trying, SipResponse)
            assert trying.status == 100
            assert trying.headers.get("timestamp") == "54"
            peer.send(invite, ours.transport.port)  # matched without a branch
            again = await peer.recv()
            assert isinstance(again, SipResponse)
            assert again.status == 100
            assert len(ours.requests) == 1
            transaction = ours.requests[0][2]
            assert transaction is not None
            transaction.respond(make_response(invite, 486, to_tag="me"))
            ack = peer_request("ACK", peer)
            ack.replace_top_via(Via("UDP", HOST, peer.port, {}))
            peer.send(ack, ours.transport.port)
            await peer.collect(0.005)
            assert state_of(transaction) == State.CONFIRMED
            assert len(ours.requests) == 1  # the ACK was the transaction's
            # An ACK that matches nothing goes to the TU without a transaction.
            stray = peer_request("ACK", peer)
            peer.send(stray, ours.transport.port)
            await asyncio.sleep(0.001)
            assert [(r.method, t) for r, _, t in ours.requests[1:]] == [("ACK", None)]
        peer.close()

    run_virtual(scenario)


async def test_invite_server_over_tcp_needs_no_retransmissions() -> None:
    async with Endpoint(trying_delay=10) as ours:
        holder: list[ServerTransaction | None] = []
        ours.handler = lambda _request, transaction: holder.append(transaction)
        reader, writer = await asyncio.open_connection(HOST, ours.transport.port)
        local_port = writer.get_extra_info("sockname")[1]
        invite = peer_request("INVITE", 9)
        invite.replace_top_via(
            Via("TCP", HOST, local_port, {"branch": new_branch(), "rport": None})
        )
        writer.write(invite.to_bytes())
        await writer.drain()
        for _ in range(100):
            if holder:
                break
            await asyncio.sleep(0.01)
        transaction = holder[0]
        assert transaction is not None
        assert transaction.reliable
        timeouts: list[bool] = []
        assert isinstance(transaction, ServerInviteTransaction)
        transaction.on_ack_timeout = lambda: timeouts.append(True)
        transaction.respond(make_response(invite, 486, to_tag="me"))
        data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert data.startswith(b"SIP/2.0 486")
        # 64*T1 later: Timer H fired, and Timer G never sent the 486 again.
        await asyncio.sleep(64 * T1 + 0.2)
        assert timeouts == [True]
        assert state_of(transaction) == State.TERMINATED
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.1)
        writer.close()


def test_cancel_and_ack_builders_copy_route() -> None:
    invite = peer_request("INVITE", 9)
    invite.headers.add("Route", "<sip:p1.example.com;lr>")
    invite.headers.add("Route", "<sip:p2.example.com;lr>")
    cancel = cancel_request(invite)
    assert cancel.headers.get_lines("route") == invite.headers.get_lines("route")
    assert cancel.headers.get_lines("via") == [invite.headers.get_all("via")[0]]
    busy = make_response(invite, 486, to_tag="callee")
    ack = ack_for_non_2xx(invite, busy)
    assert ack.headers.get_lines("route") == invite.headers.get_lines("route")
    assert ack.to_addr.tag == "callee"
    assert ack.cseq.method == "ACK"


async def test_unparseable_message_reaching_the_layer_is_dropped() -> None:
    async with Endpoint() as ours:
        headless = SipResponse(200, headers=Headers([("Call-ID", "x")]))
        ours.layer.receive(headless, Source("udp", HOST, 9))  # must not raise
        assert ours.stray == []


# --- against the real Kamailio ------------------------------------------------------


def register_request(ours: Endpoint, kamailio: Any, transport: str) -> SipRequest:
    """Build an unauthenticated REGISTER for extension 2000."""
    via = via_for(ours.transport, transport, HOST, new_branch())
    user = "2000"
    port = ours.transport.local_port(transport)
    headers = Headers(
        [
            ("Via", str(via)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{user}@{kamailio.host}>;tag={new_tag()}"),
            ("To", f"<sip:{user}@{kamailio.host}>"),
            ("Call-ID", f"{new_tag()}@{HOST}"),
            ("CSeq", "1 REGISTER"),
            ("Contact", f"<sip:{user}@{HOST}:{port};transport={transport}>"),
            ("Expires", "60"),
        ]
    )
    return SipRequest("REGISTER", SipUri(host=kamailio.host), headers)


async def test_register_through_kamailio_is_answered_from_network(
    kamailio: Any,
) -> None:
    async with Endpoint() as ours:
        for transport in ("udp", "tcp"):
            request = register_request(ours, kamailio, transport)
            transaction = ours.layer.send_request(
                request, Target(transport, kamailio.host, kamailio.port)
            )
            final = await asyncio.wait_for(transaction.final(), 20)
            assert final.status == 401
            assert final.from_network is True
            assert final.headers.get("www-authenticate") is not None
            assert final.call_id == request.call_id


async def test_register_over_tls_to_kamailio(kamailio_factory: Any) -> None:
    kamailio = kamailio_factory(tls=True)
    async with Endpoint() as ours:
        request = register_request(ours, kamailio, "tls")
        target = Target(
            "tls",
            kamailio.host,
            kamailio.tls_port,
            server_name=kamailio.host,
            tls_context=client_tls_context(True, str(kamailio.ca_path)),
        )
        transaction = ours.layer.send_request(request, target)
        final = await asyncio.wait_for(transaction.final(), 20)
        assert (final.status, final.from_network) == (401, True)
    # Without the test-bed CA the same server is refused, and the transaction says
    # why (not a timeout).
    async with Endpoint() as ours:
        untrusted = Target(
            "tls",
            kamailio.host,
            kamailio.tls_port,
            server_name=kamailio.host,
            tls_context=client_tls_context(True, None),
        )
        refused = ours.layer.send_request(
            register_request(ours, kamailio, "tls"), untrusted
        )
        final = await asyncio.wait_for(refused.final(), 20)
        assert (final.status, final.from_network) == (503, False)
        assert isinstance(refused.error, TlsVerificationError)
        assert "certificate verify failed" in refused.error.reason
