"""The worker's requests, each run on the polling thread."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import pjsua2 as pj

from ...protocol.payloads import (
    AccountParams,
    AllowedSourcesParams,
    AnswerParams,
    CallDirection,
    CallRef,
    CallStarted,
    ExtensionRef,
    HangupParams,
    MakeCallParams,
    Method,
    PlayParams,
    RecordParams,
    StartParams,
    StartResult,
    StreamParams,
    WorkerStatus,
)
from ...protocol.status import RegistrationStatus
from ...protocol.wire import ErrorCode
from ..core.dispatch import (
    DEFERRED,
    MIN_SECRET_LENGTH,
    RequestError,
    check_call_room,
    check_file,
    check_hangup,
    check_make_call,
    check_new_account,
    check_record_folder,
    check_start,
    no_audio,
    parse_request,
    rss_kib,
    unknown_call,
    unknown_extension,
)
from ..core.uris import target_uri
from .account import ExtensionAccount
from .call import WorkerCall
from .context import WorkerContext
from .inbound import check_source, handle_incoming_call
from .stack import MAX_ACCOUNTS, SipStack

if TYPE_CHECKING:
    from .loop import WorkerRuntime

UNREGISTER_WAIT: Final = 2.0

type Pump = Callable[[Callable[[], bool], float], None]


class RequestHandlers:
    """Maps each protocol method to its implementation."""

    DEFERRED: Final = DEFERRED  # `shutdown` answers after the teardown

    def __init__(
        self, context: WorkerContext, stack: SipStack, runtime: "WorkerRuntime"
    ) -> None:
        """Work on ``context`` and ``stack``; ``runtime`` pumps pjlib while waiting."""
        self.context = context
        self.stack = stack
        self.runtime = runtime
        self.accounts: dict[str, ExtensionAccount] = {}
        self._table: dict[Method, Callable[[Any], Any]] = {
            Method.START: self.start,
            Method.ADD_ACCOUNT: self.add_account,
            Method.REMOVE_ACCOUNT: self.remove_account,
            Method.REREGISTER: self.reregister,
            Method.SET_ALLOWED_SOURCES: self.set_allowed_sources,
            Method.RING: self.ring,
            Method.ANSWER: self.answer,
            Method.PLAY: self.play,
            Method.STOP_PLAYING: self.stop_playing,
            Method.RECORD: self.record,
            Method.STREAM: self.stream,
            Method.HANGUP: self.hangup,
            Method.MAKE_CALL: self.make_call,
            Method.STATUS: self.status,
            Method.SHUTDOWN: self.shutdown,
        }

    def handle(self, method_name: str, raw_params: dict[str, Any]) -> Any:
        """Check the params and run one request; return its result payload."""
        method, params = parse_request(
            method_name, raw_params, started=self.stack.started
        )
        return self._table[method](params)

    # --- lifecycle ------------------------------------------------------------------

    def start(self, params: StartParams) -> StartResult:
        """Create the endpoint and bind the transports."""
        check_start(params, started=self.stack.started)
        self._apply_sources(params.restrict_sources, params.allowed_sources)
        try:
            self.stack.start(params)
        except OSError as err:
            raise RequestError(ErrorCode.SIP_ERROR, str(err)) from err
        return StartResult(sip_port=self.stack.sip_port, tls_port=self.stack.tls_port)

    def status(self, _params: None) -> WorkerStatus:
        """Report accounts, calls, memory and the last REGISTER answers."""
        return WorkerStatus(
            accounts=len(self.accounts),
            calls=len(self.context.calls),
            rss_kib=rss_kib(),
            exchanges=list(self.context.exchanges),
        )

    def shutdown(self, _params: None) -> object:
        """Stop the worker; the answer goes out after the teardown."""
        return self.DEFERRED

    def set_allowed_sources(self, params: AllowedSourcesParams) -> None:
        """Replace the source filter."""
        self._apply_sources(params.restrict_sources, params.allowed_sources)

    def _apply_sources(self, restrict: bool, sources: list[str]) -> None:
        self.context.restrict_sources = restrict
        self.context.allowed_sources = frozenset(s.strip() for s in sources)

    # --- accounts -------------------------------------------------------------------

    def add_account(self, params: AccountParams) -> None:
        """Create an account and register it."""
        check_new_account(params, self.accounts, MAX_ACCOUNTS)
        account = ExtensionAccount(
            self.context,
            params,
            self.stack.transport_ids,
            self.stack.bind_host,
            lambda acc, prm: handle_incoming_call(self.context, acc, prm),
            lambda address, method: check_source(self.context, address, method),
        )
        if len(params.password) >= MIN_SECRET_LENGTH:
            # Shorter ones would blank out ordinary text; the header rules still apply.
            self.context.secrets.add(params.password)
        try:
            account.register()
        except ValueError as err:
            raise RequestError(ErrorCode.BAD_REQUEST, str(err)) from err
        self.accounts[params.ext_id] = account

    def remove_account(self, params: ExtensionRef) -> None:
        """Unregister (Expires: 0, bounded wait), report it, delete the account."""
        account = self._account(params.ext_id)
        for call in list(self.context.calls.values()):
            if call.account is account:
                call.end(503)
        account.unregister()
        self.runtime.pump(lambda: account.unregister_answered, UNREGISTER_WAIT)
        account.announce_unregistered()
        account.close()
        del self.accounts[params.ext_id]

    def reregister(self, params: ExtensionRef) -> None:
        """Send a fresh REGISTER now."""
        self._account(params.ext_id).register()

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

    def _account(self, ext_id: str) -> ExtensionAccount:
        try:
            return self.accounts[ext_id]
        except KeyError:
            raise unknown_extension() from None

    # --- calls ----------------------------------------------------------------------

    def ring(self, params: CallRef) -> None:
        """Send 180 Ringing."""
        self._call(params.call_id).ring()

    def answer(self, params: AnswerParams) -> None:
        """Answer with 200 OK."""
        call = self._call(params.call_id)
        if params.tone is not None:
            check_file(params.tone)
        call.accept(params.tone)

    def play(self, params: PlayParams) -> None:
        """Play a WAV file into the call."""
        call = self._media_call(params.call_id)
        check_file(params.path)
        call.play(params.path, loop=params.loop)

    def stop_playing(self, params: CallRef) -> None:
        """Stop playing."""
        self._call(params.call_id).stop_playing()

    def record(self, params: RecordParams) -> None:
        """Record the caller until the call ends."""
        call = self._media_call(params.call_id)
        check_record_folder(params.path)
        try:
            call.record(params.path)
        except ValueError as err:
            raise RequestError(ErrorCode.BAD_REQUEST, str(err)) from err

    def stream(self, params: StreamParams) -> None:
        """Start or stop `audio` events."""
        call = (
            self._media_call(params.call_id)
            if params.enable
            else self._call(params.call_id)
        )
        call.set_streaming(params.enable)

    def hangup(self, params: HangupParams) -> None:
        """End the call."""
        check_hangup(params)
        self._call(params.call_id).end(params.code)

    def make_call(self, params: MakeCallParams) -> CallStarted:
        """Call a number or URI, play a file once when answered, then hang up."""
        account = self._account(params.ext_id)
        check_make_call(params)
        check_call_room(len(self.context.calls), self.stack.max_calls)
        call = WorkerCall(self.context, account, CallDirection.OUTBOUND)
        play = params.play

        def announce() -> None:
            if play:
                call.play(play, loop=False, report=False, then=lambda: call.end(200))
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
        self.context.calls[call.call_id] = call

        def give_up() -> None:
            if not call.answered and not call.disconnected:
                call.end(487)

        self.context.scheduler.call_later(params.timeout, give_up)
        return CallStarted(call_id=call.call_id)

    def hang_up_all(self) -> None:
        """Hang up every call (teardown)."""
        for call in list(self.context.calls.values()):
            try:
                call.end(503)
            except Exception:  # noqa: BLE001 - keep tearing down
                call.disconnected = True
                self.context.finished_calls.append(call)

    def _call(self, call_id: str) -> WorkerCall:
        call = self.context.calls.get(call_id)
        if call is None or call.disconnected:
            raise unknown_call()
        return call

    def _media_call(self, call_id: str) -> WorkerCall:
        call = self._call(call_id)
        if call.audio is None:
            raise no_audio()
        return call
