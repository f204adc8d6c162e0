"""The built-in engine's real stack on loopback, for account tests without a process.

``LoopbackHost`` is ``BuiltinStack`` (real transports, transactions, source filter,
closed-connection reports) bound to 127.0.0.1 on a free port. It only listens in:
it keeps the `registration` states the accounts emit (instead of writing them to a
protocol pipe), the requests they send and the keep-alives, for the tests to read.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    Payload,
    RegistrationState,
    StartParams,
)
from custom_components.sip_endpoint.worker.builtin.stack import BuiltinStack
from custom_components.sip_endpoint.worker.core.channel import ProtocolWriter

if TYPE_CHECKING:
    from custom_components.sip_endpoint.protocol.status import RegistrationStatus
    from custom_components.sip_endpoint.worker.builtin.registration.host import (
        Outcome,
    )
    from custom_components.sip_endpoint.worker.builtin.registration.target import (
        Destination,
    )
    from custom_components.sip_endpoint.worker.builtin.sip.message import SipRequest

HOST = "127.0.0.1"


class LoopbackHost(BuiltinStack):
    """A real built-in stack on 127.0.0.1 that records what its accounts do."""

    def __init__(self, *, tls_verify: bool = True, ca_file: str | None = None) -> None:
        """Prepare; ``start`` binds the sockets."""
        super().__init__(ProtocolWriter(io.BytesIO()))  # never started: see emit
        self._params = StartParams(
            bind_host=HOST,
            port_min=0,
            port_max=0,
            restrict_sources=True,
            allowed_sources=[HOST],
            tls_verify=tls_verify,
            tls_ca_file=ca_file,
        )
        self.states: list[RegistrationState] = []
        self.sent: list[SipRequest] = []
        self.keepalives = 0
        self._changed = asyncio.Condition()
        self._notifying: set[asyncio.Task[None]] = set()

    async def start(self) -> None:  # type: ignore[override]
        """Bind UDP and TCP on a free port of 127.0.0.1."""
        await super().start(self._params)

    async def close(self) -> None:
        """Stop the accounts (no unregistering) and close the sockets."""
        for account in self.accounts.values():
            account.close()
        await super().close()

    # --- listening in -----------------------------------------------------------

    def emit(self, name: EventName, payload: Payload) -> None:
        """Keep registration states and wake waiters (nothing goes to a pipe)."""
        if name is EventName.REGISTRATION:
            assert isinstance(payload, RegistrationState)
            self.states.append(payload)
            self._notify()

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        task = asyncio.get_running_loop().create_task(notify())
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def send_request(
        self, request: SipRequest, destination: Destination, limit: float | None
    ) -> Outcome:
        """Record the request, then send it as the stack does."""
        self.sent.append(request)
        self._notify()
        return await super().send_request(request, destination, limit)

    def send_keepalive(self, destination: Destination) -> None:
        """Count the double CRLF, then send it as the stack does."""
        self.keepalives += 1
        super().send_keepalive(destination)

    # --- for the tests --------------------------------------------------------

    def statuses(self, account_id: str) -> list[RegistrationStatus]:
        """Return every status reported for ``account_id``, in order."""
        return [state.status for state in self.states if state.account_id == account_id]

    async def wait_status(
        self,
        account_id: str,
        status: RegistrationStatus,
        *,
        after: int = 0,
        within: float = 10.0,
    ) -> RegistrationState:
        """Wait for the first state ``status`` at index ``after`` or later."""

        def found() -> RegistrationState | None:
            for state in self.states[after:]:
                if state.account_id == account_id and state.status is status:
                    return state
            return None

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            seen = [(s.status.value, s.code, s.reason) for s in self.states[after:]]
            raise AssertionError(f"no {status} for {account_id}; seen {seen}") from None
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
