"""SIP transactions (RFC 3261 17, RFC 6026): client and server, INVITE and non-INVITE.

Everything runs on one asyncio loop; timers are ``loop.call_later`` handles, all
cancelled when a transaction ends or the layer closes.

Once its final response is out (server) or in (client), a transaction only lingers to
absorb retransmissions, for up to 64*T1 (Timers D, I, J, K, L, M). The layer then
keeps a :class:`FinishedTransaction` in place of the transaction: the few bytes a
retransmission needs (the final response or the ACK to send again, and where to), and
no timer of its own: the layer ends finished transactions in the order they finished,
with one timer for them all. The transaction object itself is the TU's to keep or
drop; its ``state`` reads ``terminated`` once its record has ended.

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
    None`` (RFC 3261 9.2; a finished INVITE transaction is found while its TU still
    holds it). ``close()`` ends every transaction (pending client transactions get a
    local 503). ``t1``, ``t2``, ``t4``, ``trying_delay``, ``timer_d``; ``sender``
    (the transport; TransportError when unset); ``spawn(coroutine)`` runs a send as a
    task that close() cancels.
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
(sends; a 2xx ends an INVITE server transaction in the Accepted state, where
``last_response`` is None: a 2xx is retransmitted by the TU, never by the
transaction). ``on_ack_timeout`` (callable set by the TU: Timer H fired without
ACK), ``cancelled`` (a CANCEL matched it before the final response: answer it 487; a
CANCEL after the final response has no effect, RFC 3261 9.2).
``FinishedTransaction``: what the layer keeps of a finished transaction (``key``,
``state``, ``until``, ``resend``, ``to``).
``InviteOkRetransmitter(layer, response, source, *, reliable, on_timeout=None)``:
retransmits a 2xx to INVITE at T1 doubling to T2 until ``ack_received()`` or 64*T1
(then ``on_timeout()``); ``stop()``.
``ack_for_non_2xx(invite, response) -> SipRequest`` (RFC 3261 17.1.1.3);
``cancel_request(invite) -> SipRequest`` (RFC 3261 9.1; send it with
``send_request`` to the INVITE's target once a provisional response has arrived).
``server_key(request, *, method=None) -> str``: the server transaction key (17.2.3).
``State`` values: calling, trying, proceeding, completed, confirmed, accepted,
terminated. ``MAX_SERVER_TRANSACTIONS``, ``MAX_CLIENT_TRANSACTIONS`` (finished ones
count until they end).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import enum
import logging
import time
from typing import TYPE_CHECKING, Final
import weakref

from .message import (
    BRANCH_MAGIC,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    make_response,
)
from .transport import Source, Target, TransportError, response_target

if TYPE_CHECKING:
    from .transport import SipTransportLayer

_LOGGER = logging.getLogger(__name__)

MAX_SERVER_TRANSACTIONS: Final = 4096
MAX_CLIENT_TRANSACTIONS: Final = 4096
# asyncio runs a timer once the clock is within this of its time; so does the sweep.
_CLOCK_RESOLUTION: Final = time.get_clock_info("monotonic").resolution

type ClientKey = tuple[str, str]


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


class FinishedTransaction:
    """A transaction past its final response, kept only to absorb retransmissions.

    ``state``: accepted (INVITE, 2xx: a server passes an ACK to the TU, a client
    passes a retransmitted 2xx to ``on_response``), completed (a server sends
    ``resend`` again for a retransmitted request; an INVITE client sends its ACK,
    ``resend``, again for a retransmitted non-2xx final) or confirmed (INVITE
    server: absorbs). ``to`` is where ``resend`` goes (None: nothing is resent, as
    on reliable transports, where these states last no time). ``until``: the loop
    time at which it ends. ``transaction``: a weak reference to an INVITE server
    transaction, so that a CANCEL still finds it while its TU holds it (9.2).
    """

    __slots__ = ("key", "on_response", "resend", "state", "to", "transaction", "until")

    def __init__(
        self,
        key: str | ClientKey,
        state: State,
        *,
        resend: bytes | None = None,
        to: Target | None = None,
        on_response: Callable[[SipResponse], None] | None = None,
        transaction: weakref.ref[ServerInviteTransaction] | None = None,
    ) -> None:
        """Keep what the state needs; the layer sets ``until``."""
        self.key = key
        self.state = state
        self.resend = resend if to is not None else None
        self.to = to
        self.on_response = on_response
        self.transaction = transaction
        self.until = 0.0

    def __repr__(self) -> str:
        """Return a short description."""
        return f"<FinishedTransaction {self.state} until {self.until:.3f}>"


class _Transaction:
    """Timers and state shared by every transaction."""

    def __init__(self, layer: TransactionLayer, reliable: bool) -> None:
        self._layer = layer
        self.reliable = reliable
        self._state = State.TRYING
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._finished: FinishedTransaction | None = None

    @property
    def state(self) -> State:
        """Return the state; a finished transaction ends when its record does."""
        finished = self._finished
        if (
            finished is not None
            and self._state is not State.TERMINATED
            and not self._layer.keeps(finished)
        ):
            return State.TERMINATED
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        self._state = state

    def _start_timer(
        self, name: str, delay: float, callback: Callable[[], None]
    ) -> None:
        self._cancel_timer(name)
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

    def _finish(self, finished: FinishedTransaction, delay: float) -> None:
        """Hand over to ``finished`` for ``delay`` seconds; no timer is left here."""
        self._cancel_timers()
        self._finished = finished
        self._layer.linger(self, finished, delay)

    def _terminate(self) -> None:
        self._state = State.TERMINATED
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
        self.key: ClientKey = (branch, request.cseq.method)
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
        _deliver(self._on_response, response)

    def close(self) -> None:
        """End the transaction now (a pending one gets a local 503)."""
        if self.state != State.TERMINATED and not self._final.done():
            self.error = TransportError("closed")
            self._finish_locally(503, "Transaction Closed")
        else:
            self._terminate()

    def receive(self, response: SipResponse) -> None:
        """Handle a response that matched this transaction (before its final one)."""
        status = response.status
        if self.state not in (State.CALLING, State.TRYING, State.PROCEEDING):
            return  # finished: the layer's record absorbs what comes now
        if status < 200:
            if self.is_invite:
                self._cancel_timer("retransmit")  # Timer A stops on 1xx
                if not self._explicit_timeout:
                    # Timer B only guards Calling: a ringing INVITE waits for its
                    # final response (the TU CANCELs when it wants).
                    self._cancel_timer("timeout")
            elif self.state == State.TRYING and not self.reliable:
                self._interval = self._layer.t2
            self.state = State.PROCEEDING
            self._deliver(response)
            return
        self.final_response = response
        if self.is_invite and status < 300:
            # RFC 6026 Timer M: 2xx retransmissions still reach the TU (it ACKs).
            self.state = State.ACCEPTED
            self._finish(
                FinishedTransaction(
                    self.key, State.ACCEPTED, on_response=self._on_response
                ),
                64 * self._layer.t1,
            )
        elif self.is_invite:
            self.state = State.COMPLETED
            ack = ack_for_non_2xx(self.request, response).to_bytes()
            self._send(ack)
            # Timer D: a retransmitted final is ACKed again.
            self._finish(
                FinishedTransaction(
                    self.key, State.COMPLETED, resend=ack, to=self.target
                ),
                0.0 if self.reliable else self._layer.timer_d,
            )
        else:
            self.state = State.COMPLETED  # Timer K: retransmissions are absorbed
            self._finish(
                FinishedTransaction(self.key, State.COMPLETED),
                0.0 if self.reliable else self._layer.t4,
            )
        self._resolve(response)
        self._deliver(response)


def _deliver(
    on_response: Callable[[SipResponse], None] | None, response: SipResponse
) -> None:
    """Give ``response`` to a client transaction's TU (its errors are logged)."""
    if on_response is None:
        return
    try:
        on_response(response)
    except Exception:
        _LOGGER.exception("SIP response handler failed")


