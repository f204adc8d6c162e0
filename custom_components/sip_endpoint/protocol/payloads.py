"""Typed payloads of the protocol's requests, results and events.

Each payload is a frozen dataclass. `to_wire` turns one into the JSON object that goes in
`params`, `result` or `data`; `from_wire` checks a received object field by field and
raises `ProtocolError` on anything missing, mistyped or unknown to an enum.
"""

from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import StrEnum
import types
from typing import Any, Self, Union, get_args, get_origin, get_type_hints

from .status import RegistrationStatus
from .wire import ProtocolError


class Method(StrEnum):
    """Requests the Home Assistant side sends to a worker."""

    START = "start"
    ADD_ACCOUNT = "add_account"
    REMOVE_ACCOUNT = "remove_account"
    REREGISTER = "reregister"
    RING = "ring"
    ANSWER = "answer"
    PLAY = "play"
    RECORD = "record"
    STREAM = "stream"
    HANGUP = "hangup"
    MAKE_CALL = "make_call"
    STATUS = "status"
    SHUTDOWN = "shutdown"


class EventName(StrEnum):
    """Events a worker pushes to the Home Assistant side."""

    HELLO = "hello"
    REGISTRATION = "registration"
    INCOMING_CALL = "incoming_call"
    CALL_STATE = "call_state"
    CALL_ENDED = "call_ended"
    DTMF = "dtmf"
    AUDIO = "audio"
    PLAYBACK_DONE = "playback_done"
    RECORDING_DONE = "recording_done"
    REFUSED = "refused"
    LOG = "log"


class Transport(StrEnum):
    """SIP transport toward the registrar."""

    AUTO = "auto"
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class KeepaliveMethod(StrEnum):
    """How a registration is kept alive between REGISTER refreshes."""

    DOUBLE_CRLF = "double_crlf"
    SIP_OPTIONS = "sip_options"
    OFF = "off"


class CallDirection(StrEnum):
    """Who placed a call."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EndCause(StrEnum):
    """Why a call ended."""

    BYE = "bye"  # the remote side hung up after the call was answered
    CANCEL = "cancel"  # the caller gave up before the call was answered
    ANSWERED_ELSEWHERE = "answered_elsewhere"  # CANCEL with Reason: cause=200
    LOCAL = "local"  # we hung up
    REJECTED = "rejected"  # an outbound call was refused, or we refused an inbound one
    FAILED = "failed"  # a transport error, a timeout or a worker that went away


class CallPhase(StrEnum):
    """Coarse call state as the worker sees it."""

    RINGING = "ringing"  # inbound, not answered yet
    CALLING = "calling"  # outbound, no answer yet
    CONFIRMED = "confirmed"  # answered, media may flow
    DISCONNECTED = "disconnected"


class Payload:
    """Mixin giving dataclasses a checked JSON form."""

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON object for this payload."""
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Self:
        """Build a payload from a received JSON object, checking every field."""
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for spec in fields(cls):  # type: ignore[arg-type]
            if spec.name not in data:
                if spec.default is not MISSING or spec.default_factory is not MISSING:
                    continue
                raise ProtocolError(f"missing field {spec.name}")
            values[spec.name] = _check(spec.name, hints[spec.name], data[spec.name])
        return cls(**values)


