"""Request handling both engines share: decoding, params, checks, error answers.

An engine's handlers call `parse_request` for the typed params, the ``check_*``
functions for the values the protocol rules out, and raise `RequestError` for
anything else they refuse. The engine's loop reads lines with `read_request` and
answers failures with `answer_error`, so both engines give the same error codes for
the same bad requests.
"""

from collections.abc import Callable, Mapping
import json
import logging
from pathlib import Path
from typing import Final

from ...protocol import wire
from ...protocol.payloads import (
    AccountParams,
    AccountRef,
    CallRef,
    HangupParams,
    MakeCallParams,
    Method,
    Payload,
    PlayParams,
    RecordParams,
    StartParams,
    StreamParams,
)
from ...protocol.wire import ErrorCode
from .channel import ProtocolWriter

_LOGGER = logging.getLogger(__name__)

# Passwords shorter than this are not scrubbed as literals: they would blank out
# ordinary text (the Authorization header rules still apply).
MIN_SECRET_LENGTH: Final = 4

PARAMS_TYPES: Final[Mapping[Method, type[Payload] | None]] = {
    Method.START: StartParams,
    Method.ADD_ACCOUNT: AccountParams,
    Method.REMOVE_ACCOUNT: AccountRef,
    Method.REREGISTER: AccountRef,
    Method.RING: CallRef,
    Method.ANSWER: CallRef,
    Method.PLAY: PlayParams,
    Method.RECORD: RecordParams,
    Method.STREAM: StreamParams,
    Method.HANGUP: HangupParams,
    Method.MAKE_CALL: MakeCallParams,
    Method.STATUS: None,
    Method.SHUTDOWN: None,
}
# What a handler returns for `shutdown`: the answer goes out after the teardown.
DEFERRED: Final = object()
# Requests a worker takes before `start`.
BEFORE_START: Final = frozenset({Method.START, Method.STATUS, Method.SHUTDOWN})

type EngineErrorText = Callable[[Exception], str | None]


