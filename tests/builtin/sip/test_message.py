"""The built-in engine's SIP parser and serialiser: round trips, forms, and every bound."""

from __future__ import annotations

import random

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    BRANCH_MAGIC,
    MAX_HEADER_LINE_BYTES,
    MAX_HEADER_VALUES,
    MAX_HEADERS,
    MAX_MESSAGE_BYTES,
    MAX_START_LINE_BYTES,
    MAX_URI_BYTES,
    CSeq,
    Headers,
    NameAddr,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    canonical_header_name,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_contacts,
    parse_cseq,
    parse_delta_seconds,
    parse_message,
    parse_name_addr,
    parse_params,
    parse_uri,
    parse_via,
    split_header_values,
    stream_length_from_head,
    stream_message_length,
    unquote_string,
)

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKp2\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice \\"A\\", Smith" <sip:alice@example.com>;tag=1928301774\r\n'
    b"To: Bob <sip:bob@example.com>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b'Contact: <sip:alice@192.0.2.1;transport=udp>;expires=60, "x,y" <sip:a,b@h>\r\n'
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def request_bytes(
    *extra: bytes, method: bytes = b"OPTIONS", body: bytes = b""
) -> bytes:
    lines = [
        method + b" sip:bob@example.com SIP/2.0",
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
        b"From: <sip:a@example.com>;tag=1",
        b"To: <sip:bob@example.com>",
        b"Call-ID: call-1",
        b"CSeq: 1 " + method,
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- round trips --------------------------------------------------------------------


def test_request_parses_and_round_trips() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, SipRequest)
    assert message.method == "INVITE"
    assert message.uri == SipUri("sip", "bob", "example.com")
    assert message.body == b"v=0\n"
    assert message.call_id == "a84b4c76e66710@pc33.example.com"
    assert message.cseq == CSeq(314159, "INVITE")
    assert message.max_forwards == 70
    assert message.content_type == "application/sdp"
    assert message.from_addr.display_name == 'Alice "A", Smith'
    assert message.from_addr.tag == "1928301774"
    assert message.to_addr.display_name == "Bob"
    assert message.to_addr.tag is None
    again = parse_message(message.to_bytes())
    assert again.to_bytes() == message.to_bytes()
    assert again.body == message.body


