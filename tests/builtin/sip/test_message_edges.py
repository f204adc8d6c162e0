"""Edge paths of the built-in engine's SIP message module: bounds, helpers, reprs."""

from __future__ import annotations

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    MAX_HEADER_LINE_BYTES,
    MAX_HEADER_VALUES,
    CSeq,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    parse_message,
    parse_name_addr,
    parse_params,
    parse_uri,
    split_header_values,
    unquote_string,
)

from .test_message import INVITE


def _request(**replace: bytes) -> bytes:
    """Return INVITE with header lines replaced (b"" drops the line)."""
    lines = INVITE.split(b"\r\n")
    out: list[bytes] = []
    for line in lines:
        name = line.partition(b":")[0].decode().lower().replace("-", "_")
        if line and name in replace:
            if replace[name]:
                out.append(replace[name])
            continue
        out.append(line)
    return b"\r\n".join(out)


def test_unquote_string_leaves_unquoted_text_alone() -> None:
    """Text that is not one quoted string comes back stripped, unchanged."""
    assert unquote_string('  abc"  ') == 'abc"'
    assert unquote_string('"') == '"'


def test_too_many_values_with_quotes_is_refused() -> None:
    """The quote-aware splitter bounds the number of values too."""
    text = '"q", ' + ", ".join(["v"] * (MAX_HEADER_VALUES + 1))
    with pytest.raises(SipParseError, match="too many values"):
        split_header_values(text)


def test_unterminated_quoted_parameter() -> None:
    """A parameter value that opens a quote and never closes it is refused."""
    with pytest.raises(SipParseError, match="bad quoted parameter"):
        parse_params(';a="x"y')


def test_tel_uri_without_a_number() -> None:
    """``tel:`` needs a number before its parameters."""
    with pytest.raises(SipParseError, match="bad tel URI"):
        parse_uri("tel:;phone-context=x", any_scheme=True)


def test_too_many_uri_headers() -> None:
    """The ``?h=v&...`` part of a URI is bounded."""
    headers = "&".join(f"h{n}=v" for n in range(MAX_HEADER_VALUES + 1))
    with pytest.raises(SipParseError, match="too many URI headers"):
        parse_uri(f"sip:a@example.com?{headers}")


def test_name_addr_too_long() -> None:
    """A name-addr longer than a header line may be is refused before parsing."""
    with pytest.raises(SipParseError, match="value too long"):
        parse_name_addr("<sip:a@" + "h" * MAX_HEADER_LINE_BYTES + ">")


def test_cseq_formats_as_on_the_wire() -> None:
    """CSeq prints as ``seq METHOD``."""
    assert str(CSeq(7, "BYE")) == "7 BYE"


def test_headers_container_protocol() -> None:
    """Headers answer ``in`` (any case, non-strings False), iterate, count, repr."""
    headers = Headers([("Via", "a"), ("v", "b"), ("To", "<sip:x@y>")])
    assert "VIA" in headers
    assert 5 not in headers
    assert list(headers) == headers.items()
    assert headers.count("via") == 2
    assert headers.count("Contact") == 0
    assert repr(headers) == f"Headers({headers.items()!r})"


def test_headers_set_refuses_line_breaks() -> None:
    """Replacing a header with a value holding CR/LF raises, leaving it unchanged."""
    headers = Headers([("Subject", "hi")])
    with pytest.raises(ValueError, match="line breaks"):
        headers.set("Subject", "a\r\nVia: evil")
    assert headers.get("subject") == "hi"


def test_required_header_missing_names_it() -> None:
    """A message built without Call-ID raises when asked for it."""
    request = SipRequest("OPTIONS", parse_uri("sip:a@b"), Headers())
    with pytest.raises(SipParseError, match="missing Call-ID"):
        _ = request.call_id


def test_replace_top_via_without_via() -> None:
    """Replacing the top Via of a message that has none raises."""
    request = SipRequest("OPTIONS", parse_uri("sip:a@b"), Headers())
    with pytest.raises(SipParseError, match="missing Via"):
        request.replace_top_via(Via("UDP", "h", 5060, {}))


