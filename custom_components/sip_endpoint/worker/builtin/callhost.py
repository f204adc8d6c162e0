"""What a call needs from the engine around it (``stack.BuiltinStack`` provides it).

A call sends its INVITE, BYE, CANCEL and INFO through the transaction layer, its ACK
for a 2xx straight through the transport (RFC 3261 17.1.1.3: the ACK of a 2xx is no
transaction's), and retransmits its own 2xx with
:class:`~.sip.transaction.InviteOkRetransmitter`. It adds itself to ``calls`` and
removes itself with ``forget_call`` once its ``call_ended`` is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from ...protocol.payloads import EventName, Payload
    from .registration.target import Destination
    from .sip.transaction import TransactionLayer
    from .sip.transport import Target


class CallHost(Protocol):
    """The stack as one call sees it."""

    @property
    def bind_host(self) -> str:
        """The address SIP and RTP are bound to ("" for any)."""
        ...

    @property
    def calls(self) -> MutableMapping[str, Any]:
        """The worker's calls by protocol call id."""
        ...

    @property
    def transactions(self) -> TransactionLayer:
        """The transaction layer (its ``transport`` is set once started)."""
        ...

    def emit(self, name: EventName, payload: Payload) -> None:
        """Send an event to Home Assistant."""
        ...

    def forget_call(self, call: Any) -> None:
        """Drop a call whose `call_ended` is sent."""
        ...

    def target_for(self, destination: Destination) -> Target:
        """Return the transport target of a resolved next hop (TLS: verified)."""
        ...