def test_response_parses_and_round_trips() -> None:
    data = (
        b"SIP/2.0 180 Ringing Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\n"
        b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    response = parse_message(data)
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (180, "Ringing Now")
    assert response.from_network is True
    assert parse_message(response.to_bytes()).to_bytes() == response.to_bytes()
    assert SipResponse(200).from_network is False
    assert SipResponse(200).reason == "OK"


def test_content_length_is_set_from_the_body() -> None:
    message = parse_message(request_bytes(b"Content-Length: 0"))
    message.body = b"hello"
    data = message.to_bytes()
    assert data.count(b"Content-Length") == 1
    assert b"Content-Length: 5\r\n\r\nhello" in data


def test_leading_crlf_before_the_start_line_is_skipped() -> None:
    message = parse_message(b"\r\n\r\n" + request_bytes())
    assert isinstance(message, SipRequest)
    assert message.method == "OPTIONS"


# --- headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compact", "full"),
    [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("f", "From"),
        ("t", "To"),
        ("v", "Via"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("x", "Session-Expires"),
        ("u", "Allow-Events"),
        ("r", "Refer-To"),
    ],
)
def test_compact_forms(compact: str, full: str) -> None:
    assert canonical_header_name(compact) == full
    assert canonical_header_name(compact.upper()) == full
    headers = Headers([(compact, "value")])
    assert headers.get(full.upper()) == "value"
    assert headers.get(compact) == "value"
    assert headers.items() == [(full, "value")]


def test_compact_message_parses() -> None:
    data = (
        b"OPTIONS sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"f: <sip:a@h>;tag=1\r\nt: <sip:b@h>\r\ni: c1\r\nCSeq: 1 OPTIONS\r\n"
        b"m: <sip:a@h>\r\nl: 2\r\n\r\nhi"
    )
    message = parse_message(data)
    assert message.call_id == "c1"
    assert message.top_via.branch == "z9hG4bK1"
    assert message.body == b"hi"
    contacts = message.contacts()
    assert contacts != "*"
    assert [str(contact.uri) for contact in contacts] == ["sip:a@h"]


def test_header_names_are_case_insensitive_and_lws_before_colon_is_allowed() -> None:
    message = parse_message(request_bytes(b"sUbJeCt   :   hi there", b"X-Custom: 1"))
    assert message.headers.get("subject") == "hi there"
    assert message.headers.get("SUBJECT") == "hi there"
    assert "x-custom" in message.headers


def test_line_folding_is_unfolded() -> None:
    message = parse_message(
        request_bytes(b"Subject: first\r\n  second\r\n\tthird", b"X-Other: 1")
    )
    assert message.headers.get("subject") == "first second third"
    assert message.headers.get("x-other") == "1"


def test_folded_cseq_and_via_parse() -> None:
    data = request_bytes().replace(b"CSeq: 1 OPTIONS", b"CSeq: 0009\r\n  OPTIONS")
    data = data.replace(b"Via: SIP/2.0/UDP", b"Via  : SIP  /  2.0\r\n /UDP\r\n   ")
    message = parse_message(data)
    assert message.cseq == CSeq(9, "OPTIONS")
    assert message.top_via.transport == "UDP"
    assert message.top_via.host == "192.0.2.1"


def test_continuation_before_the_first_header_is_refused() -> None:
    data = (
        b"OPTIONS sip:b@h SIP/2.0\r\n folded\r\n" + request_bytes().split(b"\r\n", 1)[1]
    )
    with pytest.raises(SipParseError):
        parse_message(data)


def test_multi_value_splitting_respects_quotes_and_angle_brackets() -> None:
    message = parse_message(INVITE)
    vias = message.vias
    assert [via.branch for via in vias] == [
        "z9hG4bK776asdhds",
        "z9hG4bKp1",
        "z9hG4bKp2",
    ]
    assert vias[2].host == "[2001:db8::1]"
    assert vias[2].port == 5070
    contacts = message.contacts()
    assert contacts != "*"
    assert len(contacts) == 2
    assert contacts[0].expires == 60
    assert contacts[1].display_name == "x,y"
    assert contacts[1].uri.user == "a,b"
    assert message.headers.get_all("record-route") == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
    ]
    assert split_header_values('a, "b, c" <sip:x>, <sip:y,z@h>') == [
        "a",
        '"b, c" <sip:x>',
        "<sip:y,z@h>",
    ]


def test_authentication_headers_are_not_split() -> None:
    value = 'Digest realm="r", nonce="n, still n", qop="auth,auth-int"'
    headers = Headers([("WWW-Authenticate", value)])
    assert headers.get_all("www-authenticate") == [value]


def test_headers_set_remove_and_refuse_line_breaks() -> None:
    headers = Headers([("Via", "a"), ("To", "t"), ("Via", "b")])
    headers.set("via", "c")
    assert headers.items() == [("Via", "c"), ("To", "t")]
    headers.remove("TO")
    assert headers.items() == [("Via", "c")]
    with pytest.raises(ValueError):
        headers.add("Subject", "a\r\nInjected: yes")


def test_duplicate_single_headers_are_refused() -> None:
    for extra in (b"Call-ID: other", b"Content-Length: 0\r\nContent-Length: 0"):
        with pytest.raises(SipParseError) as info:
            parse_message(request_bytes(extra))
        assert "duplicate" in info.value.reason


def test_replace_top_via_splits_a_joined_line() -> None:
    message = parse_message(INVITE)
    first, second = message.vias[1:]
    message.headers.remove("via")
    message.headers.add("Via", f"{first}, {second}")
    replacement = parse_via("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnew")
    message.replace_top_via(replacement)
    assert message.headers.get_lines("via") == [str(replacement), str(second)]

    # Every other line stays as it came, quoted control characters included.
    odd = parse_message(request_bytes(b'Subject: "\\\x07\\\x00"'))
    odd.replace_top_via(replacement)
    assert odd.headers.get("subject") == '"\\\x07\\\x00"'
    assert odd.top_via.branch == "z9hG4bKnew"