def test_reprs_show_no_header_values() -> None:
    """Request and response reprs name the start line only."""
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    assert repr(request) == "<SipRequest INVITE sip:bob@example.com>"
    assert repr(SipResponse(486, "Busy Here")) == "<SipResponse 486 Busy Here>"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_request(via=b""), "missing Via"),
        (_request(call_id=b"Call-ID:  "), "empty Call-ID"),
    ],
)
def test_request_missing_parts(data: bytes, message: str) -> None:
    """A request without Via or with an empty Call-ID is refused."""
    with pytest.raises(SipParseError, match=message):
        parse_message(data)


def test_contact_star_is_accepted() -> None:
    """``Contact: *`` (REGISTER removing every binding) parses as ``"*"``."""
    data = _request(contact=b"Contact: *").replace(b"INVITE", b"REGISTER")
    message = parse_message(data)
    assert message.contacts() == "*"


def test_bad_status_line_version() -> None:
    """A status line whose version is not ``SIP/x.y`` is refused."""
    data = b"SIP/x 200 OK\r\n" + INVITE.partition(b"\r\n")[2]
    with pytest.raises(SipParseError, match="bad status line"):
        parse_message(data)


def test_response_to_a_request_with_an_unparsable_to_adds_no_tag() -> None:
    """When To cannot be parsed, it is copied as is rather than given a tag."""
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    request.headers.set("To", "<<<")
    response = make_response(request, 200, to_tag="t1")
    assert response.headers.get("to") == "<<<"


_RESPONSE_HEAD = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
    b"From: <sip:alice@example.com>;tag=1928301774\r\n"
    b"To: <sip:bob@example.com>;tag=a6c85cf\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


@pytest.mark.parametrize(
    "via",
    [
        b"Via:",
        b"Via:   ",
        b"v: \t",
        b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx, ",
        b"Via: , SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx",
        b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx,,SIP/2.0/UDP 192.0.2.8",
    ],
)
@pytest.mark.parametrize("place", ["first", "between", "last"])
def test_an_empty_via_value_beside_real_ones_is_malformed(
    via: bytes, place: str
) -> None:
    """An empty Via value (a line, or between commas) is refused (RFC 3261 20.42).

    The Via grammar has no empty element: a request gets a 400 (the error carries
    what to answer with, every real Via value and no empty line) and a response
    cannot be parsed, so the transport drops it.
    """
    lines = INVITE.split(b"\r\n")
    first_via = next(i for i, line in enumerate(lines) if line.startswith(b"Via:"))
    at = {"first": first_via, "between": first_via + 1, "last": first_via + 2}[place]
    data = b"\r\n".join([*lines[:at], via, *lines[at:]])
    with pytest.raises(SipParseError, match="empty Via") as refused:
        parse_message(data)
    assert refused.value.status == 400
    answerable = refused.value.answerable
    assert answerable is not None
    response = make_response(answerable, 400)
    real_values = [
        value.strip()
        for line in data.decode().split("\r\n")
        if line.startswith(("Via:", "v:"))
        for value in line.partition(":")[2].split(",")
        if value.strip()
    ]
    assert len(real_values) >= 3
    assert response.headers.get_all("via") == real_values
    assert all(line.strip() for line in response.headers.get_lines("via"))

    response_lines = _RESPONSE_HEAD.split(b"\r\n")
    response_data = b"\r\n".join([*response_lines[:1], via, *response_lines[1:]])
    with pytest.raises(SipParseError, match="empty Via") as dropped:
        parse_message(response_data)
    assert dropped.value.answerable is None


def test_too_many_via_values_over_several_lines_are_refused() -> None:
    """The bound on header values counts every Via line's values together."""
    values = ", ".join(
        f"SIP/2.0/UDP 192.0.2.{n % 250};branch=z9hG4bK{n}"
        for n in range(MAX_HEADER_VALUES // 2 + 1)
    )
    lines = INVITE.split(b"\r\n")
    data = b"\r\n".join(
        [lines[0], b"Via: " + values.encode(), b"Via: " + values.encode(), *lines[1:]]
    )
    with pytest.raises(SipParseError, match="too many header values"):
        parse_message(data)
