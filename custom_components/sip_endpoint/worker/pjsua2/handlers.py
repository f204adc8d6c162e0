"""The pjsua2 engine's requests, each run on the polling thread.

`core/handlers.py` maps the methods, checks the requests and carries out those both
engines handle alike; what is left here is what pjsua2 does its own way.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Final

import pjsua2 as pj

from ...protocol.payloads import (
    AccountParams,
    AccountRef,
    CallDirection,
    MakeCallParams,
    RegistrationExchange,
    StartParams,
    StartResult,
)
from ...protocol.status import RegistrationStatus
from ...protocol.wire import ErrorCode
from ..core.dispatch import (
    MIN_SECRET_LENGTH,
    RequestError,
    check_new_account,
    check_start,
)
from ..core.handlers import RequestHandlers
from ..core.uris import target_uri
from .account import ExtensionAccount
from .call import WorkerCall
from .call_table import CallTable
from .context import WorkerContext
from .inbound import check_source, handle_incoming_call
from .stack import MAX_ACCOUNTS, SipStack

UNREGISTER_WAIT: Final = 2.0

type Pump = Callable[[Callable[[], bool], float], None]


class Pjsua2Handlers(RequestHandlers[ExtensionAccount, WorkerCall]):
    """The pjsua2 engine's side of the protocol's requests."""

    def __init__(
        self,
        context: WorkerContext,
        stack: SipStack,
        call_table: CallTable,
        pump: Pump,
    ) -> None:
        """Work on ``context``, ``stack`` and ``call_table``; ``pump`` runs pjlib."""
        super().__init__(stack)
        self.context = context
        self.stack = stack
        self.call_table = call_table
        self.pump = pump

    # --- hooks ----------------------------------------------------------------------

    def calls(self) -> Mapping[str, WorkerCall]:
        """Return the calls by protocol id."""
        return self.call_table.live

    def exchanges(self) -> Iterable[RegistrationExchange]:
        """Return the last REGISTER answers."""
        return self.context.exchanges

    def answer_call(self, call: WorkerCall) -> None:
        """Answer with 200 OK (a little later under fast call churn)."""
        delay = self.call_table.answer_delay(call.created_at)
        if delay <= 0:
            call.accept()
            return

        def accept_later() -> None:
            if not call.disconnected:
                call.accept()

        # call_table.CHURN_LIMIT: the call keeps its call slot a little longer.
        self.context.scheduler.call_later(delay, accept_later)

    def end_call(self, call: WorkerCall, code: int) -> None:
        """Hang up."""
        call.end(code)

    # --- lifecycle ------------------------------------------------------------------

    def start(self, params: StartParams) -> StartResult:
        """Create the endpoint and bind the transports."""
        check_start(params, started=self.stack.started)
        self.context.restrict_sources = params.restrict_sources
        self.context.allowed_sources = frozenset(
            source.strip() for source in params.allowed_sources
        )
        try:
            self.stack.start(params)
        except OSError as err:
            raise RequestError(ErrorCode.SIP_ERROR, str(err)) from err
        return StartResult(sip_port=self.stack.sip_port, tls_port=self.stack.tls_port)

    # --- accounts -------------------------------------------------------------------

    def add_account(self, params: AccountParams) -> None:
        """Create an account and register it."""
        check_new_account(params, self.accounts, MAX_ACCOUNTS)
        account = ExtensionAccount(
            self.context,
            params,
            self.stack.transport_ids,
            self.stack.bind_host,
            lambda acc, prm: handle_incoming_call(
                self.context, self.call_table, acc, prm
            ),
            lambda address, method: check_source(self.context, address, method),
        )
        if len(params.password) >= MIN_SECRET_LENGTH:
            # Shorter ones would blank out ordinary text; the header rules still apply.
            self.context.secrets.add(params.password)
        try:
            account.register()
        except ValueError as err:
            raise RequestError(ErrorCode.BAD_REQUEST, str(err)) from err
        self.accounts[params.account_id] = account

    def remove_account(self, params: AccountRef) -> None:
        """Unregister (Expires: 0, bounded wait), report it, delete the account."""
        account = self.account(params.account_id)
        for call in list(self.call_table.live.values()):
            if call.account is account:
                call.end(503)
        account.unregister()
        self.pump(lambda: account.unregister_answered, UNREGISTER_WAIT)
        account.announce_unregistered()
        account.close()
        del self.accounts[params.account_id]

    def unregister_all(self, pump: Pump, timeout: float) -> None:
        """Unregister every account (bounded wait) and delete them (teardown)."""
        accounts = list(self.accounts.values())
        for account in accounts:
            try:
                account.unregister()
            except Exception:  # noqa: BLE001 - keep tearing down
                account.unregister_answered = True
        pump(lambda: all(acc.unregister_answered for acc in accounts), timeout)
        for account in accounts:
            if account.status is not RegistrationStatus.UNREGISTERED:
                account.announce_unregistered()
            account.close()
        self.accounts.clear()

    def connection_lost(self) -> None:
        """Check the registrations over TCP/TLS after a connection closed."""
        for account in self.accounts.values():
            account.check_connection()

    def start_call(self, account: ExtensionAccount, params: MakeCallParams) -> str:
        """Make the call (checks passed): play a file once when answered, hang up."""
        call = WorkerCall(
            self.context, account, CallDirection.OUTBOUND, self.call_table.finish
        )
        play = params.play

        def announce() -> None:
            if play:
                call.play(play, report=False, then=lambda: call.end(200))
            else:
                call.end(200)

        call.after_confirmed = announce
        prm = pj.CallOpParam(True)
        try:
            call.makeCall(target_uri(params.target, account.params), prm)
        except pj.Error:
            # The destructor of a Call whose makeCall failed may hit a C assert
            # (its id can be left out of range): leak the small C++ object instead.
            call.thisown = False
            raise
        self.call_table.add(call)

        def give_up() -> None:
            if not call.answered and not call.disconnected:
                call.end(487)

        self.context.scheduler.call_later(params.timeout, give_up)
        return str(call.call_id)

    def hang_up_all(self) -> None:
        """Hang up every call (teardown)."""
        for call in list(self.call_table.live.values()):
            try:
                call.end(503)
            except Exception:  # noqa: BLE001 - keep tearing down
                call.disconnected = True
                self.call_table.finish(call)
