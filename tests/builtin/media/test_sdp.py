"""SDP parsing, answering offers and building offers (RFC 4566, RFC 3264)."""

import contextlib

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.sip_endpoint.worker.builtin.media.sdp import (
    MAX_FORMATS,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_MEDIA,
    MAX_SDP_CHARS,
    NoCommonCodecError,
    SdpError,
    SdpNegotiator,
    parse,
)


def sdp(*media: str, connection: str = "c=IN IP4 192.0.2.10", version: int = 1) -> str:
    """Return an offer with the given media sections (lines joined by CRLF)."""
    head = [
        "v=0",
        f"o=peer 42 {version} IN IP4 192.0.2.10",
        "s=call",
        connection,
        "t=0 0",
    ]
    return "\r\n".join([line for line in head if line] + list(media)) + "\r\n"


BARESIP_AUDIO = (
    "m=audio 40000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    "a=ptime:20\r\na=sendrecv"
)


def audio_line(answer: str) -> list[str]:
    """Return the answer's audio m= line split into fields."""
    return next(
        line for line in answer.split("\r\n") if line.startswith("m=audio")
    ).split()


def test_answer_picks_pcmu_and_keeps_the_offerers_event_type() -> None:
    negotiator = SdpNegotiator("127.0.0.1", 30000)
    answer, params = negotiator.answer(sdp(BARESIP_AUDIO))
    assert params.codec == "PCMU"
    assert params.payload_type == 0
    assert params.dtmf_payload_type == 101
    assert params.remote == ("192.0.2.10", 40000)
    assert params.send
    assert params.receive
    assert params.ptime == 20
    assert audio_line(answer) == ["m=audio", "30000", "RTP/AVP", "0", "101"]
    assert "a=rtpmap:101 telephone-event/8000" in answer
    assert "a=fmtp:101 0-15" in answer
    assert "a=sendrecv" in answer
    assert "c=IN IP4 127.0.0.1" in answer
    parsed = parse(answer)
    assert parsed.media[0].port == 30000
    assert parsed.origin is not None
    assert parsed.origin.address == "127.0.0.1"


def test_answer_follows_the_offerers_codec_order() -> None:
    offer = sdp(
        "m=audio 40000 RTP/AVP 8 0 96\r\n"
        "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16"
    )
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert (params.codec, params.payload_type, params.dtmf_payload_type) == (
        "PCMA",
        8,
        96,
    )
    assert audio_line(answer)[3:] == ["8", "96"]
    assert "a=rtpmap:8 PCMA/8000" in answer


def test_answer_states_event_codes_only_when_offered() -> None:
    offer = sdp("m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000")
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert params.dtmf_payload_type == 101
    assert "a=rtpmap:101 telephone-event/8000" in answer
    assert "a=fmtp" not in answer


def test_answer_accepts_g711_on_a_dynamic_payload_type() -> None:
    offer = sdp(
        "m=audio 40000 RTP/AVP 97 9\r\na=rtpmap:97 pcmu/8000\r\na=rtpmap:9 G722/8000"
    )
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert (params.codec, params.payload_type) == ("PCMU", 97)
    assert params.dtmf_payload_type is None
    assert audio_line(answer)[3:] == ["97"]
    assert "telephone-event" not in answer


@pytest.mark.parametrize(
    "media",
    [
        "m=audio 40000 RTP/AVP 9 18\r\na=rtpmap:9 G722/8000\r\na=rtpmap:18 G729/8000",
        "m=audio 40000 RTP/SAVP 0 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",
        "m=audio 0 RTP/AVP 0 8",
        "m=video 40000 RTP/AVP 96\r\na=rtpmap:96 H264/90000",
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/16000",
        "m=audio 40000 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000/2",
    ],
)
def test_offer_without_a_usable_stream_is_refused(media: str) -> None:
    with pytest.raises(NoCommonCodecError, match="no PCMU or PCMA"):
        SdpNegotiator("127.0.0.1", 30000).answer(sdp(media))


def test_offer_with_no_media_is_refused() -> None:
    with pytest.raises(NoCommonCodecError):
        SdpNegotiator("127.0.0.1", 30000).answer(sdp())


@pytest.mark.parametrize(
    ("offered", "answered", "send", "receive"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),
        ("recvonly", "sendonly", True, False),
        ("inactive", "inactive", False, False),
    ],
)
def test_answer_mirrors_the_direction(
    offered: str, answered: str, send: bool, receive: bool
) -> None:
    offer = sdp(f"m=audio 40000 RTP/AVP 0\r\na={offered}")
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert f"a={answered}" in answer
    assert (params.send, params.receive) == (send, receive)


