"""JSON-lines framing: requests, responses and events.

Every message is one JSON object on one line of UTF-8:

- request  ``{"type": "request", "id": 7, "method": "add_account", "params": {...}}``
- response ``{"type": "response", "id": 7, "result": {...}}`` or
  ``{"type": "response", "id": 7, "error": {"code": "bad_request", "message": "..."}}``
- event    ``{"type": "event", "event": "registration", "data": {...}}``

`decode` accepts any bytes and either returns a message or raises `ProtocolError`;
it never raises anything else.
"""

from dataclasses import dataclass
from enum import StrEnum
import json
from typing import Any

MAX_LINE_BYTES = 1 << 20


class ProtocolError(ValueError):
    """A line that is not a valid protocol message."""


class ErrorCode(StrEnum):
    """Error codes a worker answers a request with."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_METHOD = "unknown_method"
    UNKNOWN_EXTENSION = "unknown_extension"
    UNKNOWN_CALL = "unknown_call"
    LIMIT_REACHED = "limit_reached"
    SIP_ERROR = "sip_error"
    NO_ACTIVE_AUDIO = "no_active_audio"  # a media request on a call whose audio is down
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Request:
    """A command for the other side, answered by a `Response` with the same id."""

    id: int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a request failed."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to a `Request`: either `result` or `error` is set."""

    id: int
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, pushed without being asked for."""

    name: str
    data: dict[str, Any]


type Message = Request | Response | Event


def encode(message: Message) -> bytes:
    """Serialise a message to one line, newline included."""
    body: dict[str, Any]
    match message:
        case Request(id=msg_id, method=method, params=params):
            body = {"type": "request", "id": msg_id, "method": method, "params": params}
        case Response(id=msg_id, result=result, error=None):
            body = {"type": "response", "id": msg_id, "result": result or {}}
        case Response(id=msg_id, error=ErrorInfo(code=code, message=text)):
            body = {
                "type": "response",
                "id": msg_id,
                "error": {"code": code, "message": text},
            }
        case Event(name=name, data=data):
            body = {"type": "event", "event": name, "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def decode(line: bytes) -> Message:
    """Parse one line into a message, or raise `ProtocolError`."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError("line too long")
    try:
        body = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise ProtocolError("not JSON") from err
    if not isinstance(body, dict):
        raise ProtocolError("not a JSON object")
    kind = body.get("type")
    if kind == "request":
        return Request(
            id=_message_id(body),
            method=_text(body, "method"),
            params=_object(body, "params"),
        )
    if kind == "response":
        msg_id = _message_id(body)
        if "error" in body:
            error = _object(body, "error")
            return Response(
                id=msg_id,
                error=ErrorInfo(
                    code=_text(error, "code"), message=_text(error, "message")
                ),
            )
        return Response(id=msg_id, result=_object(body, "result"))
    if kind == "event":
        return Event(name=_text(body, "event"), data=_object(body, "data"))
    raise ProtocolError("unknown message type")


def _message_id(body: dict[str, Any]) -> int:
    value = body.get("id")
    if type(value) is not int or not 0 <= value < 2**53:
        raise ProtocolError("id must be a non-negative integer")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{key} must be a non-empty string")
    return value


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise ProtocolError(f"{key} must be an object")
    return value