# --- values -------------------------------------------------------------------------


def test_uri_parse_and_format() -> None:
    uri = parse_uri(
        "sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?subject=x&h=y"
    )
    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert "secret" not in str(uri)  # the password is never kept
    assert uri.host == "[2001:db8::1]"
    assert uri.port == 5061
    assert uri.params == {"transport": "tls", "lr": None}
    assert uri.transport == "tls"
    assert uri.headers == {"subject": "x", "h": "y"}
    assert str(uri) == "sips:alice@[2001:db8::1]:5061;transport=tls;lr?subject=x&h=y"
    assert parse_uri(str(uri)) == uri
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert (tel.scheme, tel.user, tel.host) == ("tel", "+1-201-555-0123", "")
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"
    assert parse_uri("SIP:Host.Example.COM").host_port == "Host.Example.COM"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:user@",
        "sip:h:99999",
        "sip:h:abc",
        "sip:[::1",
        "sip:a b@h",
        "nocolon",
        "sip:@h",
    ],
)
def test_bad_uris_are_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_other_uri_schemes() -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri("http://example.com/")
    assert info.value.status == 416
    opaque = parse_uri("isbn:2983792873", any_scheme=True)
    assert (opaque.scheme, opaque.opaque) == ("isbn", "2983792873")
    assert str(opaque) == "isbn:2983792873"


def test_name_addr_forms() -> None:
    quoted = parse_name_addr('"Bob \\"B\\"" <sip:bob@h;lr>;tag=abc;expires=30')
    assert quoted.display_name == 'Bob "B"'
    assert quoted.uri.params == {"lr": None}
    assert quoted.tag == "abc"
    assert quoted.expires == 30
    assert parse_name_addr(str(quoted)) == quoted
    tokens = parse_name_addr("Bob Smith <sip:bob@h>")
    assert tokens.display_name == "Bob Smith"
    no_space = parse_name_addr("caller<sip:caller@example.com>;tag=1")
    assert no_space.display_name == "caller"
    assert no_space.tag == "1"
    spec = parse_name_addr("sip:bob@h;tag=x")
    assert spec.uri == SipUri("sip", "bob", "h")
    assert spec.params == {"tag": "x"}
    quoted_param = parse_name_addr('<sip:a@h>;+sip.instance="<urn:uuid:1;2>"')
    assert quoted_param.params["+sip.instance"] == '"<urn:uuid:1;2>"'
    assert str(NameAddr(SipUri(host="h"), "A")) == '"A" <sip:h>'


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@h>',
        "Bell, Alexander <sip:a@h>",
        "<sip:a@h",
        "sip:a@h?x=y",
        "<sip:a@h> junk",
        '"name" sip:a@h',
    ],
)
def test_bad_name_addrs_are_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text)


def test_contact_star_and_expires() -> None:
    assert parse_contacts(["*"]) == "*"
    with pytest.raises(SipParseError):
        parse_contacts(["*", "<sip:a@h>"])
    contacts = parse_contacts(["<sip:a@h>;expires=0"])
    assert contacts != "*"
    assert contacts[0].expires == 0
    with pytest.raises(SipParseError):
        parse_name_addr("<sip:a@h>;expires=soon").expires  # noqa: B018


