"""Fuzzing: nothing a peer sends makes the protocol code raise anything but ProtocolError."""

import contextlib
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.sip_endpoint.protocol import payloads
from custom_components.sip_endpoint.protocol.payloads import Payload
from custom_components.sip_endpoint.protocol.wire import ProtocolError, decode

PAYLOAD_CLASSES = [
    value
    for value in vars(payloads).values()
    if isinstance(value, type) and issubclass(value, Payload) and value is not Payload
]

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        ["successful", "udp", "inbound", "bye", "confirmed", "double_crlf"]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def payload_like(draw: st.DrawFn) -> tuple[type[Payload], dict[str, Any]]:
    """Draw a payload class and a dict using (mostly) its field names, random values."""
    cls = draw(st.sampled_from(PAYLOAD_CLASSES))
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    keys = draw(st.lists(st.sampled_from(names) | st.text(max_size=8), max_size=12))
    return cls, {key: draw(json_values) for key in keys}


def _decode_only_protocol_errors(line: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(line)


@given(st.binary(max_size=300))
def test_decode_random_bytes(line: bytes) -> None:
    """Random bytes: a message or ProtocolError."""
    _decode_only_protocol_errors(line)


@given(json_values)
def test_decode_random_json(value: Any) -> None:
    """Random JSON documents: a message or ProtocolError."""
    _decode_only_protocol_errors(json.dumps(value).encode())


@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["request", "response", "event"])},
        optional={
            "id": json_values,
            "method": json_values,
            "params": json_values,
            "result": json_values,
            "error": json_values
            | st.fixed_dictionaries({"code": json_values, "message": json_values}),
            "event": json_values,
            "data": json_values,
        },
    )
)
def test_decode_message_shaped_json(body: dict[str, Any]) -> None:
    """Objects shaped like messages with random values: a message or ProtocolError."""
    _decode_only_protocol_errors(json.dumps(body).encode())


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(payload_like())
def test_from_wire_random_values(case: tuple[type[Payload], dict[str, Any]]) -> None:
    """Any JSON object given to any payload's from_wire: a payload or ProtocolError."""
    cls, data = case
    try:
        payload = cls.from_wire(data)
    except ProtocolError:
        return
    assert isinstance(payload, cls)
    assert cls.from_wire(payload.to_wire()) == payload or _has_nan(payload.to_wire())


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_nan(item) for item in value)
    return False
