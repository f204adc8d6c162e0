"""An ``AccountHost`` on loopback for account tests: real sockets, no protocol process.

It binds the built-in engine's real transports (``sip/transport.py``) on 127.0.0.1
and runs a small client transaction per request (RFC 3261 17.1: UDP retransmission
at T1 doubling to T2, Timer F at 64*T1, or the caller's limit). Events and REGISTER
exchanges are kept for the tests to read.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    Payload,
    RegistrationExchange,
    RegistrationState,
    Transport,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.builtin.registration.host import (
    NoAnswer,
    Outcome,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    new_branch,
    new_tag,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    Connection,
    SipTransportLayer,
    Source,
    Target,
    TlsVerificationError,
    TransportError,
    client_tls_context,
    via_for,
)

if TYPE_CHECKING:
    from custom_components.sip_endpoint.worker.builtin.registration.account import (
        BuiltinAccount,
    )
    from custom_components.sip_endpoint.worker.builtin.registration.target import (
        Destination,
    )

T1 = 0.5
T2 = 4.0
TIMER_F = 64 * T1
HOST = "127.0.0.1"


class _Layer(SipTransportLayer):
    """The real transport layer, telling the host when a connection closes."""

    def __init__(self, host: LoopbackHost, **kwargs: Any) -> None:
        super().__init__(host.on_message, **kwargs)
        self._host = host

    def connection_closed(self, connection: Connection) -> None:
        super().connection_closed(connection)
        self._host.connection_closed()


class LoopbackHost:
    """The stack as an account sees it, on 127.0.0.1."""

    def __init__(self, *, tls_verify: bool = True, ca_file: str | None = None) -> None:
        """Prepare; ``start`` binds the sockets."""
        self.bind_host = HOST
        self.secrets: set[str] = set()
        self.exchanges: list[RegistrationExchange] = []
        self.states: list[RegistrationState] = []
        self.sent: list[SipRequest] = []
        self.keepalives = 0
        self.accounts: list[BuiltinAccount] = []
        self._changed = asyncio.Condition()
        self._pending: dict[str, asyncio.Future[SipResponse]] = {}
        self._tls = client_tls_context(tls_verify, ca_file)
        self.layer = _Layer(self, bind_host=HOST, port_min=0, port_max=0)

    async def start(self) -> None:
        """Bind UDP and TCP."""
        await self.layer.start()

    async def close(self) -> None:
        """Stop the accounts and close the sockets."""
        for account in self.accounts:
            account.close()
        await self.layer.close()

    # --- AccountHost ----------------------------------------------------------

    def emit(self, event: EventName, payload: Payload) -> None:
        """Keep registration states and wake waiters."""
        if event is EventName.REGISTRATION:
            assert isinstance(payload, RegistrationState)
            self.states.append(payload)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def contact_port(self, transport: Transport) -> int:
        """Return the local SIP port (UDP and TCP share it)."""
        return self.layer.port

    def send_keepalive(self, destination: Destination) -> None:
        """Count and send a double CRLF."""
        self.keepalives += 1
        asyncio.get_running_loop().create_task(
            self.layer.send_keepalive(self._target(destination))
        )

    def _target(self, destination: Destination) -> Target:
        return Target(
            destination.transport.value,
            destination.address,
            destination.port,
            server_name=destination.host,
            tls_context=self._tls if destination.transport is Transport.TLS else None,
        )

    async def send_request(
        self, request: SipRequest, destination: Destination, limit: float | None
    ) -> Outcome:
        """Run a client transaction; a local failure is a ``NoAnswer``."""
        branch = new_branch()
        via = via_for(self.layer, destination.transport.value, HOST, branch)
        headers = Headers([("Via", str(via)), *request.headers.items()])
        request.headers = headers
        self.sent.append(request)
        asyncio.get_running_loop().create_task(self._notify())
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        target = self._target(destination)
        try:
            async with asyncio.timeout(TIMER_F if limit is None else limit):
                await self.layer.send(request, target)
                interval = T1
                while destination.transport is Transport.UDP:
                    done, _ = await asyncio.wait({future}, timeout=interval)
                    if done:
                        break
                    await self.layer.send(request, target)
                    interval = min(interval * 2, T2)
                return await future
        except TlsVerificationError as err:
            return NoAnswer(503, err.reason, RegistrationStatus.TLS_CERTIFICATE_INVALID)
        except TransportError as err:
            return NoAnswer(503, err.reason)
        except TimeoutError:
            return NoAnswer(408, "Request Timeout")
        finally:
            self._pending.pop(branch, None)

    def on_message(self, message: SipRequest | SipResponse, source: Source) -> None:
        """Hand final responses to their transaction; answer OPTIONS with 200."""
        if isinstance(message, SipRequest):
            if message.method == "OPTIONS":
                response = make_response(message, 200, to_tag=new_tag())
                asyncio.get_running_loop().create_task(
                    self.layer.send_response(response, source)
                )
            return
        if message.status < 200:
            return
        branch = message.top_via.branch or ""
        future = self._pending.get(branch)
        if future is not None and not future.done():
            future.set_result(message)

    def connection_closed(self) -> None:
        """Tell every account that a TCP/TLS connection closed."""
        for account in self.accounts:
            account.connection_lost()

    # --- for the tests --------------------------------------------------------

    def statuses(self, ext_id: str) -> list[RegistrationStatus]:
        """Return every status reported for ``ext_id``, in order."""
        return [state.status for state in self.states if state.ext_id == ext_id]

    async def wait_status(
        self,
        ext_id: str,
        status: RegistrationStatus,
        *,
        after: int = 0,
        within: float = 10.0,
    ) -> RegistrationState:
        """Wait for the first state ``status`` at index ``after`` or later."""

        def found() -> RegistrationState | None:
            for state in self.states[after:]:
                if state.ext_id == ext_id and state.status is status:
                    return state
            return None

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            seen = [(s.status.value, s.code, s.reason) for s in self.states[after:]]
            raise AssertionError(f"no {status} for {ext_id}; seen {seen}") from None
        state = found()
        assert state is not None
        return state

    def count_sent(self, method: str) -> int:
        """Return how many requests of ``method`` were sent (retransmissions aside).

        ``QUERY`` counts REGISTERs without Contact; ``PROBE`` those and OPTIONS.
        """
        return sum(1 for request in self.sent if _kind(request, method))

    async def wait_sent(self, method: str, count: int, *, within: float = 10.0) -> None:
        """Wait until ``count`` requests of ``method`` were sent."""
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: self.count_sent(method) >= count)
        except TimeoutError:
            sent = self.count_sent(method)
            raise AssertionError(f"{sent} {method} sent, not {count}") from None


def _kind(request: SipRequest, method: str) -> bool:
    query = request.method == "REGISTER" and "Contact" not in request.headers
    if method == "QUERY":
        return query
    if method == "PROBE":
        return query or request.method == "OPTIONS"
    return request.method == method
