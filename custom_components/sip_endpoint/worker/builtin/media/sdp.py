"""SDP (RFC 4566) parsing and building, offer/answer (RFC 3264) for G.711 audio.

`parse` reads a session description with every size bounded and raises only
`SdpError`. `SdpNegotiator` holds our side of one call's offer/answer exchange:
`offer()` builds our offer (PCMU, PCMA, telephone-event/8000 0-16), `answer(offer)`
answers the peer's offer choosing the first of PCMU or PCMA in the offerer's order and
its telephone-event payload type, `accept_answer(answer)` takes the peer's answer to our
offer. Both return `MediaParams`: where to send, which payload types, which directions.
An offer with no usable audio stream raises `NoCommonCodecError` (answer 488).
"""

from dataclasses import dataclass, field
import ipaddress
import random
import re

MAX_SDP_CHARS = 32 * 1024
MAX_LINES = 512
MAX_LINE_CHARS = 2048
MAX_MEDIA = 16
MAX_FORMATS = 64
MAX_PTIME = 1000

AUDIO_RATE = 8000
STATIC_CODECS = {0: "PCMU", 8: "PCMA"}
CODECS = ("PCMU", "PCMA")
TELEPHONE_EVENT = "telephone-event"
DEFAULT_DTMF_PT = 101
PTIME = 20
RTP_PROFILES = ("RTP/AVP", "RTP/AVPF")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_EVENTS = re.compile(r"[0-9]{1,3}(-[0-9]{1,3})?(,[0-9]{1,3}(-[0-9]{1,3})?){0,15}")
_REVERSE = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class SdpError(ValueError):
    """An SDP body that cannot be parsed or accepted (the call layer answers 488)."""


class NoCommonCodecError(SdpError):
    """An offer with no audio stream we can take: no PCMU or PCMA over RTP/AVP."""


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One a=rtpmap: encoding name, clock rate, channels."""

    name: str
    rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Origin:
    """The o= line."""

    username: str
    session_id: str
    version: int
    address_type: str
    address: str


@dataclass(slots=True)
class MediaDescription:
    """One m= section."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    direction: str | None = None
    rtpmap: dict[int, RtpMap] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    ptime: int | None = None