def test_session_level_direction_applies_to_the_media() -> None:
    offer = sdp("a=sendonly", "m=audio 40000 RTP/AVP 0")
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert "a=recvonly" in answer
    assert not params.send


def test_hold_address_means_nowhere_to_send() -> None:
    offer = sdp("m=audio 40000 RTP/AVP 0", connection="c=IN IP4 0.0.0.0")
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert params.remote is None
    assert not params.send
    assert "a=recvonly" in answer


def test_media_level_connection_overrides_the_session_level() -> None:
    offer = sdp("m=audio 40000 RTP/AVP 0\r\nc=IN IP4 198.51.100.7")
    _, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert params.remote == ("198.51.100.7", 40000)


def test_connection_only_at_media_level() -> None:
    offer = sdp("m=audio 40000 RTP/AVP 8\r\nc=IN IP4 198.51.100.7", connection="")
    _, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert params.remote == ("198.51.100.7", 40000)


def test_ipv6_offer_and_ipv6_answer() -> None:
    offer = sdp("m=audio 40000 RTP/AVP 0", connection="c=IN IP6 2001:DB8::1")
    answer, params = SdpNegotiator("::1", 30000).answer(offer)
    assert params.remote == ("2001:db8::1", 40000)
    assert "c=IN IP6 ::1" in answer
    assert answer.split("\r\n")[1].endswith(" IN IP6 ::1")


def test_other_streams_are_rejected_with_port_zero() -> None:
    offer = sdp(
        "m=audio 0 RTP/AVP 0",
        "m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000",
        "m=audio 40004 RTP/AVP 8",
    )
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    lines = [line for line in answer.split("\r\n") if line.startswith("m=")]
    assert lines == [
        "m=audio 0 RTP/AVP 0",
        "m=video 0 RTP/AVP 96",
        "m=audio 30000 RTP/AVP 8",
    ]
    assert params.remote == ("192.0.2.10", 40004)


def test_reinvite_offer_updates_the_stream_and_the_version() -> None:
    negotiator = SdpNegotiator("127.0.0.1", 30000)
    first, _ = negotiator.answer(sdp(BARESIP_AUDIO))
    same, _ = negotiator.answer(sdp(BARESIP_AUDIO, version=2))
    moved, params = negotiator.answer(
        sdp(
            "m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly",
            version=3,
        )
    )
    origins = [parse(text).origin for text in (first, same, moved)]
    assert all(origin is not None for origin in origins)
    ids = {origin.session_id for origin in origins if origin is not None}
    versions = [origin.version for origin in origins if origin is not None]
    assert len(ids) == 1
    assert versions[1] == versions[0]
    assert versions[2] == versions[0] + 1
    assert params.remote == ("192.0.2.10", 41000)
    assert not params.send


def test_offer_lists_g711_and_telephone_events() -> None:
    negotiator = SdpNegotiator("127.0.0.1", 30002)
    offer = parse(negotiator.offer())
    (audio,) = offer.media
    assert audio.port == 30002
    assert audio.proto == "RTP/AVP"
    assert audio.formats == ["0", "8", "101"]
    assert audio.rtpmap[101].name == "telephone-event"
    assert audio.fmtp[101] == "0-16"
    assert audio.ptime == 20
    assert audio.direction == "sendrecv"
    assert offer.connection == "127.0.0.1"


def test_our_offer_is_answerable_by_ourselves() -> None:
    caller = SdpNegotiator("127.0.0.1", 30002)
    callee = SdpNegotiator("127.0.0.2", 30004)
    answer, callee_params = callee.answer(caller.offer())
    caller_params = caller.accept_answer(answer)
    assert callee_params.remote == ("127.0.0.1", 30002)
    assert caller_params.remote == ("127.0.0.2", 30004)
    assert caller_params.codec == callee_params.codec == "PCMU"
    assert caller_params.dtmf_payload_type == 101


@pytest.mark.parametrize(
    ("direction", "send", "receive"),
    [
        ("sendrecv", True, True),
        ("recvonly", True, False),
        ("sendonly", False, True),
        ("inactive", False, False),
    ],
)
def test_accept_answer_directions(direction: str, send: bool, receive: bool) -> None:
    negotiator = SdpNegotiator("127.0.0.1", 30002)
    negotiator.offer()
    params = negotiator.accept_answer(
        sdp(
            f"m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}"
        )
    )
    assert (params.codec, params.payload_type) == ("PCMA", 8)
    assert (params.send, params.receive) == (send, receive)


