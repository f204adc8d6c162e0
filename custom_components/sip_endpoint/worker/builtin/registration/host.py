"""What an account needs from the engine around it, and how a request can fail.

``AccountHost`` is the account's view of the stack: where it listens, how it sends a
request and hears the answer, where events and diagnostics go. ``NoAnswer`` is a
request's end without an answer from the network (Timer F, a refused or closed
connection, a failed TLS handshake), with the code pjsua2 would report for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ....protocol.status import RegistrationStatus

if TYPE_CHECKING:
    from collections.abc import MutableSequence, MutableSet

    from ....protocol.payloads import (
        EventName,
        Payload,
        RegistrationExchange,
        Transport,
    )
    from ..sip.message import SipRequest, SipResponse
    from .target import Destination

TIMEOUT_CODE = 408  # Timer F or the probe's own timeout
TRANSPORT_ERROR_CODE = 503  # a refused, reset or failed connection; a failed lookup


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """A request that ended without an answer from the network."""

    code: int
    reason: str
    status: RegistrationStatus = RegistrationStatus.NO_REPLY_FROM_SERVER


type Outcome = SipResponse | NoAnswer


class AccountHost(Protocol):
    """The stack as one account sees it."""

    @property
    def bind_host(self) -> str:
        """The address SIP and RTP are bound to ("" or 0.0.0.0 for any)."""
        ...

    @property
    def secrets(self) -> MutableSet[str]:
        """Strings scrubbed from every log line (passwords go here)."""
        ...

    @property
    def exchanges(self) -> MutableSequence[RegistrationExchange]:
        """The recent REGISTER answers, for the `status` request."""
        ...

    def emit(self, event: EventName, payload: Payload) -> None:
        """Send an event to Home Assistant."""
        ...

    def contact_port(self, transport: Transport) -> int:
        """Return the local port of ``transport``: requests leave from it, answers reach it."""
        ...

    async def send_request(
        self, request: SipRequest, destination: Destination, limit: float | None
    ) -> Outcome:
        """Send ``request`` in a client transaction; return its final answer.

        ``limit`` (seconds) ends the transaction early with ``NoAnswer(408)``;
        None leaves it to Timer B/F. Never raises for network trouble.
        """
        ...

    def send_keepalive(self, destination: Destination) -> None:
        """Send a double-CRLF keep-alive (RFC 5626 3.5.1) to ``destination``."""
        ...
