"""Settings and reports of the SIP engine."""

from dataclasses import dataclass, field
from enum import StrEnum

from ..protocol.payloads import (
    AudioFrame,
    CallEnded,
    CallStateChanged,
    DtmfDigit,
    IncomingCall,
    KeepaliveMethod,
    PlaybackDone,
    RecordingDone,
    Refused,
    RegistrationState,
    Transport,
)

DEFAULT_EXPIRY = 300
DEFAULT_KEEPALIVE_INTERVAL = 30
DEFAULT_RETRY_INTERVAL = 30
DEFAULT_PORT_MIN = 5062
DEFAULT_PORT_MAX = 5199


class EngineChoice(StrEnum):
    """Which worker engine runs the extensions."""

    AUTO = "auto"  # pjsua2 when an interpreter with it is configured or found
    BUILTIN = "builtin"  # the pure-Python engine, on this process's interpreter
    PJSUA2 = "pjsua2"  # pjsua2 only; an error when no interpreter has it


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The SIP server (registrar) one engine registers to."""

    host: str
    port: int | None = None
    transport: Transport = Transport.AUTO
    outbound_proxy: str | None = None


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How an engine registers and runs its workers."""

    keepalive: KeepaliveMethod = KeepaliveMethod.DOUBLE_CRLF
    keepalive_interval: int = DEFAULT_KEEPALIVE_INTERVAL
    expiry: int = DEFAULT_EXPIRY
    retry_interval: int = DEFAULT_RETRY_INTERVAL
    port_min: int = DEFAULT_PORT_MIN
    port_max: int = DEFAULT_PORT_MAX
    bind_host: str = "0.0.0.0"  # noqa: S104 - the PBX must reach the workers
    restrict_sources: bool = True
    engine: EngineChoice = EngineChoice.AUTO
    worker_python: str | None = None  # pjsua2's interpreter; None: autodetect
    tls_verify: bool = True  # check the server's certificate and host name
    tls_ca_file: str | None = None  # trusted besides the system's CA store


@dataclass(frozen=True, slots=True)
class ExtensionSettings:
    """One extension's credentials."""

    account_id: str  # stable key chosen by the caller (Home Assistant: the subentry id)
    extension: str
    auth_id: str  # empty: the extension (see `auth_id_for`)
    password: str = field(repr=False)


def auth_id_for(extension: str, auth_id: str | None) -> str:
    """Return the authentication ID to use: the given one, else the extension."""
    return auth_id or extension


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process, for diagnostics."""

    index: int
    pid: int | None
    engine: str  # "pjsua2" or "builtin"
    engine_version: str
    python: str
    max_accounts: int
    max_calls: int
    started_at: float | None
    restarts: int
    sip_port: int | None
    account_ids: list[str]


type EngineEvent = (
    RegistrationState
    | IncomingCall
    | CallStateChanged
    | CallEnded
    | DtmfDigit
    | AudioFrame
    | PlaybackDone
    | RecordingDone
    | Refused
)
