"""JSON-lines framing: encode, decode and every way a line can be refused."""

import json

import pytest

from custom_components.sip_endpoint.protocol.wire import (
    MAX_LINE_BYTES,
    ErrorInfo,
    Event,
    ProtocolError,
    Request,
    Response,
    decode,
    encode,
)


@pytest.mark.parametrize(
    "message",
    [
        Request(id=1, method="start", params={"bind_host": "127.0.0.1"}),
        Request(id=0, method="status", params={}),
        Response(id=7, result={"sip_port": 5062}),
        Response(id=2**53 - 1, result={}),
        Response(id=8, error=ErrorInfo(code="bad_request", message="nope")),
        Event(name="hello", data={"protocol": 1}),
        Event(name="log", data={"message": "ünïcode ☎"}),
    ],
)
def test_round_trip(message: Request | Response | Event) -> None:
    """What is encoded decodes to the same message, on one ASCII line."""
    line = encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    line.decode("ascii")
    assert decode(line) == message
    assert decode(line.rstrip(b"\n")) == message


def test_response_without_result_encodes_empty_object() -> None:
    """A response with neither result nor error carries an empty result."""
    assert json.loads(encode(Response(id=3))) == {
        "type": "response",
        "id": 3,
        "result": {},
    }
    assert decode(encode(Response(id=3))) == Response(id=3, result={})


def test_missing_params_and_data_default_to_empty() -> None:
    """params, result and data may be left out."""
    assert decode(b'{"type":"request","id":1,"method":"status"}') == Request(
        1, "status", {}
    )
    assert decode(b'{"type":"event","event":"hello"}') == Event("hello", {})
    assert decode(b'{"type":"response","id":1}') == Response(1, result={})


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"", "not JSON"),
        (b"hello", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"{}", "unknown message type"),
        (b'{"type": "martian"}', "unknown message type"),
        (b'{"type": "request", "method": "x"}', "id must be"),
        (b'{"type": "request", "id": -1, "method": "x"}', "id must be"),
        (b'{"type": "request", "id": 1.0, "method": "x"}', "id must be"),
        (b'{"type": "request", "id": true, "method": "x"}', "id must be"),
        (b'{"type": "request", "id": 9007199254740992, "method": "x"}', "id must be"),
        (b'{"type": "request", "id": 1}', "method must be"),
        (b'{"type": "request", "id": 1, "method": ""}', "method must be"),
        (
            b'{"type": "request", "id": 1, "method": "x", "params": []}',
            "params must be",
        ),
        (b'{"type": "response", "id": 1, "result": 5}', "result must be"),
        (b'{"type": "response", "id": 1, "error": "boom"}', "error must be"),
        (b'{"type": "response", "id": 1, "error": {"code": "x"}}', "message must be"),
        (b'{"type": "event", "event": 3}', "event must be"),
        (b'{"type": "event", "event": "x", "data": null}', "data must be"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_refused_lines(line: bytes, why: str) -> None:
    """Every malformed line raises ProtocolError and nothing else."""
    with pytest.raises(ProtocolError, match=why):
        decode(line)


def test_line_length_limit() -> None:
    """Lines over 1 MiB are refused before parsing; 1 MiB itself is fine."""
    padding = "x" * (MAX_LINE_BYTES - 64)
    line = encode(Event(name="log", data={"message": padding}))
    assert len(line) <= MAX_LINE_BYTES
    assert isinstance(decode(line), Event)
    with pytest.raises(ProtocolError, match="too long"):
        decode(b" " * (MAX_LINE_BYTES + 1))


def test_huge_number_is_protocol_error() -> None:
    """An integer too long for int() conversion is refused as not JSON."""
    with pytest.raises(ProtocolError):
        decode(b'{"type": "request", "id": ' + b"9" * 5000 + b', "method": "x"}')