def test_via_parse_and_format() -> None:
    via = parse_via(
        "SIP / 2.0 / udp 10.0.0.1:5062 ; branch=z9hG4bKx ;rport;received=1.2.3.4;maddr=239.0.0.1"
    )
    assert via.transport == "UDP"
    assert (via.host, via.port) == ("10.0.0.1", 5062)
    assert via.branch == "z9hG4bKx"
    assert via.has_rport
    assert via.rport is None
    assert via.received == "1.2.3.4"
    assert via.maddr == "239.0.0.1"
    assert (
        str(via)
        == "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport;received=1.2.3.4;maddr=239.0.0.1"
    )
    via.params["rport"] = "7000"
    assert parse_via(str(via)).rport == 7000
    assert (
        str(Via("TLS", "[::1]", 5061, {"branch": "z9hG4bK2"}))
        == "SIP/2.0/TLS [::1]:5061;branch=z9hG4bK2"
    )
    assert parse_via("SIP/2.0/TCP h").port is None
    for bad in ("SIP/2.0 h", "SIP/2.0/UDP", "SIP/2.0/UDP h:0", "SIP/2.0/UDP bad_host"):
        with pytest.raises(SipParseError):
            parse_via(bad)


def test_cseq_max_forwards_and_expires_bounds() -> None:
    assert parse_cseq("2147483647 INVITE") == CSeq(2**31 - 1, "INVITE")
    for bad in ("2147483648 INVITE", "1", "x INVITE", "1 IN VITE", "-1 INVITE"):
        with pytest.raises(SipParseError):
            parse_cseq(bad)
    assert parse_delta_seconds("0003600") == 3600
    assert parse_delta_seconds("9999999999") == 2**32 - 1
    for bad in ("", "-1", "1.5", "12345678901"):
        with pytest.raises(SipParseError):
            parse_delta_seconds(bad)
    assert parse_message(request_bytes(b"Max-Forwards: 0068")).max_forwards == 68
    for bad_line in (b"Max-Forwards: 256", b"Max-Forwards: x", b"Expires: soon"):
        with pytest.raises(SipParseError):
            parse_message(request_bytes(bad_line))
    message = parse_message(request_bytes(b"Expires: 300", b"Min-Expires: 60"))
    assert (message.expires, message.min_expires) == (300, 60)


def test_params_helper_for_digest_lists() -> None:
    params = parse_params(
        'realm="a, b", nonce="n\\"q", qop="auth,auth-int", algorithm=MD5, stale=TRUE',
        ",",
    )
    assert params == {
        "realm": "a, b",
        "nonce": 'n"q',
        "qop": "auth,auth-int",
        "algorithm": "MD5",
        "stale": "TRUE",
    }
    assert parse_params(";a=1;B;c = x") == {"a": "1", "b": None, "c": "x"}
    assert unquote_string('"a\\\\b"') == "a\\b"
    for bad in ('a="open', "=x", "a b=c"):
        with pytest.raises(SipParseError):
            parse_params(bad)


# --- building -----------------------------------------------------------------------


def test_make_response_copies_per_rfc3261_8_2_6() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    response = make_response(request, 200, to_tag="t1", copy_record_route=True,
                             headers=[("Contact", "<sip:bob@h>")], body=b"x",
                             content_type="application/sdp")  # fmt: skip
    assert response.headers.get_lines("via") == request.headers.get_lines("via")
    assert response.headers.get("from") == request.headers.get("from")
    assert response.to_addr.tag == "t1"
    assert response.call_id == request.call_id
    assert response.cseq == request.cseq
    assert response.headers.get_lines("record-route") == request.headers.get_lines(
        "record-route"
    )
    assert response.content_type == "application/sdp"
    assert response.from_network is False
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, SipResponse)
    assert parsed.body == b"x"
    trying = make_response(request, 100, to_tag="t1")
    assert trying.to_addr.tag is None  # never a tag on 100 Trying
    assert "record-route" not in make_response(request, 486, to_tag="t1").headers
    tagged = parse_message(
        request_bytes().replace(b"To: <sip:bob@example.com>", b"To: <sip:b@h>;tag=old")
    )
    assert isinstance(tagged, SipRequest)
    assert make_response(tagged, 200, to_tag="new").to_addr.tag == "old"


def test_identifiers() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100
    assert all(
        branch.startswith(BRANCH_MAGIC) and len(branch) > 16 for branch in branches
    )
    assert new_tag() != new_tag()
    call_id = new_call_id("host.example")
    assert call_id.endswith("@host.example")
    assert new_call_id("h") != new_call_id("h")


