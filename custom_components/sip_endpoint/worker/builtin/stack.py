"""What accounts and calls share: events, secrets, the source filter, transports.

`BuiltinStack` lives on the worker's asyncio loop. It owns the SIP transport and
transaction layers (`sip/transport.py`, `sip/transaction.py`), the tables of accounts
and calls, and the routing of every request that does not belong to a client
transaction (`route_request`):

1. the source filter, for every method (OPTIONS too): 403, and the refusal counted in
   `refusals` (`core/refusals.py`: the first of a burst logged and sent as a `refused`
   event, then one summary per source and minute); TCP/TLS connections from a source
   not allowed are closed at accept and counted there too;
2. ``Require`` with an extension we do not support: 420 with ``Unsupported``;
3. OPTIONS: 200 with Allow and Accept;
4. in a dialog (a To tag), and CANCEL: to the call that owns it, else 481;
5. INVITE: to the account whose extension is the Request-URI's user (404 when none),
   486 past ``max_calls``, then `inbound.accept_incoming_call`;
6. anything else: 405 with Allow.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
import logging
import ssl
import time
from typing import Final

from ...protocol.payloads import (
    AccountParams,
    EventName,
    LogLine,
    MakeCallParams,
    Payload,
    RegistrationExchange,
    StartParams,
    Transport,
)
from ...protocol.status import RegistrationStatus
from ..core.channel import ProtocolWriter
from ..core.dispatch import MIN_SECRET_LENGTH
from ..core.redact import redact
from ..core.refusals import RefusalLog
from .account import BuiltinAccount
from .inbound import accept_incoming_call
from .interfaces import Call
from .limits import MAX_CALLS
from .logs import apply_level
from .outbound import start_outbound_call
from .registration.host import TIMEOUT_CODE, TRANSPORT_ERROR_CODE, NoAnswer, Outcome
from .registration.target import Destination, local_address
from .sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    make_response,
    new_branch,
    new_tag,
)
from .sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from .sip.transport import (
    Connection,
    SipTransportLayer,
    Source,
    Target,
    TlsVerificationError,
    TransportError,
    client_tls_context,
    via_for,
)

_LOGGER = logging.getLogger(__name__)

ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
ACCEPT: Final = "application/sdp"
SUPPORTED: Final = frozenset({"timer"})  # RFC 4028 session timers are tolerated
MAX_EXCHANGES: Final = 50
TRACE_LEVEL: Final = 5  # log_level at which whole SIP messages are logged
MAX_TRACE_BYTES: Final = 4096
_ANY_ADDRESSES: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104
_WAIT_STEP: Final = 0.02


class BuiltinStack:
    """The state accounts and calls share, owned by the asyncio loop's thread."""

    def __init__(self, writer: ProtocolWriter) -> None:
        """Start empty; `start` binds the transports."""
        self.writer = writer
        self.accounts: dict[str, BuiltinAccount] = {}
        self.calls: dict[str, Call] = {}
        self.exchanges: deque[RegistrationExchange] = deque(maxlen=MAX_EXCHANGES)
        self.secrets: set[str] = set()
        self.restrict_sources = True
        self.allowed_sources: frozenset[str] = frozenset()
        self.max_calls = MAX_CALLS
        self.log_level = 1
        self.bind_host = ""
        self.sip_port = 0
        self.tls_port: int | None = None
        self.tls_verify = True
        self.tls_ca_file: str | None = None
        self.transport: SipTransportLayer | None = None
        self.transactions = TransactionLayer(
            self._on_request, on_stray_response=self._on_stray_response
        )
        self.started = False
        self._tls_context: ssl.SSLContext | None = None
        self.refusals = RefusalLog(
            lambda refused: self.emit(EventName.REFUSED, refused), _call_later
        )

    # --- events and secrets ---------------------------------------------------------

    def emit(self, name: EventName, payload: Payload) -> None:
        """Send an event to the Home Assistant side."""
        self.writer.event(name, payload)

    def log(self, level: int, message: str) -> None:
        """Send a `log` event (redacted) when ``level`` is within the asked level."""
        if level <= self.log_level:
            self.emit(EventName.LOG, LogLine(level=level, message=self.scrub(message)))

    def add_secret(self, secret: str) -> None:
        """Remember a password so that it is scrubbed from every text that leaves."""
        if len(secret) >= MIN_SECRET_LENGTH:
            # Shorter ones would blank out ordinary text; the header rules still apply.
            self.secrets.add(secret)

    def scrub(self, text: str) -> str:
        """Return ``text`` without any credential."""
        return redact(text, self.secrets)

    # --- the source filter ------------------------------------------------------------

    def set_sources(self, restrict: bool, sources: list[str]) -> None:
        """Replace the source filter."""
        self.restrict_sources = restrict
        self.allowed_sources = frozenset(s.strip() for s in sources)

    def source_allowed(self, host: str) -> bool:
        """Return whether SIP requests from ``host`` are accepted."""
        return not self.restrict_sources or host in self.allowed_sources

    # --- transports -------------------------------------------------------------------

    async def start(self, params: StartParams) -> None:
        """Bind UDP and TCP on the first free port of the range; raise OSError."""
        self.max_calls = max(1, min(params.max_calls or MAX_CALLS, MAX_CALLS))
        self.log_level = max(0, min(params.log_level, 6))
        apply_level(self.log_level)
        self.tls_verify = params.tls_verify
        self.tls_ca_file = params.tls_ca_file
        host = params.bind_host
        self.bind_host = "" if host in _ANY_ADDRESSES else host
        transport = _Transports(
            self._on_message,
            self._on_connection_closed,
            self.trace,
            bind_host=host or "0.0.0.0",  # noqa: S104
            port_min=params.port_min,
            port_max=params.port_max,
        )
        transport.source_filter = self.source_allowed
        transport.on_refused_connection = self.refusals.refuse
        try:
            await transport.start()
        except TransportError as err:
            raise OSError(err.reason) from err
        self.transport = transport
        self.transactions.transport = transport
        self.sip_port = transport.port
        self.tls_port = transport.tls_port
        self.started = True
        _LOGGER.info(
            "SIP on %s port %d (UDP, TCP); at most %d calls",
            host or "any address",
            self.sip_port,
            self.max_calls,
        )
        if not self.tls_verify:
            _LOGGER.warning(
                "TLS certificate verification is off: any server certificate is"
                " accepted"
            )

    def client_tls_context(self) -> ssl.SSLContext:
        """Return the TLS context for connections we open (verifying by default)."""
        if self._tls_context is None:
            self._tls_context = client_tls_context(self.tls_verify, self.tls_ca_file)
        return self._tls_context

    async def close(self) -> None:
        """End every transaction and close every socket (teardown)."""
        self.refusals.flush()
        self.transactions.close()
        if self.transport is not None:
            await self.transport.close()
            self.transport = None
        self.started = False

    def contact_port(self, transport: Transport) -> int:
        """Return the local port of ``transport`` (requests leave from it)."""
        if self.transport is None:
            return self.sip_port
        return self.transport.local_port(transport.value)

    def target_for(self, destination: Destination) -> Target:
        """Return the transport target for a resolved next hop (TLS: verified)."""
        tls = destination.transport is Transport.TLS
        return Target(
            destination.transport.value,
            destination.address,
            destination.port,
            server_name=destination.host if tls else None,
            tls_context=self.client_tls_context() if tls else None,
        )

    def via_host(self, destination: Destination) -> str:
        """Return the address we announce toward ``destination`` (Via, Contact)."""
        return self.bind_host or local_address(destination)

    def start_transaction(
        self,
        request: SipRequest,
        destination: Destination,
        *,
        on_response: Callable[[SipResponse], None] | None = None,
        timeout: float | None = None,
    ) -> ClientTransaction:
        """Send ``request`` in a new client transaction, with a fresh top Via.

        Raises `TransportError` when no transaction can be started.
        """
        transport = self.transactions.sender
        via = via_for(
            transport,
            destination.transport.value,
            self.via_host(destination),
            new_branch(),
        )
        request.headers.remove("Via")
        request.headers.add("Via", str(via))
        _LOGGER.debug(
            "%s to %s:%s:%d",
            request.method,
            destination.transport.value,
            destination.address,
            destination.port,
        )
        return self.transactions.send_request(
            request,
            self.target_for(destination),
            on_response=on_response,
            timeout=timeout,
        )

    async def send_request(
        self, request: SipRequest, destination: Destination, limit: float | None
    ) -> Outcome:
        """Send ``request`` in a client transaction; return its final answer.

        ``limit`` (seconds) ends it early with ``NoAnswer(408)``; None leaves it to
        Timer B/F. Never raises for network trouble (`registration.host.AccountHost`).
        """
        try:
            transaction = self.start_transaction(request, destination, timeout=limit)
        except TransportError as err:
            return NoAnswer(TRANSPORT_ERROR_CODE, err.reason)
        response = await transaction.final()
        if response.from_network:
            return response
        error = transaction.error
        if isinstance(error, TlsVerificationError):
            return NoAnswer(
                TRANSPORT_ERROR_CODE,
                error.reason,
                RegistrationStatus.TLS_CERTIFICATE_INVALID,
            )
        if error is not None:
            return NoAnswer(TRANSPORT_ERROR_CODE, error.reason)
        return NoAnswer(TIMEOUT_CODE, response.reason or "Request Timeout")

    def send_keepalive(self, destination: Destination) -> None:
        """Send a CRLF CRLF keep-alive to ``destination`` (RFC 5626 3.5.1)."""
        transport = self.transport
        if transport is None:
            return
        self.log(
            TRACE_LEVEL,
            f"Sending keep-alive to {destination.transport.value}:"
            f"{destination.address}:{destination.port}",
        )
        self.transactions.spawn(
            _quietly(transport.send_keepalive(self.target_for(destination)))
        )

    # --- what arrives ---------------------------------------------------------------

    def trace(
        self, direction: str, message: SipRequest | SipResponse | bytes, peer: str
    ) -> None:
        """Log a whole SIP message at level 5 (``log_level`` >= 5), redacted."""
        if self.log_level < TRACE_LEVEL:
            return
        data = message if isinstance(message, bytes) else message.to_bytes()
        if not data.strip():
            return  # a keep-alive (logged where it is sent)
        text = data[:MAX_TRACE_BYTES].decode("utf-8", "replace")
        self.log(TRACE_LEVEL, f"{direction} {peer}:\n{text}")

    def _on_message(self, message: SipRequest | SipResponse, source: Source) -> None:
        self.trace(
            "Received from", message, f"{source.transport}:{source.host}:{source.port}"
        )
        self.transactions.receive(message, source)

    def _on_stray_response(self, response: SipResponse, source: Source) -> None:
        _LOGGER.debug(
            "A %s from %s matched no transaction", response.status, source.host
        )

    def _on_connection_closed(self, connection: Connection) -> None:
        _LOGGER.debug("%r closed", connection)
        for account in list(self.accounts.values()):
            account.connection_lost(connection.key)

    # --- accounts and calls -------------------------------------------------------------

    def new_account(self, params: AccountParams) -> BuiltinAccount:
        """Create (not register) the account for an extension."""
        return BuiltinAccount(self, params)

    def start_outbound_call(
        self, account: BuiltinAccount, params: MakeCallParams
    ) -> Call:
        """Start an outbound call (`make_call`); it is in `calls` on return."""
        return start_outbound_call(self, account, params)

    def forget_call(self, call: Call) -> None:
        """Drop a call that has ended (its `call_ended` is sent)."""
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]

    def account_for_user(self, user: str | None) -> BuiltinAccount | None:
        """Return the account whose extension is ``user``."""
        if user is None:
            return None
        for account in self.accounts.values():
            if account.params.extension == user:
                return account
        return None

    async def wait_until(self, done: Callable[[], bool], wait: float) -> None:
        """Let the loop run until ``done()`` or ``wait`` seconds have passed."""
        deadline = time.monotonic() + wait
        while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
            await asyncio.sleep(_WAIT_STEP)

    # --- routing ------------------------------------------------------------------------

    def _on_request(
        self,
        request: SipRequest,
        source: Source,
        transaction: ServerTransaction | None,
    ) -> None:
        """Take a new request from the transaction layer (never raises)."""
        try:
            self.route_request(request, source, transaction)
        except SipParseError as err:
            # A header the parser let through but an accessor refused (From, To...).
            _LOGGER.debug("Refusing a malformed request: %s", err.reason)
            _respond(transaction, 400)
        except Exception:
            _LOGGER.exception("Handling a %s failed", request.method)
            _respond(transaction, 500)

    def route_request(
        self,
        request: SipRequest,
        source: Source,
        transaction: ServerTransaction | None,
    ) -> None:
        """Answer, or hand on, one request that is not part of a client transaction.

        ``transaction`` is None for an ACK that matched none (the ACK of a 2xx).
        """
        method = request.method.upper()
        host = source.host
        _LOGGER.debug("%s from %s:%s:%d", method, source.transport, host, source.port)
        if not self.source_allowed(host):
            if transaction is not None:  # an ACK gets no answer, and no event
                self.refusals.refuse(host, method)
                _respond(transaction, 403)
            return
        if transaction is None or method == "ACK":
            owner = self._owner(request)
            if owner is not None:
                owner.handle_request(request, source, transaction)
            return  # an ACK that belongs to no call: nothing to answer
        if method != "CANCEL" and (unsupported := _unsupported(request)):
            _respond(transaction, 420, headers=[("Unsupported", unsupported)])
            return
        if method == "OPTIONS":
            _respond(transaction, 200, headers=[("Allow", ALLOW), ("Accept", ACCEPT)])
            return
        if method == "CANCEL" or request.to_addr.tag is not None:
            owner = self._owner(request)
            if owner is not None:
                owner.handle_request(request, source, transaction)
            else:
                _respond(transaction, 481)
            return
        if method == "INVITE":
            self._route_invite(request, source, transaction)
            return
        _respond(transaction, 405, headers=[("Allow", ALLOW)])

    def _owner(self, request: SipRequest) -> Call | None:
        return next((call for call in self.calls.values() if call.owns(request)), None)

    def _route_invite(
        self, request: SipRequest, source: Source, transaction: ServerTransaction
    ) -> None:
        account = self.account_for_user(request.uri.user)
        if account is None:
            self.refusals.not_found(source.host, str(request.uri))
            _respond(transaction, 404)
            return
        if len(self.calls) >= self.max_calls:
            _respond(transaction, 486)
            return
        accept_incoming_call(self, account, transaction)


