"""Hypothesis fuzz of the built-in SIP parser and the digest challenge parser.

Whatever bytes arrive, ``parse_message`` returns a message or raises
``SipParseError``, and nothing else; a parsed message's accessors and serialiser do
not fail; memory stays proportional to the input; generated valid messages survive
a serialise/parse round trip unchanged.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from typing import Final

from hypothesis import HealthCheck, example, given, settings, strategies as st

from custom_components.sip_endpoint.worker.builtin.sip.digest import (
    DigestError,
    parse_challenges,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import (
    MAX_HEADER_LINE_BYTES,
    MAX_HEADERS,
    MAX_MESSAGE_BYTES,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    stream_message_length,
)

from .torture import MESSAGES

FUZZ: Final = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS: Final = sorted(MESSAGES.values())
MEMORY_FACTOR: Final = 40
MEMORY_SLACK: Final = 2 * 1024 * 1024


def _exercise(message: SipRequest | SipResponse) -> None:
    """Use what the engine reads from a parsed message; only SipParseError may leave."""
    _ = message.call_id
    _ = message.cseq
    _ = message.vias
    _ = message.top_via
    _ = message.from_addr
    _ = message.to_addr
    _ = message.max_forwards
    _ = message.expires
    _ = message.content_type
    _ = message.contacts()
    with contextlib.suppress(SipParseError):
        _ = message.min_expires
    data = message.to_bytes()
    assert isinstance(data, bytes)


def _parse_or_refuse(data: bytes) -> SipRequest | SipResponse | None:
    """Parse ``data``; return None when refused with SipParseError."""
    error: SipParseError | None = None
    try:
        message = parse_message(data)
    except SipParseError as err:
        error = err
    if error is not None:
        assert isinstance(error.reason, str)
        assert len(error.reason) < 200
        assert error.status in {400, 414, 416, 505, 513}
        return None
    assert isinstance(message, SipRequest | SipResponse)
    _exercise(message)
    return message


@FUZZ
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\n\r\n")
def test_random_bytes(data: bytes) -> None:
    _parse_or_refuse(data)
    try:
        length = stream_message_length(data)
    except SipParseError:
        return
    assert length is None or 0 < length <= len(data)


_MUTATIONS: Final = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]),
        st.integers(min_value=0, max_value=1 << 16),
        st.binary(min_size=1, max_size=16),
    ),
    min_size=1,
    max_size=6,
)


def _mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, chunk in mutations:
        index = position % (len(buffer) + 1)
        if kind == "flip" and buffer:
            buffer[index % len(buffer)] ^= chunk[0] or 1
        elif kind == "insert":
            buffer[index:index] = chunk
        elif kind == "delete":
            del buffer[index : index + len(chunk)]
        elif kind == "truncate":
            del buffer[index:]
        elif kind == "duplicate":
            line_end = buffer.find(b"\r\n", index)
            if line_end >= 0:
                line_start = buffer.rfind(b"\r\n", 0, index) + 2
                buffer[line_end:line_end] = buffer[line_start - 2 : line_end]
    return bytes(buffer)


@FUZZ
@given(st.sampled_from(SEEDS), _MUTATIONS)
def test_mutated_torture_messages(
    seed: bytes, mutations: list[tuple[str, int, bytes]]
) -> None:
    data = _mutate(seed, mutations)
    message = _parse_or_refuse(data)
    if message is not None:
        # What we accepted, serialised again, is accepted again.
        again = parse_message(message.to_bytes())
        assert again.call_id == message.call_id
        assert again.body == message.body


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["header", "value", "headers", "start", "body", "folding"]),
    st.integers(min_value=1, max_value=3),
)
def test_huge_inputs_are_refused_with_bounded_memory(kind: str, scale: int) -> None:
    base = MESSAGES["lwsdisp"]
    head, _, _ = base.partition(b"\r\n\r\n")
    size = MAX_MESSAGE_BYTES * scale
    if kind == "header":
        data = head + b"\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    elif kind == "value":
        data = (
            head + b"\r\nX-Big: " + b"a" * (MAX_HEADER_LINE_BYTES + scale) + b"\r\n\r\n"
        )
    elif kind == "headers":
        data = (
            head
            + b"".join(
                b"\r\nX-H%d: v" % number for number in range(MAX_HEADERS * scale + 1)
            )
            + b"\r\n\r\n"
        )
    elif kind == "start":
        data = (
            b"OPTIONS sip:"
            + b"u" * size
            + b"@example.com SIP/2.0\r\n"
            + head.partition(b"\r\n")[2]
            + b"\r\n\r\n"
        )
    elif kind == "body":
        data = head + b"\r\n\r\n" + b"b" * size
    else:
        data = head + b"\r\nX-Folded: a" + b"\r\n b" * (size // 4) + b"\r\n\r\n"
    tracemalloc.start()
    try:
        message = _parse_or_refuse(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message is None
    assert peak < MEMORY_FACTOR * min(len(data), MAX_MESSAGE_BYTES) + MEMORY_SLACK


_TOKEN: Final = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=20,
)
_USER: Final = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.+", min_size=1, max_size=20
)
_LABEL: Final = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8
)
_HOST: Final = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
)
_METHOD: Final = st.sampled_from(
    [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "UPDATE",
        "MESSAGE",
    ]
)
_DISPLAY: Final = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters='"\\'
    ),
    max_size=20,
)


@st.composite
def _requests(draw: st.DrawFn) -> SipRequest:
    method = draw(_METHOD)
    uri = SipUri(
        user=draw(st.none() | _USER),
        host=draw(_HOST),
        port=draw(st.none() | st.integers(min_value=1, max_value=65535)),
    )
    from_display = draw(_DISPLAY).strip()
    headers = Headers(
        [
            (
                "Via",
                (
                    f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} "
                    f"{draw(_HOST)}:{draw(st.integers(1, 65535))};"
                    f"branch=z9hG4bK{draw(_TOKEN)}"
                ),
            ),
            ("Max-Forwards", str(draw(st.integers(0, 255)))),
            (
                "From",
                (f'"{from_display}" ' if from_display else "")
                + f"<sip:{draw(_USER)}@{draw(_HOST)}>;tag={draw(_TOKEN)}",
            ),
            ("To", f"<sip:{draw(_USER)}@{draw(_HOST)}>"),
            ("Call-ID", f"{draw(_TOKEN)}@{draw(_HOST)}"),
            ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ]
    )
    for name, value in draw(
        st.lists(
            st.tuples(st.sampled_from(["X-A", "X-B", "Subject", "User-Agent"]), _TOKEN),
            max_size=5,
        )
    ):
        headers.add(name, value)
    if draw(st.booleans()):
        headers.add(
            "Contact",
            f"<sip:{draw(_USER)}@{draw(_HOST)}>;expires={draw(st.integers(0, 3600))}",
        )
    body = draw(st.binary(max_size=300))
    if body:
        headers.add("Content-Type", "application/octet-stream")
    return SipRequest(method, uri, headers, body)


@FUZZ
@given(_requests())
def test_generated_requests_round_trip(request: SipRequest) -> None:
    wire = request.to_bytes()
    parsed = parse_message(wire)
    assert isinstance(parsed, SipRequest)
    assert parsed.method == request.method
    assert str(parsed.uri) == str(request.uri)
    assert parsed.call_id == request.call_id
    assert parsed.cseq == request.cseq
    assert parsed.body == request.body
    assert [str(via) for via in parsed.vias] == [str(via) for via in request.vias]
    assert str(parsed.from_addr) == str(request.from_addr)
    assert parsed.headers.get_all("X-A") == request.headers.get_all("X-A")
    assert parsed.to_bytes() == wire
    assert stream_message_length(wire + b"OPTIONS") == len(wire)


@FUZZ
@given(
    st.integers(100, 699),
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30
    ),
    _requests(),
)
def test_generated_responses_round_trip(
    status: int, reason: str, request: SipRequest
) -> None:
    response = SipResponse(status, reason.strip(), request.headers.copy(), request.body)
    wire = response.to_bytes()
    parsed = parse_message(wire)
    assert isinstance(parsed, SipResponse)
    assert (parsed.status, parsed.reason) == (status, reason.strip())
    assert parsed.to_bytes() == wire


@FUZZ
@given(st.text(max_size=300))
def test_header_value_parsers(text: str) -> None:
    for parse in (parse_uri, parse_name_addr, parse_via):
        with contextlib.suppress(SipParseError):
            parse(text)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=600),
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["realm", "nonce", "qop", "algorithm", "opaque", "stale", "x"]
                ),
                st.text(max_size=40),
                st.booleans(),
            ),
            max_size=12,
        ).map(
            lambda params: (
                "Digest "
                + ", ".join(
                    f'{name}="{value}"' if quoted else f"{name}={value}"
                    for name, value, quoted in params
                )
            )
        ),
    )
)
def test_digest_challenges(value: str) -> None:
    try:
        challenges = parse_challenges(value)
    except DigestError:
        return
    assert challenges
    for challenge in challenges:
        assert challenge.algorithm
        assert challenge.qop in {None, "auth", "auth-int"}