def _check(name: str, hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return _check(name, inner, value)
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolError(f"{name} must be a list")
        (item,) = get_args(hint)
        return [_check(name, item, entry) for entry in value]
    if isinstance(hint, type) and issubclass(hint, Payload):
        if not isinstance(value, dict):
            raise ProtocolError(f"{name} must be an object")
        return hint.from_wire(value)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        try:
            return hint(value)
        except ValueError as err:
            raise ProtocolError(f"{name} has an unknown value") from err
    if hint is float:
        if type(value) not in (int, float):
            raise ProtocolError(f"{name} must be a number")
        return float(value)
    if hint in (str, int, bool):
        if type(value) is not hint:
            raise ProtocolError(f"{name} must be {hint.__name__}")
        return value
    raise ProtocolError(f"{name} has an unsupported type")  # pragma: no cover


# --- handshake and worker setup -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(Payload):
    """First line a worker writes: who it is."""

    protocol: int
    engine: str  # "pjsua2" or "builtin"
    engine_version: str
    python: str
    pid: int
    max_accounts: int  # extensions one worker holds
    max_calls: int  # calls one worker holds at once


@dataclass(frozen=True, slots=True)
class StartParams(Payload):
    """Start the SIP stack: bind transports, set the source filter."""

    bind_host: str
    port_min: int
    port_max: int
    restrict_sources: bool = True
    allowed_sources: list[str] = field(default_factory=list)
    max_calls: int | None = None  # a lower cap; None: as many as hello says
    log_level: int = 1
    tls_verify: bool = True  # check the server's certificate and host name
    tls_ca_file: str | None = None  # trusted besides the system's CA store


@dataclass(frozen=True, slots=True)
class StartResult(Payload):
    """Where the worker listens."""

    sip_port: int
    tls_port: int | None = None


# --- accounts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountParams(Payload):
    """Register one extension."""

    account_id: str
    extension: str
    auth_id: str
    password: str = field(repr=False)
    domain: str
    port: int | None = None
    transport: Transport = Transport.AUTO
    outbound_proxy: str | None = None
    expiry: int = 300
    keepalive: KeepaliveMethod = KeepaliveMethod.DOUBLE_CRLF
    keepalive_interval: int = 30
    retry_interval: int = 30


@dataclass(frozen=True, slots=True)
class AccountRef(Payload):
    """Names one extension."""

    account_id: str


@dataclass(frozen=True, slots=True)
class RegistrationState(Payload):
    """Where an extension's registration stands, pushed on every change."""

    account_id: str
    status: RegistrationStatus
    code: int | None
    reason: str
    changed_at: float
    last_success: float | None
    expires: int
    registrar: str


# --- calls ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCall(Payload):
    """An INVITE arrived for an extension and was accepted for handling."""

    account_id: str
    call_id: str
    remote_uri: str
    display_name: str
    source: str
    alert_info: str | None = None
    call_info: str | None = None
    answer_after: int | None = None


@dataclass(frozen=True, slots=True)
class CallRef(Payload):
    """Names one call."""

    call_id: str


@dataclass(frozen=True, slots=True)
class PlayParams(Payload):
    """Play a WAV file into a call once; `playback_done` follows at its end."""

    call_id: str
    path: str


@dataclass(frozen=True, slots=True)
class RecordParams(Payload):
    """Record what the caller says to a WAV file until the call ends."""

    call_id: str
    path: str


@dataclass(frozen=True, slots=True)
class StreamParams(Payload):
    """Start or stop `audio` events carrying the caller's audio."""

    call_id: str
    enable: bool


@dataclass(frozen=True, slots=True)
class HangupParams(Payload):
    """End a call; `code` is the final answer for a call not answered yet."""

    call_id: str
    code: int = 603


@dataclass(frozen=True, slots=True)
class MakeCallParams(Payload):
    """Call a number or SIP URI from an extension, play a file, then hang up."""

    account_id: str
    target: str
    play: str | None = None
    timeout: int = 30


@dataclass(frozen=True, slots=True)
class CallStarted(Payload):
    """The result of `make_call`."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CallStateChanged(Payload):
    """A call moved to another phase."""

    call_id: str
    account_id: str
    phase: CallPhase


@dataclass(frozen=True, slots=True)
class CallEnded(Payload):
    """A call is over."""

    call_id: str
    account_id: str
    direction: CallDirection
    cause: EndCause
    code: int
    reason: str
    answered: bool
    duration: float


@dataclass(frozen=True, slots=True)
class DtmfDigit(Payload):
    """A DTMF digit arrived on a call."""

    call_id: str
    account_id: str
    digit: str
    method: str  # "rfc4733" or "sip_info"


@dataclass(frozen=True, slots=True)
class AudioFrame(Payload):
    """A chunk of the caller's audio: base64 of 16-bit little-endian mono PCM."""

    call_id: str
    seq: int
    rate: int
    pcm: str


@dataclass(frozen=True, slots=True)
class PlaybackDone(Payload):
    """A file `play` started reached its end."""

    call_id: str


@dataclass(frozen=True, slots=True)
class RecordingDone(Payload):
    """A recording is finished and its WAV header written."""

    call_id: str
    path: str
    duration: float


@dataclass(frozen=True, slots=True)
class Refused(Payload):
    """Requests (or connections) from a source outside the allowed list were refused.

    The first of a burst comes alone (``count`` 1, its ``method``); later ones are
    summarised: ``count`` refusals, ``method`` the methods seen, comma-separated.
    """

    source: str
    method: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class LogLine(Payload):
    """A log line from the SIP stack (no secrets: the worker redacts them)."""

    level: int
    message: str


@dataclass(frozen=True, slots=True)
class RegistrationExchange(Payload):
    """One REGISTER answer, kept for diagnostics."""

    account_id: str
    at: float
    code: int
    reason: str
    from_server: bool


@dataclass(frozen=True, slots=True)
class WorkerStatus(Payload):
    """The result of `status`."""

    accounts: int
    calls: int
    rss_kib: int
    exchanges: list[RegistrationExchange] = field(default_factory=list)