# --- server transactions ------------------------------------------------------------


class ServerTransaction(_Transaction):
    """What both server transactions share."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
        key: str,
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

    def _resend_to(self, response: SipResponse) -> Target | None:
        """Return where a retransmission of ``response`` goes (None: no resending).

        Only over UDP: on a reliable transport Timers J and I are zero (17.2).
        """
        if self.reliable:
            return None
        try:
            return response_target(response.top_via, self.source)
        except SipParseError:
            return None  # no usable Via: the first send failed the same way

    def respond(self, response: SipResponse) -> None:
        """Send a response from the TU."""
        raise NotImplementedError

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
        key: str,
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
            # 8.5; the TU retransmits the 2xx, 13.3.1.4) and passes the ACK on.
            self.last_response = None
            self.state = State.ACCEPTED
            self._finish(
                FinishedTransaction(
                    self.key, State.ACCEPTED, transaction=weakref.ref(self)
                ),
                64 * self._layer.t1,  # Timer L
            )
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
                self.state = State.CONFIRMED  # Timer I: absorb ACKs and INVITEs
                self._finish(
                    FinishedTransaction(
                        self.key, State.CONFIRMED, transaction=weakref.ref(self)
                    ),
                    0.0 if self.reliable else self._layer.t4,
                )
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
        key: str,
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
        self.state = State.COMPLETED  # Timer J: a retransmission gets the final again
        to = self._resend_to(response)
        self._finish(
            FinishedTransaction(
                self.key,
                State.COMPLETED,
                resend=response.to_bytes() if to is not None else None,
                to=to,
            ),
            0.0 if self.reliable else 64 * self._layer.t1,
        )

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
        self._clients: dict[ClientKey, ClientTransaction | FinishedTransaction] = {}
        self._servers: dict[str, ServerTransaction | FinishedTransaction] = {}
        # Finished transactions by how long they linger: each queue ends in order.
        self._ending: dict[float, deque[FinishedTransaction]] = {}
        self._sweep: asyncio.TimerHandle | None = None
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
        """Remove a terminated transaction (or the record it finished as)."""
        finished = transaction._finished  # noqa: SLF001
        if isinstance(transaction, ClientTransaction):
            client = self._clients.get(transaction.key)
            if client is not None and client in (transaction, finished):
                del self._clients[transaction.key]
        elif isinstance(transaction, ServerTransaction):
            server = self._servers.get(transaction.key)
            if server is not None and server in (transaction, finished):
                del self._servers[transaction.key]

    # --- finished transactions ----------------------------------------------------

    def linger(
        self, transaction: _Transaction, finished: FinishedTransaction, delay: float
    ) -> None:
        """Put ``finished`` in the place of ``transaction`` for ``delay`` seconds."""
        if isinstance(transaction, ServerTransaction):
            if self._servers.get(transaction.key) is not transaction:
                return  # already forgotten (the layer closed): nothing lingers
            self._servers[transaction.key] = finished
        elif isinstance(transaction, ClientTransaction):
            if self._clients.get(transaction.key) is not transaction:
                return
            self._clients[transaction.key] = finished
        else:  # pragma: no cover - there are no other kinds
            return
        loop = asyncio.get_running_loop()
        finished.until = loop.time() + delay
        queue = self._ending.get(delay)
        if queue is None:
            queue = self._ending[delay] = deque()
        queue.append(finished)
        if self._sweep is None or finished.until < self._sweep.when():
            self._schedule_sweep(finished.until)

    def keeps(self, finished: FinishedTransaction) -> bool:
        """Tell whether ``finished`` still lingers (its timer has not ended it)."""
        key = finished.key
        if isinstance(key, str):
            return self._servers.get(key) is finished
        return self._clients.get(key) is finished

    def _schedule_sweep(self, when: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep = asyncio.get_running_loop().call_at(when, self._end_finished)

    def _end_finished(self) -> None:
        """End the finished transactions whose time is up; wait for the next one."""
        self._sweep = None
        now = asyncio.get_running_loop().time() + _CLOCK_RESOLUTION
        following: float | None = None
        for delay, queue in list(self._ending.items()):
            while queue and queue[0].until < now:
                self._drop(queue.popleft())
            if not queue:
                del self._ending[delay]
            elif following is None or queue[0].until < following:
                following = queue[0].until
        if following is not None:
            self._schedule_sweep(following)

    def _drop(self, finished: FinishedTransaction) -> None:
        key = finished.key
        if isinstance(key, str):
            if self._servers.get(key) is finished:
                del self._servers[key]
        elif self._clients.get(key) is finished:
            del self._clients[key]

    def _resend(self, finished: FinishedTransaction) -> None:
        if finished.resend is not None and finished.to is not None:
            self.spawn(self._resend_async(finished, finished.resend, finished.to))

    async def _resend_async(
        self, finished: FinishedTransaction, data: bytes, to: Target
    ) -> None:
        try:
            await self.sender.send(data, to)
        except TransportError as err:
            _LOGGER.debug("%r: cannot send again: %s", finished, err.reason)
            if isinstance(finished.key, str):
                self._drop(finished)  # a server transaction ends on a send error

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
        entry = self._clients.get((branch, response.cseq.method))
        if isinstance(entry, FinishedTransaction):
            status = response.status
            if entry.state is State.ACCEPTED:
                if 200 <= status < 300:
                    _deliver(entry.on_response, response)  # the UA ACKs it again
            elif status >= 300:
                self._resend(entry)  # an INVITE's non-2xx again: ACK it again
        elif entry is not None:
            entry.receive(response)
        elif self.on_stray_response is not None:
            self.on_stray_response(response, source)

    def _receive_request(self, request: SipRequest, source: Source) -> None:
        key = server_key(request)
        entry = self._servers.get(key)
        if isinstance(entry, FinishedTransaction):
            if request.method != "ACK":
                self._resend(entry)  # a retransmission: the final again, if any
            elif entry.state is State.ACCEPTED:
                # The ACK of our 2xx from a peer that reused the INVITE's branch
                # (or an RFC 2543 peer): it belongs to the dialog (RFC 6026 8.7).
                self.on_request(request, source, None)
            return
        if entry is not None:
            entry.receive_request(request)
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
        """Return the INVITE server transaction a CANCEL cancels (9.2), or None.

        A finished one is found while its record lingers and its TU holds it.
        """
        entry = self._servers.get(server_key(cancel, method="INVITE"))
        if isinstance(entry, FinishedTransaction):
            return entry.transaction() if entry.transaction is not None else None
        if isinstance(entry, ServerInviteTransaction):
            return entry
        return None

    def close(self) -> None:
        """End every transaction and timer."""
        self._closed = True
        for client in list(self._clients.values()):
            if isinstance(client, ClientTransaction):
                client.close()
        for server in list(self._servers.values()):
            if isinstance(server, ServerTransaction):
                server.close()
        for retransmitter in list(self._retransmitters):
            retransmitter.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._ending.clear()
        self._clients.clear()
        self._servers.clear()


def server_key(request: SipRequest, *, method: str | None = None) -> str:
    """Return the server transaction key of a request (RFC 3261 17.2.3).

    One string (a lingering transaction keeps it for up to 32 s): the fields joined
    by NUL, which no header value holds.
    """
    via = request.top_via
    name = method or ("INVITE" if request.method == "ACK" else request.method)
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    branch = via.branch or ""
    if branch.startswith(BRANCH_MAGIC):
        return f"{branch}\0{sent_by}\0{name}"
    # RFC 2543 peers: match on what identifies the request instead.
    return "\0".join(
        (
            "2543",
            request.call_id,
            request.from_addr.tag or "",
            str(request.cseq.seq),
            sent_by,
            branch,
            name,
        )
    )