# --- refusals and bounds ------------------------------------------------------------


def test_missing_required_headers_are_refused_and_not_answerable() -> None:
    data = request_bytes().replace(b"Call-ID: call-1\r\n", b"")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.answerable is None


def test_bad_request_is_answerable_with_400() -> None:
    data = request_bytes(b"Max-Forwards: many")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    answerable = info.value.answerable
    assert answerable is not None
    response = make_response(answerable, info.value.status)
    assert response.call_id == "call-1"
    assert response.top_via.branch == "z9hG4bK1"


def test_version_and_scheme_refusals_carry_their_status() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(request_bytes().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1))
    assert info.value.status == 505
    assert info.value.answerable is not None
    with pytest.raises(SipParseError) as info:
        parse_message(
            request_bytes().replace(
                b"sip:bob@example.com SIP", b"mailto:bob@example.com SIP", 1
            )
        )
    assert info.value.status == 416
    assert info.value.answerable is not None


@pytest.mark.parametrize(
    "start_line",
    [
        b"OPTIONS  sip:bob@example.com SIP/2.0",
        b"OPTIONS sip:bob@example.com SIP/2.0 ",
        b"OPTIONS <sip:bob@example.com> SIP/2.0",
        b"OPTIONS sip:bob@example.com?Route=x SIP/2.0",
        b"OPT IONS sip:bob@example.com SIP/2.0",
    ],
)
def test_malformed_request_lines_are_refused_with_400(start_line: bytes) -> None:
    data = start_line + b"\r\n" + request_bytes().split(b"\r\n", 1)[1]
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    assert info.value.answerable is not None


def test_responses_are_never_answerable() -> None:
    for start in (b"SIP/2.0 1000 Big", b"SIP/2.0 099 Small", b"SIP/3.0 200 OK"):
        with pytest.raises(SipParseError) as info:
            parse_message(start + b"\r\n" + request_bytes().split(b"\r\n", 1)[1])
        assert info.value.answerable is None


def test_cseq_method_must_match() -> None:
    data = request_bytes().replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.answerable is not None


def test_content_length_against_the_datagram() -> None:
    longer = parse_message(request_bytes(b"Content-Length: 3", body=b"abcdef"))
    assert longer.body == b"abc"  # extra octets are dropped (RFC 3261 18.3)
    absent = parse_message(request_bytes(body=b"abcdef"))
    assert absent.body == b"abcdef"
    for bad in (b"Content-Length: 10", b"Content-Length: -1", b"Content-Length: x"):
        with pytest.raises(SipParseError) as info:
            parse_message(request_bytes(bad, body=b"abc"))
        assert info.value.answerable is not None


def test_message_size_bound() -> None:
    body = b"x" * (MAX_MESSAGE_BYTES - len(request_bytes()))
    assert len(parse_message(request_bytes(body=body)).body) == len(body)
    with pytest.raises(SipParseError) as info:
        parse_message(request_bytes(body=body + b"x"))
    assert info.value.status == 513


def test_start_line_bound() -> None:
    user = b"u" * (MAX_START_LINE_BYTES + 1)
    data = request_bytes().replace(
        b"sip:bob@example.com SIP", b"sip:" + user + b"@h SIP", 1
    )
    with pytest.raises(SipParseError):
        parse_message(data)


def test_uri_bound() -> None:
    assert parse_uri("sip:" + "u" * (MAX_URI_BYTES - 6) + "@h").host == "h"
    with pytest.raises(SipParseError) as info:
        parse_uri("sip:" + "u" * MAX_URI_BYTES + "@h")
    assert info.value.status == 414