class RequestError(Exception):
    """A request that cannot be carried out, with its protocol error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        """Keep the code and a message without secrets."""
        super().__init__(message)
        self.code = code
        self.message = message


def parse_request(
    method_name: str, raw_params: dict[str, object], *, started: bool
) -> tuple[Method, Payload | None]:
    """Return the method and its typed params; raise `RequestError` or `ProtocolError`."""
    try:
        method = Method(method_name)
    except ValueError:
        raise RequestError(
            ErrorCode.UNKNOWN_METHOD, f"unknown method {method_name[:40]!r}"
        ) from None
    params_type = PARAMS_TYPES[method]
    params = params_type.from_wire(raw_params) if params_type else None
    if method not in BEFORE_START and not started:
        raise RequestError(ErrorCode.BAD_REQUEST, "the worker is not started")
    return method, params


# --- value checks -------------------------------------------------------------------


def check_start(params: StartParams, *, started: bool) -> None:
    """Refuse a second `start` and an impossible port range."""
    if started:
        raise RequestError(ErrorCode.BAD_REQUEST, "already started")
    if not 0 < params.port_min <= params.port_max < 65536:
        raise RequestError(ErrorCode.BAD_REQUEST, "bad port range")


def check_new_account(
    params: AccountParams, held: Mapping[str, object], limit: int
) -> None:
    """Refuse a duplicate, one past ``limit`` and non-positive timers."""
    if params.account_id in held:
        raise RequestError(ErrorCode.BAD_REQUEST, "extension already added")
    if len(held) >= limit:
        raise RequestError(
            ErrorCode.LIMIT_REACHED, f"a worker holds at most {limit} extensions"
        )
    if params.expiry < 1 or params.retry_interval < 1:
        raise RequestError(
            ErrorCode.BAD_REQUEST, "expiry and retry_interval must be > 0"
        )


def check_call_room(calls: int, limit: int) -> None:
    """Refuse a call past ``limit`` calls at once."""
    if calls >= limit:
        raise RequestError(
            ErrorCode.LIMIT_REACHED,
            f"a worker holds at most {limit} calls at once",
        )


def check_make_call(params: MakeCallParams) -> None:
    """Refuse a missing announcement file and a non-positive timeout."""
    if params.play is not None:
        check_file(params.play)
    if params.timeout < 1:
        raise RequestError(ErrorCode.BAD_REQUEST, "timeout must be > 0")


def check_hangup(params: HangupParams) -> None:
    """Refuse a hangup code that is not a final error response."""
    if not 300 <= params.code < 700:
        raise RequestError(ErrorCode.BAD_REQUEST, "code must be 300..699")


def check_record_folder(path: str) -> None:
    """Refuse a recording whose folder does not exist."""
    if not Path(path).parent.is_dir():
        raise RequestError(
            ErrorCode.BAD_REQUEST, "the recording's folder does not exist"
        )


def check_file(path: str) -> None:
    """Refuse an audio file that does not exist."""
    if not Path(path).is_file():
        raise RequestError(ErrorCode.BAD_REQUEST, "audio file not found")


def unknown_extension() -> RequestError:
    """Return the error for an extension the worker does not hold."""
    return RequestError(ErrorCode.UNKNOWN_EXTENSION, "unknown extension")


def unknown_call() -> RequestError:
    """Return the error for a call the worker does not hold (or that ended)."""
    return RequestError(ErrorCode.UNKNOWN_CALL, "unknown call")


def no_audio() -> RequestError:
    """Return the error for a media request on a call without audio."""
    return RequestError(ErrorCode.NO_ACTIVE_AUDIO, "the call has no active audio")


# --- lines and answers --------------------------------------------------------------


def read_request(line: bytes, writer: ProtocolWriter) -> wire.Request | None:
    """Decode one line; answer anything but a request with `bad_request`."""
    try:
        message = wire.decode(line)
    except wire.ProtocolError as err:
        # docs/protocol.md: id 0 only when no id could be read.
        writer.fail(readable_id(line), ErrorCode.BAD_REQUEST, str(err))
        return None
    if not isinstance(message, wire.Request):
        msg_id = message.id if isinstance(message, wire.Response) else 0
        writer.fail(msg_id, ErrorCode.BAD_REQUEST, "expected a request")
        return None
    return message


def answer_error(
    writer: ProtocolWriter,
    request: wire.Request,
    err: Exception,
    scrub: Callable[[str], str],
    engine_error: EngineErrorText | None = None,
) -> None:
    """Answer a failed request with the error code its exception stands for.

    ``engine_error`` returns the text of an error the SIP engine raised (answered
    `sip_error`), or None for any other exception (answered `internal`).
    """
    if isinstance(err, RequestError):
        writer.fail(request.id, err.code, scrub(err.message))
        return
    if isinstance(err, wire.ProtocolError):
        writer.fail(request.id, ErrorCode.BAD_REQUEST, str(err))
        return
    text = engine_error(err) if engine_error is not None else None
    if text is not None:
        writer.fail(request.id, ErrorCode.SIP_ERROR, scrub(text))
        return
    _LOGGER.error("Request %s failed", request.method, exc_info=err)
    writer.fail(request.id, ErrorCode.INTERNAL, scrub(str(err) or type(err).__name__))


def readable_id(line: bytes) -> int:
    """Return the id of a line that is not a valid request, or 0 if it has none."""
    if len(line) > wire.MAX_LINE_BYTES:  # not parsed at all
        return 0
    try:
        body = json.loads(line)
    except (ValueError, RecursionError):
        return 0
    value = body.get("id") if isinstance(body, dict) else None
    if type(value) is int and 0 <= value < 2**53:
        return value
    return 0


def rss_kib() -> int:
    """Return the worker's resident memory in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
