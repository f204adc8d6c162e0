"""SIP transactions (RFC 3261 17, RFC 6026): client and server, INVITE and non-INVITE.

Everything runs on one asyncio loop; timers are ``loop.call_later`` handles, all
cancelled when a transaction ends or the layer closes.

Public API
----------
``TransactionLayer(on_request, *, on_stray_response=None, t1=0.5, t2=4.0, t4=5.0,
trying_delay=0.2, timer_d=32.0)``
    Set ``layer.transport`` (a :class:`~.transport.SipTransportLayer`) and give
    ``layer.receive`` to that transport as its message callback.
    ``send_request(request, target, *, on_response=None, timeout=None)
    -> ClientTransaction`` starts a client transaction; the request's top Via must
    carry an RFC 3261 branch (``z9hG4bK...``). ``timeout`` overrides Timer B/F (a
    liveness probe; for INVITE it then also bounds the Proceeding state, while
    Timer B itself stops at the first provisional response).
    ``find_invite_for_cancel(cancel) -> ServerInviteTransaction |
    None`` (RFC 3261 9.2). ``close()`` ends every transaction (pending client
    transactions get a local 503). ``t1``, ``t2``, ``t4``, ``trying_delay``,
    ``timer_d``; ``sender`` (the transport; TransportError when unset);
    ``spawn(coroutine)`` runs a send as a task that close() cancels.
``on_request(request, source, transaction)`` is called once per new request;
``transaction`` is its :class:`ServerTransaction`, or None for an ACK of a 2xx (it
matched no transaction, or an INVITE transaction in the Accepted state): that ACK
belongs to the dialog. Retransmissions are
absorbed (and answered with the last response).
``on_stray_response(response, source)`` gets responses that match no transaction.
``ClientTransaction``: ``request``, ``target``, ``branch``, ``method``, ``state``,
``error`` (the :class:`~.transport.TransportError`, e.g. a
:class:`~.transport.TlsVerificationError`, when sending failed), ``final_response``,
``await final() -> SipResponse``: the final response, either from the network
(``from_network=True``) or made locally (``from_network=False``): 408 when Timer B/F
fires, 503 on a transport error or when the layer closes. ``on_response(response)``
sees every response (provisionals, the final one, and for INVITE the 2xx
retransmissions that arrive in the Accepted state, so the UA can ACK them again).
The ACK for a non-2xx final response to INVITE is sent by the transaction.
``ServerTransaction`` (``ServerInviteTransaction``, ``ServerNonInviteTransaction``):
``request``, ``source``, ``state``, ``last_response``, ``respond(response)``
(sends; a 2xx ends an INVITE server transaction in the Accepted state). Once the
final response is out, a transaction only lingers to absorb retransmissions (up to
64*T1): ``request`` is then :func:`slim_request`'s copy and ``last_response`` a
:class:`SentResponse` (its bytes and top Via), or None in the Accepted state (a 2xx
is retransmitted by the TU, never by the transaction). A client transaction likewise keeps
a slim ``request`` once it has its final response (its ACK as bytes).
``on_ack_timeout`` (callable set by the TU: Timer H fired without ACK),
``cancelled`` (a CANCEL matched it before the final response: answer it 487; a
CANCEL after the final response has no effect, RFC 3261 9.2).
``InviteOkRetransmitter(layer, response, source, *, reliable, on_timeout=None)``:
retransmits a 2xx to INVITE at T1 doubling to T2 until ``ack_received()`` or 64*T1
(then ``on_timeout()``); ``stop()``.
``ack_for_non_2xx(invite, response) -> SipRequest`` (RFC 3261 17.1.1.3);
``cancel_request(invite) -> SipRequest`` (RFC 3261 9.1; send it with
``send_request`` to the INVITE's target once a provisional response has arrived).
``server_key(request, *, method=None)``: the server transaction key (17.2.3).
``slim_request(request) -> SipRequest`` (Via, From, To, Call-ID, CSeq only);
``SentResponse(response)``.
``State`` values: calling, trying, proceeding, completed, confirmed, accepted,
terminated. ``MAX_SERVER_TRANSACTIONS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import enum
import logging
from typing import TYPE_CHECKING, Final

from .message import (
    BRANCH_MAGIC,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    Via,
    make_response,
)
from .transport import Source, Target, TransportError

if TYPE_CHECKING:
    from .transport import SipTransportLayer

_LOGGER = logging.getLogger(__name__)

MAX_SERVER_TRANSACTIONS: Final = 4096
MAX_CLIENT_TRANSACTIONS: Final = 4096


class State(enum.StrEnum):
    """Transaction states (RFC 3261 17, RFC 6026 Accepted)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


