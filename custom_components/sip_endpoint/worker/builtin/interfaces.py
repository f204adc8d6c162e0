"""What the built-in engine's parts call on each other.

The stack (`stack.py`) and the request handlers (`handlers.py`) are written against
these protocols; `account.py` (`BuiltinAccount`) and `call.py` (`BuiltinCall` and the
two entry points) implement them. Everything runs on the worker's one asyncio loop
thread: no locks, nothing here blocks.

Construction, by the handlers and the stack:

- ``BuiltinAccount(stack, params)``: an extension; ``register()`` starts it.
- ``start_outbound_call(stack, account, params) -> Call`` (`make_call`): sends the
  INVITE and returns at once; the call is already in ``stack.calls``. It gives up
  (CANCEL, ``call_ended`` cause 487) after ``params.timeout`` s unanswered; once
  answered it plays ``params.play`` once, then hangs up (or hangs up at once).
- ``accept_incoming_call(stack, account, transaction) -> None``: a new INVITE (its
  ``ServerInviteTransaction``; ``transaction.request``, ``transaction.source``) that
  passed the source filter and the Require check, is for ``account``'s extension, and
  found room (the stack answered 486 past ``stack.max_calls``). It puts the call into
  ``stack.calls`` and emits ``incoming_call``.

A call removes itself with ``stack.forget_call(call)`` once it has ended
(``call_ended`` sent); an account is dropped by the handlers after ``await account.unregister()``.

Errors: a request a call or account cannot carry out in its current state raises
``core.dispatch.RequestError`` (``ErrorCode.SIP_ERROR`` for SIP state, e.g. ``ring``
after the answer); ``record`` raises ``ValueError`` for a path it cannot use
(answered ``bad_request``). Anything else is a bug, answered ``internal``.
"""

from typing import Protocol

from ...protocol.payloads import AccountParams
from ...protocol.status import RegistrationStatus
from ..core.handlers import EngineCall
from .sip.message import SipRequest
from .sip.transaction import ServerTransaction
from .sip.transport import Source

# The transport layer's view of where a request came from (host, port, transport,
# connection), and a received request's server transaction (request, source,
# respond(), cancelled, on_ack_timeout): SIP-CORE's classes.
type RequestSource = Source

__all__ = ["Account", "Call", "RequestSource", "ServerTransaction"]


class Account(Protocol):
    """One extension (``account.BuiltinAccount``)."""

    @property
    def params(self) -> AccountParams:
        """Return the settings the account was added with."""

    @property
    def status(self) -> RegistrationStatus:
        """Return the last reported registration status."""

    def register(self) -> None:
        """Send a fresh REGISTER now (``add_account``, ``reregister``).

        Failures (no answer, refused, network errors) are reported as
        ``registration`` events and retried with ``core.backoff``; they never raise.
        """

    async def unregister(self) -> None:
        """Stop: REGISTER with Expires: 0, wait about 2 s at most for its answer.

        (``registration.timing.UNREGISTER_TIMEOUT``; the teardown unregisters every
        account at once, so it takes that long in all.)

        Then emit ``registration`` with status ``unregistered`` and expires 0 (unless
        that was the last status reported) and release timers, transactions and
        connections. Never raises; the account is not used afterwards.
        """

    def connection_lost(self, key: tuple[str, str, int]) -> None:
        """React to the close of a TCP/TLS connection (transport, peer address, port).

        The connection to the account's next hop closing means: register again.
        """


class Call(EngineCall, Protocol):
    """One call (``call.BuiltinCall``), inbound or outbound.

    Besides what `core.handlers.EngineCall` asks of both engines' calls (``call_id``,
    ``ended``, ``has_audio``, ``ring``, ``play``, ``record``,
    ``set_streaming``), the built-in stack and handlers call these.
    """

    @property
    def account(self) -> Account:
        """Return the extension the call belongs to."""

    def owns(self, request: SipRequest) -> bool:
        """Return whether ``request`` belongs to this call.

        In-dialog requests: the Call-ID and our tag (the To tag) match the dialog.
        CANCEL (no To tag): it cancels the INVITE this call is answering
        (``stack.transactions.find_invite_for_cancel(cancel)`` is that INVITE's server
        transaction, RFC 3261 9.2).
        """

    def handle_request(
        self,
        request: SipRequest,
        source: RequestSource,
        transaction: ServerTransaction | None,
    ) -> None:
        """Answer a request `owns` accepted: BYE, re-INVITE, UPDATE, INFO, CANCEL, ACK.

        ``transaction`` is None only for an ACK (of our 2xx: it has no transaction).
        """

    def answer(self) -> None:
        """Answer 200 OK."""

    def hangup(self, code: int) -> None:
        """End the call: BYE when confirmed, else ``code`` (inbound) or CANCEL."""
