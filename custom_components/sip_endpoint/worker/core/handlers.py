"""The protocol's requests as both engines handle them.

`RequestHandlers` maps every method to a handler, checks params and values
(`dispatch.py`), finds the account or call a request names, and carries out the
requests that work the same on both engines: `reregister`, `ring`, `answer`, `play`,
`record`, `stream`, `hangup`, `make_call`, `status`, `shutdown`. An engine's subclass
adds what differs: `start` (which also sets the source filter), `add_account`,
`remove_account`, and the hooks below.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from ...protocol.payloads import (
    AccountRef,
    CallRef,
    CallStarted,
    HangupParams,
    MakeCallParams,
    Method,
    PlayParams,
    RecordParams,
    RegistrationExchange,
    StreamParams,
    WorkerStatus,
)
from ...protocol.wire import ErrorCode
from .dispatch import (
    DEFERRED,
    RequestError,
    check_call_room,
    check_file,
    check_hangup,
    check_make_call,
    check_record_folder,
    no_audio,
    parse_request,
    rss_kib,
    unknown_call,
    unknown_extension,
)


class EngineStack(Protocol):
    """What the shared handlers read of an engine's SIP stack."""

    @property
    def started(self) -> bool:
        """Return whether `start` has bound the SIP stack."""

    @property
    def max_calls(self) -> int:
        """Return how many calls the worker takes at once."""


class EngineAccount(Protocol):
    """What the shared handlers call on an engine's account."""

    def register(self) -> None:
        """Send a fresh REGISTER now."""


class EngineCall(Protocol):
    """What the shared handlers call on an engine's call."""

    @property
    def call_id(self) -> str:
        """Return the call's id in the protocol."""

    @property
    def ended(self) -> bool:
        """Return whether the call is over (requests then name an unknown call)."""

    @property
    def has_audio(self) -> bool:
        """Return whether the call's audio is up (media requests need it)."""

    def ring(self) -> None:
        """Send 180 Ringing."""

    def play(self, path: str) -> None:
        """Play a WAV file into the call once, then send `playback_done`."""

    def record(self, path: str) -> None:
        """Record the caller (ValueError: a path it cannot use)."""

    def set_streaming(self, enable: bool) -> None:
        """Start or stop `audio` events."""


class RequestHandlers[AccountT: EngineAccount, CallT: EngineCall](ABC):
    """Maps each protocol method to its handler; the engine fills in the rest."""

    DEFERRED: Final = DEFERRED  # `shutdown` answers after the teardown

    def __init__(self, stack: EngineStack) -> None:
        """Build the method table for an engine whose SIP stack is ``stack``."""
        self._engine_stack = stack
        self.accounts: dict[str, AccountT] = {}
        self._table: dict[Method, Callable[[Any], Any]] = {
            Method.START: self.start,
            Method.ADD_ACCOUNT: self.add_account,
            Method.REMOVE_ACCOUNT: self.remove_account,
            Method.REREGISTER: self.reregister,
            Method.RING: self.ring,
            Method.ANSWER: self.answer,
            Method.PLAY: self.play,
            Method.RECORD: self.record,
            Method.STREAM: self.stream,
            Method.HANGUP: self.hangup,
            Method.MAKE_CALL: self.make_call,
            Method.STATUS: self.status,
            Method.SHUTDOWN: self.shutdown,
        }

    def handle(self, method_name: str, raw_params: dict[str, Any]) -> Any:
        """Check the params and run one request; return its result (or an awaitable)."""
        method, params = parse_request(method_name, raw_params, started=self.started)
        return self._table[method](params)

    @property
    def started(self) -> bool:
        """Return whether `start` has bound the SIP stack."""
        return self._engine_stack.started

    @property
    def max_calls(self) -> int:
        """Return how many calls the worker takes at once."""
        return self._engine_stack.max_calls

    # --- what the engine provides ---------------------------------------------------

    @abstractmethod
    def calls(self) -> Mapping[str, CallT]:
        """Return the calls by protocol id."""

    @abstractmethod
    def exchanges(self) -> Iterable[RegistrationExchange]:
        """Return the last REGISTER answers (for `status`)."""

    @abstractmethod
    def start(self, params: Any) -> Any:
        """Bind the SIP stack (`start`)."""

    @abstractmethod
    def add_account(self, params: Any) -> Any:
        """Create and register an account (`add_account`)."""

    @abstractmethod
    def remove_account(self, params: AccountRef) -> Any:
        """Unregister and drop an account (`remove_account`)."""

    @abstractmethod
    def start_call(self, account: AccountT, params: MakeCallParams) -> str:
        """Start an outbound call (checks passed); return its protocol id."""

    @abstractmethod
    def answer_call(self, call: CallT) -> None:
        """Answer ``call`` with 200 OK."""

    @abstractmethod
    def end_call(self, call: CallT, code: int) -> None:
        """End ``call``: ``code`` before the answer (inbound), BYE after."""

    # --- requests both engines handle alike -----------------------------------------

    def status(self, _params: None) -> WorkerStatus:
        """Report accounts, calls, memory and the last REGISTER answers."""
        return WorkerStatus(
            accounts=len(self.accounts),
            calls=len(self.calls()),
            rss_kib=rss_kib(),
            exchanges=list(self.exchanges()),
        )

    def shutdown(self, _params: None) -> object:
        """Stop the worker; the answer goes out after the teardown."""
        return DEFERRED

    def reregister(self, params: AccountRef) -> None:
        """Send a fresh REGISTER now."""
        self.account(params.account_id).register()

    def ring(self, params: CallRef) -> None:
        """Send 180 Ringing."""
        self.call(params.call_id).ring()

    def answer(self, params: CallRef) -> None:
        """Answer with 200 OK."""
        self.answer_call(self.call(params.call_id))

    def play(self, params: PlayParams) -> None:
        """Play a WAV file into the call once."""
        call = self.media_call(params.call_id)
        check_file(params.path)
        call.play(params.path)

    def record(self, params: RecordParams) -> None:
        """Record the caller until the call ends."""
        call = self.media_call(params.call_id)
        check_record_folder(params.path)
        try:
            call.record(params.path)
        except ValueError as err:
            raise RequestError(ErrorCode.BAD_REQUEST, str(err)) from err

    def stream(self, params: StreamParams) -> None:
        """Start or stop `audio` events."""
        call = (
            self.media_call(params.call_id)
            if params.enable
            else self.call(params.call_id)
        )
        call.set_streaming(params.enable)

    def hangup(self, params: HangupParams) -> None:
        """End the call."""
        check_hangup(params)
        self.end_call(self.call(params.call_id), params.code)

    def make_call(self, params: MakeCallParams) -> CallStarted:
        """Call a number or URI, play a file once when answered, then hang up."""
        account = self.account(params.account_id)
        check_make_call(params)
        check_call_room(len(self.calls()), self.max_calls)
        return CallStarted(call_id=self.start_call(account, params))

    # --- lookups ----------------------------------------------------------------------

    def account(self, account_id: str) -> AccountT:
        """Return the account of ``account_id``, or raise `unknown_extension`."""
        try:
            return self.accounts[account_id]
        except KeyError:
            raise unknown_extension() from None

    def call(self, call_id: str) -> CallT:
        """Return the live call ``call_id``, or raise `unknown_call`."""
        call = self.calls().get(call_id)
        if call is None or call.ended:
            raise unknown_call()
        return call

    def media_call(self, call_id: str) -> CallT:
        """Return the live call ``call_id`` with its audio up, or raise."""
        call = self.call(call_id)
        if not call.has_audio:
            raise no_audio()
        return call