def _local_response(request: SipRequest, status: int, reason: str) -> SipResponse:
    """Return a locally made response (``from_network`` False)."""
    return make_response(request, status, reason)


def cancel_request(invite: SipRequest) -> SipRequest:
    """Build the CANCEL of a pending ``invite`` (RFC 3261 9.1).

    Same Request-URI, Call-ID, From, To, CSeq number and top Via (branch included)
    as the INVITE, and its Route headers.
    """
    headers = Headers()
    headers.add("Via", invite.headers.get_all("via")[0])
    for value in invite.headers.get_lines("route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("from") or "")
    headers.add("To", invite.headers.get("to") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    return SipRequest("CANCEL", invite.uri, headers)


_RESPONSE_HEADERS: Final = ("via", "from", "to", "call-id", "cseq")


def slim_request(request: SipRequest) -> SipRequest:
    """Return ``request`` with only what a response to it needs (RFC 3261 8.2.6).

    Via, From, To, Call-ID and CSeq, no body: what a transaction keeps once its
    final response is out (`make_response` still works on it).
    """
    headers = Headers()
    for name in _RESPONSE_HEADERS:
        for value in request.headers.get_lines(name):
            headers.add(name, value)
    return SipRequest(request.method, request.uri, headers)


class SentResponse(SipResponse):
    """A response kept only to be sent again: its bytes and its top Via."""

    __slots__ = ("_data", "_via")

    def __init__(self, response: SipResponse) -> None:
        """Serialise ``response`` once; keep nothing else of it."""
        super().__init__(response.status, response.reason)
        self._data = response.to_bytes()
        self._via = response.top_via

    def to_bytes(self) -> bytes:
        """Return the bytes of the response as first sent."""
        return self._data

    @property
    def top_via(self) -> Via:
        """Return the top Via (where the response goes without a connection)."""
        return self._via


def ack_for_non_2xx(invite: SipRequest, response: SipResponse) -> SipRequest:
    """Build the ACK for a non-2xx final response to ``invite`` (RFC 3261 17.1.1.3)."""
    headers = Headers()
    via = invite.headers.get_all("via")
    headers.add("Via", via[0])
    for value in invite.headers.get_lines("route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("from") or "")
    headers.add("To", response.headers.get("to") or invite.headers.get("to") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return SipRequest("ACK", invite.uri, headers)


class _Transaction:
    """Timers and state shared by every transaction."""

    def __init__(self, layer: TransactionLayer, reliable: bool) -> None:
        self._layer = layer
        self.reliable = reliable
        self.state = State.TRYING
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def _start_timer(
        self, name: str, delay: float, callback: Callable[[], None]
    ) -> None:
        self._cancel_timer(name)
        # A bound method and arguments, not a closure: a lingering transaction holds
        # one timer for 64*T1, and a closure with its cells is ~250 bytes more each.
        self._timers[name] = asyncio.get_running_loop().call_later(
            delay, self._fire, name, callback
        )

    def _fire(self, name: str, callback: Callable[[], None]) -> None:
        self._timers.pop(name, None)
        if self.state == State.TERMINATED:
            return
        try:
            callback()
        except Exception:
            _LOGGER.exception("SIP timer %s failed", name)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._cancel_timers()
        self._layer.forget(self)


# --- client transactions ------------------------------------------------------------


class ClientTransaction(_Transaction):
    """A client transaction: INVITE (17.1.1) or non-INVITE (17.1.2)."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        target: Target,
        on_response: Callable[[SipResponse], None] | None,
        timeout: float | None,
    ) -> None:
        """Prepare; :meth:`TransactionLayer.send_request` starts it."""
        super().__init__(layer, target.transport.lower() != "udp")
        self.request = request
        self.target = target
        self.method = request.method
        self.is_invite = request.method == "INVITE"
        branch = request.top_via.branch
        if not branch or not branch.startswith(BRANCH_MAGIC):
            raise ValueError("the top Via needs an RFC 3261 branch")
        self.branch = branch
        self.key = (branch, request.cseq.method)
        self.state = State.CALLING if self.is_invite else State.TRYING
        self.error: TransportError | None = None
        self.final_response: SipResponse | None = None
        self._on_response = on_response
        self._timeout = timeout if timeout is not None else 64 * layer.t1
        self._explicit_timeout = timeout is not None
        self._final: asyncio.Future[SipResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._interval = layer.t1
        self._ack: bytes | None = None

    def __repr__(self) -> str:
        """Return a short description."""
        return f"<ClientTransaction {self.method} {self.branch} {self.state}>"

    async def final(self) -> SipResponse:
        """Wait for the final response (from the network or local)."""
        return await asyncio.shield(self._final)

    def start(self) -> None:
        """Send the request and start the timers."""
        self._send(self.request.to_bytes())
        if not self.reliable:
            self._start_timer("retransmit", self._interval, self._retransmit)
        self._start_timer("timeout", self._timeout, self._timed_out)

    def _send(self, data: bytes) -> None:
        self._layer.spawn(self._send_async(data))

    async def _send_async(self, data: bytes) -> None:
        try:
            await self._layer.sender.send(data, self.target)
        except TransportError as err:
            self._transport_failed(err)

    def _transport_failed(self, err: TransportError) -> None:
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            _LOGGER.debug("%r: transport error: %s", self, err.reason)
            self.error = err
            self._finish_locally(503, f"Transport Error ({err.reason[:80]})")

    def _retransmit(self) -> None:
        if self.state == State.CALLING or (
            not self.is_invite and self.state in (State.TRYING, State.PROCEEDING)
        ):
            self._send(self.request.to_bytes())
            if self.is_invite:
                self._interval *= 2  # Timer A doubles without a cap
            elif self.state == State.PROCEEDING:
                self._interval = self._layer.t2
            else:
                self._interval = min(self._interval * 2, self._layer.t2)
            self._start_timer("retransmit", self._interval, self._retransmit)

    def _timed_out(self) -> None:
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self._finish_locally(408, "Request Timeout")
        elif self.state == State.ACCEPTED:
            self._terminate()

    def _finish_locally(self, status: int, reason: str) -> None:
        response = _local_response(self.request, status, reason)
        self.final_response = response
        self._terminate()
        self._resolve(response)
        self._deliver(response)

    def _resolve(self, response: SipResponse) -> None:
        if not self._final.done():
            self._final.set_result(response)

    def _deliver(self, response: SipResponse) -> None:
        if self._on_response is None:
            return
        try:
            self._on_response(response)
        except Exception:
            _LOGGER.exception("SIP response handler failed")

    def close(self) -> None:
        """End the transaction now (a pending one gets a local 503)."""
        if self.state != State.TERMINATED and not self._final.done():
            self.error = TransportError("closed")
            self._finish_locally(503, "Transaction Closed")
        else:
            self._terminate()

    def receive(self, response: SipResponse) -> None:
        """Handle a response that matched this transaction."""
        status = response.status
        if self.state == State.TERMINATED:
            return
        if status < 200:
            if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
                if self.is_invite:
                    self._cancel_timer("retransmit")  # Timer A stops on 1xx
                    if not self._explicit_timeout:
                        # Timer B only guards Calling: a ringing INVITE waits for
                        # its final response (the TU CANCELs when it wants).
                        self._cancel_timer("timeout")
                elif self.state == State.TRYING and not self.reliable:
                    self._interval = self._layer.t2
                self.state = State.PROCEEDING
                self._deliver(response)
            return
        if self.is_invite:
            self._receive_invite_final(response)
        else:
            self._receive_non_invite_final(response)

    def _receive_invite_final(self, response: SipResponse) -> None:
        if 200 <= response.status < 300:
            if self.state in (State.CALLING, State.PROCEEDING):
                self.final_response = response
                self.state = State.ACCEPTED  # RFC 6026: Timer M
                self._cancel_timers()
                self._start_timer("timeout", 64 * self._layer.t1, self._terminate)
                self.request = slim_request(self.request)
                self._resolve(response)
                self._deliver(response)
            elif self.state == State.ACCEPTED:
                self._deliver(response)  # a retransmitted 2xx: the UA ACKs again
            return
        if self.state in (State.CALLING, State.PROCEEDING):
            self.final_response = response
            self.state = State.COMPLETED
            self._cancel_timers()
            self._ack = ack_for_non_2xx(self.request, response).to_bytes()
            self._send(self._ack)
            delay = 0.0 if self.reliable else self._layer.timer_d
            self._start_timer("timer_d", delay, self._terminate)
            self.request = slim_request(self.request)
            self._resolve(response)
            self._deliver(response)
        elif self.state == State.COMPLETED and self._ack is not None:
            self._send(self._ack)  # the final was retransmitted

    def _receive_non_invite_final(self, response: SipResponse) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        self.final_response = response
        self.state = State.COMPLETED
        self._cancel_timers()
        delay = 0.0 if self.reliable else self._layer.t4
        self._start_timer("timer_k", delay, self._terminate)
        self.request = slim_request(self.request)
        self._resolve(response)
        self._deliver(response)


# --- server transactions ------------------------------------------------------------


class ServerTransaction(_Transaction):
    """What both server transactions share."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
        key: tuple[str, ...],
    ) -> None:
        """Prepare for ``request`` received from ``source``."""
        super().__init__(layer, source.transport != "udp")
        self.request = request
        self.source = source
        self.key = key
        self.last_response: SipResponse | None = None
        self.cancelled = False
        self.on_ack_timeout: Callable[[], None] | None = None

    def __repr__(self) -> str:
        """Return a short description."""
        return f"<{type(self).__name__} {self.request.method} {self.state}>"

    def _send(self, response: SipResponse) -> None:
        self._layer.spawn(self._send_async(response))

    async def _send_async(self, response: SipResponse) -> None:
        try:
            await self._layer.sender.send_response(response, self.source)
        except TransportError as err:
            _LOGGER.debug("%r: cannot send a response: %s", self, err.reason)
            if self.state != State.TERMINATED:
                self._terminate()

    def respond(self, response: SipResponse) -> None:
        """Send a response from the TU."""
        raise NotImplementedError

    def _keep_only_what_retransmits(self) -> None:
        """After the final response keep its bytes and the headers a response needs.

        The transaction lingers for up to 64*T1 (Timers H, J, L) only to absorb
        retransmissions; the parsed request and response would be held as long.
        """
        self.request = slim_request(self.request)
        if self.last_response is not None:
            with contextlib.suppress(SipParseError):  # no Via: keep it whole
                self.last_response = SentResponse(self.last_response)

    def receive_request(self, request: SipRequest) -> None:
        """Handle a retransmission of the request (or an ACK)."""
        raise NotImplementedError

    def close(self) -> None:
        """End the transaction now."""
        self._terminate()


class ServerInviteTransaction(ServerTransaction):
    """The INVITE server transaction (17.2.1, RFC 6026)."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
        key: tuple[str, ...],
    ) -> None:
        """Start in Proceeding; 100 Trying follows unless the TU answers first."""
        super().__init__(layer, request, source, key)
        self.state = State.PROCEEDING
        self._interval = layer.t1

    def start(self) -> None:
        """Schedule the automatic 100 Trying."""
        if self._layer.trying_delay <= 0:
            self._auto_trying()
        else:
            self._start_timer("trying", self._layer.trying_delay, self._auto_trying)

    def _auto_trying(self) -> None:
        if self.state == State.PROCEEDING and self.last_response is None:
            self.respond(_trying(self.request))

    def respond(self, response: SipResponse) -> None:
        """Send a provisional or final response."""
        if self.state != State.PROCEEDING:
            _LOGGER.debug("%r: response %s after the final one", self, response.status)
            return
        self._cancel_timer("trying")
        self.last_response = response
        self._send(response)
        if response.status < 200:
            return
        if response.status < 300:
            # Accepted absorbs INVITE retransmissions without answering (RFC 6026
            # 8.5): the 2xx (with its SDP) need not be held for Timer L's 32 s.
            self.last_response = None
        self._keep_only_what_retransmits()
        if response.status < 300:
            self.state = State.ACCEPTED  # the TU retransmits the 2xx (13.3.1.4)
            self._start_timer("timer_l", 64 * self._layer.t1, self._terminate)
            return
        self.state = State.COMPLETED
        if not self.reliable:
            self._start_timer("timer_g", self._interval, self._retransmit_final)
        self._start_timer("timer_h", 64 * self._layer.t1, self._ack_timeout)

    def _retransmit_final(self) -> None:
        if self.state == State.COMPLETED and self.last_response is not None:
            self._send(self.last_response)
            self._interval = min(self._interval * 2, self._layer.t2)
            self._start_timer("timer_g", self._interval, self._retransmit_final)

    def _ack_timeout(self) -> None:
        self._terminate()
        if self.on_ack_timeout is not None:
            try:
                self.on_ack_timeout()
            except Exception:
                _LOGGER.exception("ACK timeout handler failed")

    def receive_request(self, request: SipRequest) -> None:
        """Absorb a retransmitted INVITE (resend the last response) or take the ACK."""
        if request.method == "ACK":
            if self.state == State.COMPLETED:
                self.state = State.CONFIRMED
                self._cancel_timers()
                delay = 0.0 if self.reliable else self._layer.t4
                self._start_timer("timer_i", delay, self._terminate)
            return
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response:
            self._send(self.last_response)


class ServerNonInviteTransaction(ServerTransaction):
    """The non-INVITE server transaction (17.2.2)."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
        key: tuple[str, ...],
    ) -> None:
        """Start in Trying."""
        super().__init__(layer, request, source, key)
        self.state = State.TRYING

    def respond(self, response: SipResponse) -> None:
        """Send a provisional or final response."""
        if self.state not in (State.TRYING, State.PROCEEDING):
            _LOGGER.debug("%r: response %s after the final one", self, response.status)
            return
        self.last_response = response
        self._send(response)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self._keep_only_what_retransmits()
        self.state = State.COMPLETED
        delay = 0.0 if self.reliable else 64 * self._layer.t1
        self._start_timer("timer_j", delay, self._terminate)

    def receive_request(self, request: SipRequest) -> None:
        """Absorb a retransmission; resend the last response when there is one."""
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response:
            self._send(self.last_response)


def _trying(request: SipRequest) -> SipResponse:
    """Return the 100 Trying for ``request`` (no To tag; Timestamp echoed, 8.2.6.1)."""
    response = make_response(request, 100)
    timestamp = request.headers.get("timestamp")
    if timestamp is not None and timestamp.isprintable():
        response.headers.add("Timestamp", timestamp)
    return response


# --- 2xx retransmission (13.3.1.4) --------------------------------------------------


class InviteOkRetransmitter:
    """Retransmits a 2xx to INVITE until the ACK arrives (RFC 3261 13.3.1.4)."""

    def __init__(
        self,
        layer: TransactionLayer,
        response: SipResponse,
        source: Source,
        *,
        reliable: bool,
        on_timeout: Callable[[], None] | None = None,
    ) -> None:
        """Start retransmitting (not on reliable transports) and the 64*T1 timeout."""
        self._layer = layer
        self._response = response
        self._source = source
        self._on_timeout = on_timeout
        self._interval = layer.t1
        self.done = False
        loop = asyncio.get_running_loop()
        self._retransmit_handle: asyncio.TimerHandle | None = None
        if not reliable:
            self._retransmit_handle = loop.call_later(self._interval, self._retransmit)
        self._timeout_handle = loop.call_later(64 * layer.t1, self._timed_out)
        layer.track(self)

    def _retransmit(self) -> None:
        if self.done:
            return
        self._layer.spawn(self._send())
        self._interval = min(self._interval * 2, self._layer.t2)
        self._retransmit_handle = asyncio.get_running_loop().call_later(
            self._interval, self._retransmit
        )

    async def _send(self) -> None:
        try:
            await self._layer.sender.send_response(self._response, self._source)
        except TransportError as err:
            _LOGGER.debug("2xx retransmission failed: %s", err.reason)

    def _timed_out(self) -> None:
        if self.done:
            return
        self.stop()
        if self._on_timeout is not None:
            try:
                self._on_timeout()
            except Exception:
                _LOGGER.exception("2xx ACK timeout handler failed")

    def ack_received(self) -> None:
        """Stop: the ACK arrived."""
        self.stop()

    def stop(self) -> None:
        """Stop retransmitting and cancel the timeout."""
        self.done = True
        if self._retransmit_handle is not None:
            self._retransmit_handle.cancel()
        self._timeout_handle.cancel()
        self._layer.untrack(self)


# --- the layer ----------------------------------------------------------------------


RequestCallback = Callable[[SipRequest, Source, "ServerTransaction | None"], None]
ResponseCallback = Callable[[SipResponse, Source], None]


class TransactionLayer:
    """Matches messages to transactions and runs their timers."""

    def __init__(
        self,
        on_request: RequestCallback,
        *,
        on_stray_response: ResponseCallback | None = None,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        trying_delay: float = 0.2,
        timer_d: float = 32.0,
    ) -> None:
        """Keep the TU callbacks and timer values; set ``transport`` before use."""
        self.on_request = on_request
        self.on_stray_response = on_stray_response
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.trying_delay = trying_delay
        self.timer_d = timer_d
        self.transport: SipTransportLayer | None = None
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[tuple[str, ...], ServerTransaction] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._retransmitters: set[InviteOkRetransmitter] = set()
        self._closed = False

    @property
    def sender(self) -> SipTransportLayer:
        """Return the transport (raises when none is set)."""
        if self.transport is None:
            raise TransportError("no transport")
        return self.transport

    def spawn(self, coroutine: object) -> None:
        """Run a send coroutine as a tracked task."""
        assert asyncio.iscoroutine(coroutine)
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("SIP send task failed: %r", error)

    def track(self, retransmitter: InviteOkRetransmitter) -> None:
        """Remember a 2xx retransmitter so that close() stops it."""
        self._retransmitters.add(retransmitter)

    def untrack(self, retransmitter: InviteOkRetransmitter) -> None:
        """Forget a stopped 2xx retransmitter."""
        self._retransmitters.discard(retransmitter)

    def forget(self, transaction: _Transaction) -> None:
        """Remove a terminated transaction."""
        if isinstance(transaction, ClientTransaction):
            if self._clients.get(transaction.key) is transaction:
                del self._clients[transaction.key]
        elif (
            isinstance(transaction, ServerTransaction)
            and self._servers.get(transaction.key) is transaction
        ):
            del self._servers[transaction.key]

    # --- client side --------------------------------------------------------------

    def send_request(
        self,
        request: SipRequest,
        target: Target,
        *,
        on_response: Callable[[SipResponse], None] | None = None,
        timeout: float | None = None,
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` (not for ACK)."""
        if request.method == "ACK":
            raise ValueError("ACK is not sent in a client transaction")
        if self._closed:
            raise TransportError("closed")
        if len(self._clients) >= MAX_CLIENT_TRANSACTIONS:
            raise TransportError("too many transactions")
        transaction = ClientTransaction(self, request, target, on_response, timeout)
        if transaction.key in self._clients:
            raise ValueError("a transaction with this branch is running")
        self._clients[transaction.key] = transaction
        transaction.start()
        return transaction

    # --- receiving ----------------------------------------------------------------

    def receive(self, message: SipRequest | SipResponse, source: Source) -> None:
        """Take a message from the transport (never raises)."""
        try:
            if isinstance(message, SipResponse):
                self._receive_response(message, source)
            else:
                self._receive_request(message, source)
        except SipParseError as err:
            _LOGGER.debug("Dropping a message: %s", err.reason)
        except Exception:
            _LOGGER.exception("SIP transaction handling failed")

    def _receive_response(self, response: SipResponse, source: Source) -> None:
        branch = response.top_via.branch or ""
        transaction = self._clients.get((branch, response.cseq.method))
        if transaction is not None:
            transaction.receive(response)
        elif self.on_stray_response is not None:
            self.on_stray_response(response, source)

    def _receive_request(self, request: SipRequest, source: Source) -> None:
        key = server_key(request)
        transaction = self._servers.get(key)
        if transaction is not None:
            if request.method == "ACK" and transaction.state == State.ACCEPTED:
                # The ACK of our 2xx from a peer that reused the INVITE's branch
                # (or an RFC 2543 peer): it belongs to the dialog (RFC 6026 8.7).
                self.on_request(request, source, None)
                return
            transaction.receive_request(request)
            return
        if request.method == "ACK":
            self.on_request(request, source, None)
            return
        if self._closed or len(self._servers) >= MAX_SERVER_TRANSACTIONS:
            _LOGGER.warning("Dropping a %s: too many transactions", request.method)
            return
        server: ServerTransaction
        if request.method == "INVITE":
            invite = ServerInviteTransaction(self, request, source, key)
            server = invite
            self._servers[key] = server
            invite.start()
        else:
            server = ServerNonInviteTransaction(self, request, source, key)
            self._servers[key] = server
        if request.method == "CANCEL":
            cancelled = self.find_invite_for_cancel(request)
            if cancelled is not None and cancelled.state == State.PROCEEDING:
                cancelled.cancelled = True  # no final response yet: it takes effect
        self.on_request(request, source, server)

    def find_invite_for_cancel(
        self, cancel: SipRequest
    ) -> ServerInviteTransaction | None:
        """Return the INVITE server transaction a CANCEL cancels (9.2), or None."""
        key = server_key(cancel, method="INVITE")
        transaction = self._servers.get(key)
        if isinstance(transaction, ServerInviteTransaction):
            return transaction
        return None

    def close(self) -> None:
        """End every transaction and timer."""
        self._closed = True
        for client in list(self._clients.values()):
            client.close()
        for server in list(self._servers.values()):
            server.close()
        for retransmitter in list(self._retransmitters):
            retransmitter.stop()
        for task in list(self._tasks):
            task.cancel()
        self._clients.clear()
        self._servers.clear()


def server_key(request: SipRequest, *, method: str | None = None) -> tuple[str, ...]:
    """Return the server transaction key of a request (RFC 3261 17.2.3)."""
    via = request.top_via
    name = method or ("INVITE" if request.method == "ACK" else request.method)
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    branch = via.branch or ""
    if branch.startswith(BRANCH_MAGIC):
        return (branch, sent_by, name)
    # RFC 2543 peers: match on what identifies the request instead.
    return (
        "2543",
        request.call_id,
        request.from_addr.tag or "",
        str(request.cseq.seq),
        sent_by,
        branch,
        name,
    )