@dataclass(slots=True)
class SessionDescription:
    """A parsed session description: the session-level lines we use and its media."""

    origin: Origin | None = None
    connection: str | None = None
    direction: str | None = None
    media: list[MediaDescription] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What one negotiation decided for the audio stream.

    ``remote`` is None when the peer gave no address to send to (port 0 or a hold
    address 0.0.0.0 / ::). ``send`` and ``receive`` are our directions.
    """

    remote: tuple[str, int] | None
    payload_type: int
    codec: str
    dtmf_payload_type: int | None
    send: bool
    receive: bool
    ptime: int | None = None


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("bad c= line")
    address = parts[2].split("/", 1)[0]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise SdpError("c= address is not an IP address") from None
    if (parts[1] == "IP4") != (parsed.version == 4):
        raise SdpError("c= address does not match its address type")
    return str(parsed)


def _is_number(text: str, max_digits: int) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= max_digits


def _int(text: str, low: int, high: int, what: str) -> int:
    if not _is_number(text, 10):
        raise SdpError(f"bad {what}")
    value = int(text)
    if not low <= value <= high:
        raise SdpError(f"{what} out of range")
    return value


def _media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("bad m= line")
    if len(parts) - 3 > MAX_FORMATS:
        raise SdpError("too many formats in an m= line")
    port = _int(parts[1].split("/", 1)[0], 0, 65535, "m= port")
    return MediaDescription(
        media=parts[0], port=port, proto=parts[2].upper(), formats=parts[3:]
    )


def _rtpmap(media: MediaDescription, value: str) -> None:
    head, _, encoding = value.partition(" ")
    pieces = encoding.strip().split("/")
    if not _is_number(head, 3) or len(pieces) not in (2, 3):
        return
    rate = pieces[1]
    channels = pieces[2] if len(pieces) == 3 else "1"
    if not (_is_number(rate, 7) and _is_number(channels, 2)):
        return
    media.rtpmap[int(head)] = RtpMap(pieces[0], int(rate), int(channels))


def _attribute(
    session: SessionDescription, media: MediaDescription | None, value: str
) -> None:
    name, _, rest = value.partition(":")
    if name in DIRECTIONS and not rest:
        if media is None:
            session.direction = name
        else:
            media.direction = name
        return
    if media is None:
        return
    if name == "rtpmap":
        _rtpmap(media, rest)
    elif name == "fmtp":
        head, _, params = rest.partition(" ")
        if _is_number(head, 3):
            media.fmtp[int(head)] = params.strip()
    elif name == "ptime":
        text = rest.strip().split(".", 1)[0]
        if _is_number(text, 4):
            media.ptime = min(max(int(text), 1), MAX_PTIME)


def parse(text: str) -> SessionDescription:
    """Parse a session description; raise SdpError for anything malformed or too big."""
    if len(text) > MAX_SDP_CHARS:
        raise SdpError("SDP body too large")
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > MAX_LINES:
        raise SdpError("too many SDP lines")
    session = SessionDescription()
    media: MediaDescription | None = None
    seen_version = False
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            raise SdpError("SDP line too long")
        if len(line) < 2 or line[1] != "=":
            raise SdpError("malformed SDP line")
        kind, value = line[0], line[2:]
        if kind == "v":
            if value.strip() != "0":
                raise SdpError("unsupported SDP version")
            seen_version = True
        elif kind == "o" and media is None:
            session.origin = _origin(value)
        elif kind == "c":
            address = _connection(value)
            if media is None:
                session.connection = address
            else:
                media.connection = address
        elif kind == "m":
            if len(session.media) >= MAX_MEDIA:
                raise SdpError("too many m= lines")
            media = _media(value)
            session.media.append(media)
        elif kind == "a":
            _attribute(session, media, value)
    if not seen_version:
        raise SdpError("no v= line")
    return session


def _origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError("bad o= line")
    version = int(parts[2]) if _is_number(parts[2], 20) else 0
    return Origin(parts[0], parts[1], version, parts[4], parts[5])


def _codec_of(media: MediaDescription, payload_type: int) -> str | None:
    mapping = media.rtpmap.get(payload_type)
    if mapping is None:
        return STATIC_CODECS.get(payload_type)
    name = mapping.name.upper()
    if name in CODECS and mapping.rate == AUDIO_RATE and mapping.channels == 1:
        return name
    return None


def _payload_types(media: MediaDescription) -> list[int]:
    return [int(token) for token in media.formats if _is_number(token, 3)]


def _dtmf_of(media: MediaDescription) -> int | None:
    for payload_type in _payload_types(media):
        mapping = media.rtpmap.get(payload_type)
        if (
            mapping is not None
            and mapping.name.lower() == TELEPHONE_EVENT
            and mapping.rate == AUDIO_RATE
        ):
            return payload_type
    return None


def _choose(media: MediaDescription) -> tuple[int, str] | None:
    """Return the offerer's first PCMU or PCMA payload type, if the stream is usable."""
    if media.media != "audio" or media.port == 0 or media.proto not in RTP_PROFILES:
        return None
    for payload_type in _payload_types(media):
        codec = _codec_of(media, payload_type)
        if codec is not None:
            return payload_type, codec
    return None


def _remote(
    session: SessionDescription, media: MediaDescription
) -> tuple[str, int] | None:
    address = media.connection or session.connection
    if address is None:
        raise SdpError("no c= line for the audio stream")
    parsed = ipaddress.ip_address(address)
    if parsed.is_multicast:
        raise SdpError("multicast audio is not supported")
    if media.port == 0 or parsed.is_unspecified:
        return None
    return address, media.port


def _direction(session: SessionDescription, media: MediaDescription) -> str:
    direction = media.direction or session.direction or "sendrecv"
    address = media.connection or session.connection
    if address is not None and ipaddress.ip_address(address).is_unspecified:
        # RFC 2543 hold: the peer does not want our audio.
        return "inactive" if direction in ("recvonly", "inactive") else "sendonly"
    return direction