def test_header_line_bound_including_folded_lines() -> None:
    fits = b"X-Long: " + b"a" * (MAX_HEADER_LINE_BYTES - 8)
    assert parse_message(request_bytes(fits)).headers.get("x-long") is not None
    with pytest.raises(SipParseError):
        parse_message(request_bytes(fits + b"a"))
    folded = b"X-Long: a" + b"\r\n " + b"b" * MAX_HEADER_LINE_BYTES
    with pytest.raises(SipParseError):
        parse_message(request_bytes(folded))
    pieces = b"X-Long: a" + b"".join(b"\r\n " + b"b" * 1000 for _ in range(9))
    with pytest.raises(SipParseError):
        parse_message(request_bytes(pieces))


def test_header_count_bound() -> None:
    base = len(request_bytes().split(b"\r\n")) - 3  # start line and the blank line
    fits = [b"X-H: %d" % index for index in range(MAX_HEADERS - base)]
    assert len(parse_message(request_bytes(*fits)).headers) == MAX_HEADERS
    with pytest.raises(SipParseError):
        parse_message(request_bytes(*fits, b"X-H: one-more"))


def test_header_value_count_bound() -> None:
    values = ", ".join(f"<sip:p{index}@h>" for index in range(MAX_HEADER_VALUES + 1))
    message = parse_message(request_bytes(b"X-Ok: 1"))
    message.headers.add("Route", values)
    with pytest.raises(SipParseError):
        message.headers.get_all("route")
    with pytest.raises(SipParseError):
        parse_message(request_bytes(b"Route: " + values.encode()))
    plain = ",".join(["INVITE"] * (MAX_HEADER_VALUES + 2))  # no quotes or <>
    message.headers.add("Allow", plain)
    with pytest.raises(SipParseError):
        message.headers.get_all("allow")
    assert (
        len(split_header_values(",".join(["A"] * MAX_HEADER_VALUES)))
        == MAX_HEADER_VALUES
    )


def test_stream_framing() -> None:
    one = request_bytes(b"Content-Length: 3", body=b"abc")
    assert stream_message_length(one) == len(one)
    assert stream_message_length(one + one[:10]) == len(one)
    assert stream_message_length(one[:-1]) is None
    assert stream_message_length(one[:20]) is None
    compact = request_bytes(b"l: 3", body=b"abc")
    assert stream_message_length(compact) == len(compact)
    not_last = request_bytes(b"Content-Length : 3", b"X-After: 1", body=b"abc")
    assert stream_message_length(not_last) == len(not_last)
    with pytest.raises(SipParseError):
        stream_message_length(request_bytes())  # no Content-Length
    with pytest.raises(SipParseError):
        stream_message_length(request_bytes(b"Content-Length: 1", b"l: 1", body=b"a"))
    with pytest.raises(SipParseError):
        stream_message_length(request_bytes(b"Content-Length: %d" % MAX_MESSAGE_BYTES))
    with pytest.raises(SipParseError):
        stream_message_length(
            b"OPTIONS sip:a@h SIP/2.0\r\nX: " + b"a" * MAX_MESSAGE_BYTES
        )
    assert (
        stream_message_length(b"OPTIONS sip:a@h SIP/2.0\r\nX: " + b"a" * 1000) is None
    )
    head = one.split(b"\r\n\r\n", 1)[0]
    assert stream_length_from_head(head) == len(one)
    with pytest.raises(SipParseError):
        stream_length_from_head(b"X: " + b"a" * MAX_MESSAGE_BYTES)


def test_only_sip_parse_errors_come_out_of_mutated_messages() -> None:
    rng = random.Random(4475)
    seeds = [INVITE, request_bytes(b"Content-Length: 3", body=b"abc")]
    interesting = b'\r\n :;,<>"\\@[]?=%\x00\xff'
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            action = rng.randrange(3)
            if action == 0:
                data[position] = rng.choice(interesting)
            elif action == 1:
                del data[position : position + rng.randint(1, 20)]
            else:
                data[position:position] = bytes(
                    rng.choice(interesting) for _ in range(3)
                )
        try:
            message = parse_message(bytes(data))
        except SipParseError:
            continue
        parse_message(
            message.to_bytes()
        )  # what parsed serialises to something parseable
