"""The built-in engine's requests, each run on the asyncio loop, one at a time.

`core/handlers.py` maps the methods, checks the requests and carries out those both
engines handle alike; what is left here is what the built-in engine does its own way.
`start` and `remove_account` are coroutines (the loop awaits them).
"""

import asyncio
from collections.abc import Iterable, Mapping
import logging
from typing import TYPE_CHECKING, Any

from ...protocol.payloads import (
    AccountParams,
    AccountRef,
    MakeCallParams,
    RegistrationExchange,
    StartParams,
    StartResult,
)
from ...protocol.wire import ErrorCode
from ..core.dispatch import RequestError, check_new_account, check_start
from ..core.handlers import RequestHandlers
from .account import BuiltinAccount
from .interfaces import Call
from .limits import MAX_ACCOUNTS
from .stack import BuiltinStack

if TYPE_CHECKING:
    from collections.abc import Awaitable

_LOGGER = logging.getLogger(__name__)


class BuiltinHandlers(RequestHandlers[BuiltinAccount, Call]):
    """The built-in engine's side of the protocol's requests."""

    def __init__(self, stack: BuiltinStack) -> None:
        """Work on ``stack`` (its account table is this one)."""
        super().__init__(stack)
        self.stack = stack
        self.accounts = stack.accounts

    def handle(self, method_name: str, raw_params: dict[str, Any]) -> Any:
        """Run one request; return its result, or an awaitable of it."""
        _LOGGER.debug("Request %s", method_name[:40])
        return super().handle(method_name, raw_params)

    # --- hooks ----------------------------------------------------------------------

    def calls(self) -> Mapping[str, Call]:
        """Return the calls by protocol id."""
        return self.stack.calls

    def exchanges(self) -> Iterable[RegistrationExchange]:
        """Return the last REGISTER answers."""
        return self.stack.exchanges

    def apply_sources(self, restrict: bool, sources: list[str]) -> None:
        """Replace the source filter."""
        self.stack.set_sources(restrict, sources)

    def start_call(self, account: BuiltinAccount, params: MakeCallParams) -> str:
        """Send the INVITE; the call is in the table on return."""
        return self.stack.start_outbound_call(account, params).call_id

    def answer_call(self, call: Call) -> None:
        """Answer with 200 OK."""
        call.answer()

    def end_call(self, call: Call, code: int) -> None:
        """Hang up."""
        call.hangup(code)

    # --- requests of their own --------------------------------------------------------

    async def start(self, params: StartParams) -> StartResult:
        """Bind the transports and set the source filter."""
        check_start(params, started=self.stack.started)
        self.apply_sources(params.restrict_sources, params.allowed_sources)
        try:
            await self.stack.start(params)
        except OSError as err:
            raise RequestError(ErrorCode.SIP_ERROR, str(err)) from err
        return StartResult(sip_port=self.stack.sip_port, tls_port=self.stack.tls_port)

    def add_account(self, params: AccountParams) -> None:
        """Create an account and register it."""
        check_new_account(params, self.accounts, MAX_ACCOUNTS)
        self.stack.add_secret(params.password)
        account = self.stack.new_account(params)
        self.accounts[params.account_id] = account
        try:
            account.register()
        except ValueError as err:
            del self.accounts[params.account_id]
            raise RequestError(ErrorCode.BAD_REQUEST, str(err)) from err

    async def remove_account(self, params: AccountRef) -> None:
        """End its calls, unregister (Expires: 0, bounded wait), drop the account."""
        account = self.account(params.account_id)
        for call in list(self.stack.calls.values()):
            if call.account is account and not call.ended:
                call.hangup(503)
        await account.unregister()
        self.accounts.pop(params.account_id, None)

    # --- teardown -------------------------------------------------------------------

    async def hang_up_and_unregister_all(self, wait: float) -> None:
        """Hang up every call, then unregister every account at once (bounded)."""
        for call in list(self.stack.calls.values()):
            if not call.ended:
                try:
                    call.hangup(503)
                except Exception:  # noqa: BLE001 - keep tearing down
                    self.stack.forget_call(call)
        await self.stack.wait_until(lambda: not self.stack.calls, wait)
        accounts = list(self.accounts.values())
        self.accounts.clear()
        if accounts:
            unregistering: list[Awaitable[None]] = [
                account.unregister() for account in accounts
            ]
            await asyncio.gather(*unregistering, return_exceptions=True)