@pytest.mark.parametrize(
    "media",
    ["m=audio 0 RTP/AVP 0", "m=audio 40000 RTP/AVP 9", "m=video 40000 RTP/AVP 96"],
)
def test_accept_answer_refuses_a_rejected_or_foreign_stream(media: str) -> None:
    negotiator = SdpNegotiator("127.0.0.1", 30002)
    negotiator.offer()
    with pytest.raises(NoCommonCodecError):
        negotiator.accept_answer(sdp(media))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=0\r\n" + "a=x\r\n" * MAX_SDP_CHARS, "too large"),
        ("v=0\r\n" + "a=x\r\n" * MAX_LINES, "too many SDP lines"),
        ("v=0\r\na=" + "x" * MAX_LINE_CHARS + "\r\n", "line too long"),
        (
            sdp("m=audio 1 RTP/AVP " + " ".join(["0"] * (MAX_FORMATS + 1))),
            "too many formats",
        ),
        (sdp(*["m=audio 0 RTP/AVP 0"] * (MAX_MEDIA + 1)), "too many m= lines"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\n", "no v= line"),
        ("v=1\r\n", "version"),
        ("v=0\r\nnonsense\r\n", "malformed"),
        (
            sdp("m=audio 1 RTP/AVP 0", connection="c=IN IP4 pbx.example.com"),
            "not an IP",
        ),
        (sdp("m=audio 1 RTP/AVP 0", connection="c=IN IP6 10.0.0.1"), "address type"),
        (sdp("m=audio 1 RTP/AVP 0", connection="c=IN IP4"), "bad c="),
        (sdp("m=audio 70000 RTP/AVP 0"), "out of range"),
        (sdp("m=audio x RTP/AVP 0"), "bad m= port"),
        (sdp("m=audio 1"), "bad m= line"),
        ("v=0\r\no=- 1\r\n", "bad o= line"),
    ],
)
def test_parser_bounds_and_errors(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse(text)


def test_multicast_offer_is_refused() -> None:
    with pytest.raises(SdpError, match="multicast"):
        SdpNegotiator("127.0.0.1", 30000).answer(
            sdp("m=audio 40000 RTP/AVP 0", connection="c=IN IP4 224.2.1.1/127")
        )


def test_offer_without_any_connection_is_refused() -> None:
    with pytest.raises(SdpError, match="no c= line"):
        SdpNegotiator("127.0.0.1", 30000).answer(
            sdp("m=audio 40000 RTP/AVP 0", connection="")
        )


def test_odd_attributes_are_ignored() -> None:
    offer = sdp(
        "m=audio 40000 RTP/AVP 0 101\r\n"
        "a=rtpmap:x PCMU/8000\r\na=rtpmap:101\r\na=rtpmap:0 PCMU/\uff18\uff10\uff10\uff10\r\n"
        "a=fmtp:101 <script>\r\na=ptime:abc\r\na=rtcp-mux\r\nb=AS:64\r\nk=clear:x"
    )
    answer, params = SdpNegotiator("127.0.0.1", 30000).answer(offer)
    assert params.codec == "PCMU"
    assert params.dtmf_payload_type is None
    assert params.ptime is None
    assert "<script>" not in answer


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzzed_text_only_raises_sdp_errors(text: str) -> None:
    with contextlib.suppress(SdpError):
        SdpNegotiator("127.0.0.1", 30000).answer("v=0\r\nc=IN IP4 1.2.3.4\r\n" + text)


LINES = st.sampled_from(
    [
        "m=audio 4000 RTP/AVP 0 8 101",
        "m=audio 0 RTP/AVP 0",
        "m=video 4002 RTP/AVP 96",
        "c=IN IP4 10.0.0.1",
        "c=IN IP6 ::",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=fmtp:101 0-16",
        "a=sendonly",
        "a=inactive",
        "a=ptime:30",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=12))
def test_fuzzed_structure_answers_or_refuses(lines: list[str]) -> None:
    try:
        answer, params = SdpNegotiator("127.0.0.1", 30000).answer(sdp(*lines))
    except SdpError:
        return
    assert parse(answer).media
    assert params.codec in ("PCMU", "PCMA")