class SdpNegotiator:
    """Our side of one call's SDP offer/answer exchanges (RFC 3264)."""

    def __init__(self, host: str, port: int) -> None:
        """Describe our RTP address; host is an IPv4 or IPv6 literal."""
        self.host = str(ipaddress.ip_address(host))
        self.port = port
        self._address_type = "IP6" if ":" in self.host else "IP4"
        self._session_id = str(random.randrange(1, 2**62))
        self._version = random.randrange(1, 2**30)
        self._last_body: str | None = None
        self._offered_dtmf = DEFAULT_DTMF_PT

    def _document(self, media_lines: list[str]) -> str:
        body = "\r\n".join(
            [
                "s=-",
                f"c=IN {self._address_type} {self.host}",
                "t=0 0",
                *media_lines,
            ]
        )
        if self._last_body is not None and body != self._last_body:
            self._version += 1
        self._last_body = body
        origin = f"o=- {self._session_id} {self._version} IN {self._address_type} {self.host}"
        return f"v=0\r\n{origin}\r\n{body}\r\n"

    def offer(self) -> str:
        """Return our offer: PCMU, PCMA and telephone-event/8000 0-16, sendrecv."""
        dtmf = self._offered_dtmf
        return self._document(
            [
                f"m=audio {self.port} RTP/AVP 0 8 {dtmf}",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                f"a=rtpmap:{dtmf} telephone-event/8000",
                f"a=fmtp:{dtmf} 0-16",
                f"a=ptime:{PTIME}",
                "a=sendrecv",
            ]
        )

    def answer(self, offer_text: str) -> tuple[str, MediaParams]:
        """Answer the peer's offer; NoCommonCodecError when no audio stream is usable."""
        offer = parse(offer_text)
        chosen: int | None = None
        choice: tuple[int, str] | None = None
        for index, media in enumerate(offer.media):
            choice = _choose(media)
            if choice is not None:
                chosen = index
                break
        if chosen is None or choice is None:
            raise NoCommonCodecError(
                "no PCMU or PCMA audio stream over RTP/AVP in the offer"
            )
        media = offer.media[chosen]
        remote = _remote(offer, media)
        their_direction = _direction(offer, media)
        ours = _REVERSE[their_direction]
        payload_type, codec = choice
        dtmf = _dtmf_of(media)
        lines: list[str] = []
        for index, other in enumerate(offer.media):
            if index != chosen:
                lines.append(f"m={other.media} 0 {other.proto} {other.formats[0]}")
                continue
            formats = [str(payload_type)] + ([str(dtmf)] if dtmf is not None else [])
            lines += [
                f"m=audio {self.port} {media.proto} {' '.join(formats)}",
                f"a=rtpmap:{payload_type} {codec}/8000",
            ]
            if dtmf is not None:
                lines.append(f"a=rtpmap:{dtmf} telephone-event/8000")
                events = media.fmtp.get(dtmf)
                if events is not None and _EVENTS.fullmatch(events):
                    lines.append(f"a=fmtp:{dtmf} {events}")
            lines += [f"a=ptime:{PTIME}", f"a={ours}"]
        params = MediaParams(
            remote=remote,
            payload_type=payload_type,
            codec=codec,
            dtmf_payload_type=dtmf,
            send=ours in ("sendrecv", "sendonly") and remote is not None,
            receive=ours in ("sendrecv", "recvonly"),
            ptime=media.ptime,
        )
        return self._document(lines), params

    def accept_answer(self, answer_text: str) -> MediaParams:
        """Take the peer's answer to our offer; SdpError when it is unusable."""
        answer = parse(answer_text)
        audio = next((m for m in answer.media if m.media == "audio"), None)
        if audio is None or audio.port == 0:
            raise NoCommonCodecError("the answer rejected the audio stream")
        if audio.proto not in RTP_PROFILES:
            raise SdpError("the answer changed the audio transport")
        choice: tuple[int, str] | None = None
        for payload_type in _payload_types(audio):
            codec = _codec_of(audio, payload_type)
            if codec is not None:
                choice = payload_type, codec
                break
        if choice is None:
            raise NoCommonCodecError("the answer holds neither PCMU nor PCMA")
        remote = _remote(answer, audio)
        their_direction = _direction(answer, audio)
        return MediaParams(
            remote=remote,
            payload_type=choice[0],
            codec=choice[1],
            dtmf_payload_type=_dtmf_of(audio),
            send=their_direction in ("sendrecv", "recvonly") and remote is not None,
            receive=their_direction in ("sendrecv", "sendonly"),
            ptime=audio.ptime,
        )