class _Transports(SipTransportLayer):
    """The transport layer, reporting closed TCP/TLS connections and what it sends."""

    def __init__(
        self,
        on_message: Callable[[SipRequest | SipResponse, Source], None],
        on_closed: Callable[[Connection], None],
        on_trace: Callable[[str, SipRequest | SipResponse | bytes, str], None],
        *,
        bind_host: str,
        port_min: int,
        port_max: int,
    ) -> None:
        """Bind as `SipTransportLayer` does; report closed connections."""
        super().__init__(
            on_message, bind_host=bind_host, port_min=port_min, port_max=port_max
        )
        self._on_closed = on_closed
        self._on_trace = on_trace

    def connection_closed(self, connection: Connection) -> None:
        """Forget the connection, then tell the stack."""
        super().connection_closed(connection)
        try:
            self._on_closed(connection)
        except Exception:
            _LOGGER.exception("Handling a closed connection failed")

    async def send(
        self, message: SipRequest | SipResponse | bytes, target: Target
    ) -> Connection | None:
        """Trace, then send (every request, ACK and response sent without a link)."""
        self._on_trace(
            "Sending to", message, f"{target.transport}:{target.host}:{target.port}"
        )
        return await super().send(message, target)

    async def send_response(
        self, response: SipResponse, source: Source | None = None
    ) -> None:
        """Send a response; trace it here when it goes back over the connection."""
        connection = source.connection if source is not None else None
        if source is not None and connection is not None and not connection.closed:
            self._on_trace(
                "Sending to",
                response,
                f"{source.transport}:{source.host}:{source.port}",
            )
        await super().send_response(response, source)


def _respond(
    transaction: ServerTransaction | None,
    status: int,
    *,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    """Answer a request the stack refuses or answers itself (never an ACK)."""
    if transaction is None or transaction.request.method.upper() == "ACK":
        return
    transaction.respond(
        make_response(
            transaction.request, status, to_tag=new_tag(), headers=headers or []
        )
    )


def _unsupported(request: SipRequest) -> str:
    """Return the Require options we do not support, comma-separated, or ""."""
    required = [
        option.strip()
        for line in request.headers.get_lines("require")
        for option in line.split(",")
        if option.strip()
    ]
    return ", ".join(o for o in required if o.lower() not in SUPPORTED)


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    """Run ``callback`` on the running loop after ``delay`` seconds."""
    return asyncio.get_running_loop().call_later(delay, callback)


async def _quietly(sending: Awaitable[None]) -> None:
    """Await a send whose failure only matters to the next request (keep-alives)."""
    try:
        await sending
    except TransportError as err:
        _LOGGER.debug("Keep-alive not sent: %s", err.reason)
