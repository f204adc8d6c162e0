"""The built-in engine's requests, each run on the asyncio loop, one at a time.

Params, checks and error codes come from `core/dispatch.py`, as for the pjsua2
engine; what is left here is what the built-in engine does for each request.
"""

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any

from ...protocol.payloads import (
    AccountParams,
    AllowedSourcesParams,
    AnswerParams,
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
from ...protocol.wire import ErrorCode
from ..core.dispatch import (
    DEFERRED,
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
from .account import BuiltinAccount
from .interfaces import Call
from .limits import MAX_ACCOUNTS
from .stack import BuiltinStack

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_LOGGER = logging.getLogger(__name__)


class BuiltinHandlers:
    """Maps each protocol method to the built-in engine's implementation."""

    def __init__(self, stack: BuiltinStack) -> None:
        """Work on ``stack``."""
        self.stack = stack
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

    async def handle(self, method_name: str, raw_params: dict[str, Any]) -> Any:
        """Check the params and run one request; return its result payload."""
        method, params = parse_request(
            method_name, raw_params, started=self.stack.started
        )
        _LOGGER.debug("Request %s", method)
        result = self._table[method](params)
        if inspect.isawaitable(result):
            result = await result
        return result

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, params: StartParams) -> StartResult:
        """Bind the transports and set the source filter."""
        check_start(params, started=self.stack.started)
        self.stack.set_sources(params.restrict_sources, params.allowed_sources)
        try:
            await self.stack.start(params)
        except OSError as err:
            raise RequestError(ErrorCode.SIP_ERROR, str(err)) from err
        return StartResult(sip_port=self.stack.sip_port, tls_port=self.stack.tls_port)

    def status(self, _params: None) -> WorkerStatus:
        """Report accounts, calls, memory and the last REGISTER answers."""
        return WorkerStatus(
            accounts=len(self.stack.accounts),
            calls=len(self.stack.calls),
            rss_kib=rss_kib(),
            exchanges=list(self.stack.exchanges),
        )

    def shutdown(self, _params: None) -> object:
        """Stop the worker; the answer goes out after the teardown."""
        return DEFERRED

    def set_allowed_sources(self, params: AllowedSourcesParams) -> None:
        """Replace the source filter."""
        self.stack.set_sources(params.restrict_sources, params.allowed_sources)

    # --- accounts -------------------------------------------------------------------

    def add_account(self, params: AccountParams) -> None:
        """Create an account and register it."""
        check_new_account(params, self.stack.accounts, MAX_ACCOUNTS)
        self.stack.add_secret(params.password)
        account = self.stack.new_account(params)
        self.stack.accounts[params.ext_id] = account
        try:
            account.register()
        except ValueError as err:
            del self.stack.accounts[params.ext_id]
            raise RequestError(ErrorCode.BAD_REQUEST, str(err)) from err

    async def remove_account(self, params: ExtensionRef) -> None:
        """End its calls, unregister (Expires: 0, bounded wait), drop the account."""
        account = self._account(params.ext_id)
        for call in list(self.stack.calls.values()):
            if call.account is account and not call.ended:
                call.hangup(503)
        await account.unregister()
        self.stack.accounts.pop(params.ext_id, None)

    def reregister(self, params: ExtensionRef) -> None:
        """Send a fresh REGISTER now."""
        self._account(params.ext_id).register()

    def _account(self, ext_id: str) -> BuiltinAccount:
        try:
            return self.stack.accounts[ext_id]
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
        call.answer(params.tone)

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
        self._call(params.call_id).hangup(params.code)

    def make_call(self, params: MakeCallParams) -> CallStarted:
        """Call a number or URI, play a file once when answered, then hang up."""
        account = self._account(params.ext_id)
        check_make_call(params)
        check_call_room(len(self.stack.calls), self.stack.max_calls)
        call = self.stack.start_outbound_call(account, params)
        return CallStarted(call_id=call.call_id)

    def _call(self, call_id: str) -> Call:
        call = self.stack.calls.get(call_id)
        if call is None or call.ended:
            raise unknown_call()
        return call

    def _media_call(self, call_id: str) -> Call:
        call = self._call(call_id)
        if not call.has_audio:
            raise no_audio()
        return call

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
        accounts = list(self.stack.accounts.values())
        self.stack.accounts.clear()
        if accounts:
            unregistering: list[Awaitable[None]] = [
                account.unregister() for account in accounts
            ]
            await asyncio.gather(*unregistering, return_exceptions=True)
