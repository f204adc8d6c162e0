"""SIP messages (RFC 3261 7, 20, 25): a bounded parser, a serialiser and header helpers.

Everything here is pure and synchronous. The parser faces the network: every size is
bounded and every malformed input raises :class:`SipParseError` (a ``ValueError``),
never anything else.

Public API
----------
Errors and limits
    ``SipParseError(reason, *, status=400, answerable=None)``: ``reason`` is short and
    never echoes large input; ``status`` is the response code a server should use
    (400; 414 URI too long; 416 unsupported Request-URI scheme; 505 version; 513 too
    large); ``answerable`` is a :class:`SipRequest` holding just enough (every
    Via line but an empty one, From, To, Call-ID, CSeq, copied as they came) to
    answer the refused request with :func:`make_response`, or None when it cannot be answered (a response, no
    parseable top Via, or From/To/Call-ID/CSeq missing).
    ``MAX_MESSAGE_BYTES``, ``MAX_START_LINE_BYTES``, ``MAX_HEADER_LINE_BYTES``,
    ``MAX_HEADERS``, ``MAX_HEADER_VALUES``, ``MAX_URI_BYTES`` (a body is bounded by
    ``MAX_MESSAGE_BYTES``, as the whole message is).

Messages
    ``parse_message(data: bytes) -> SipRequest | SipResponse``: one whole message (a UDP
    datagram, or one message cut from a stream by :func:`stream_message_length`).
    Content-Length, when present, must not exceed the body (a longer body is cut, RFC
    3261 18.3); without it the body is the rest of the data.
    ``stream_message_length(buffer) -> int | None``: the length of the first message in
    a stream buffer (headers + Content-Length), None while incomplete; raises
    :class:`SipParseError` when the framing is broken or too big.
    ``stream_length_from_head(head) -> int``: the same from a head already found
    (for readers that scan incrementally).
    ``SipMessage`` (base), ``SipRequest(method, uri, headers, body=b"")``,
    ``SipResponse(status, reason, headers, body=b"")`` (``from_network``: True when
    parsed, False when built locally); both have ``to_bytes()`` (sets
    Content-Length from the body) and typed accessors: ``call_id``, ``cseq``, ``vias``,
    ``top_via``, ``from_addr``, ``to_addr``, ``max_forwards``, ``expires``,
    ``min_expires``, ``contacts()``, ``content_type``, ``header(name)``,
    ``replace_top_via(via)``. Parsing checks Via, From, To, Call-ID, CSeq (method equal
    to the request's), Max-Forwards (0-255), Expires, Contact, Route and Record-Route,
    and that single headers appear once; a Request-URI with headers is refused.
    ``Headers``: ordered, case-insensitive, compact forms accepted; ``get``,
    ``get_lines`` (every line, unsplit), ``get_all`` (comma-split for list headers,
    at most ``MAX_HEADER_VALUES``), ``count``, ``add`` (refuses CR, LF, NUL),
    ``set``, ``remove``, ``items``, ``copy``, ``in``, ``len``.
    ``make_response(request, status, reason=None, *, to_tag=None, headers=(),
    body=b"", content_type=None, copy_record_route=False) -> SipResponse`` (RFC 3261
    8.2.6). ``REASON_PHRASES``.
    ``new_branch()``, ``new_tag()``, ``new_call_id(host)``.

Header values
    ``SipUri`` / ``parse_uri(text, *, any_scheme=False)`` / ``str(uri)``: sip, sips,
    tel (``host_port``, ``transport``); a password is dropped; with ``any_scheme``
    (used for name-addr) other schemes are kept in ``opaque``. ``NameAddr`` / ``parse_name_addr(text)`` / ``str(addr)`` (``tag``,
    ``expires``). ``Via(transport, host, port=None, params={}, protocol="SIP/2.0")`` /
    ``parse_via(text)`` / ``str(via)`` (``branch``, ``received``, ``has_rport``,
    ``rport``, ``maddr``; IPv6 hosts keep their brackets). ``CSeq`` / ``parse_cseq(text)``.
    ``parse_contacts(values) -> list[NameAddr] | Literal["*"]``.
    ``parse_params(text, separator=";", *, unquote=True) -> dict[str, str | None]``
    (names lower-cased; also for digest ``k=v, k="v"`` lists with ``separator=","``),
    ``split_header_values(text)``, ``quote_string(text)``, ``unquote_string(text)``,
    ``parse_delta_seconds(text)``, ``canonical_header_name(name)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
import secrets
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

MAX_MESSAGE_BYTES: Final = 65535
MAX_START_LINE_BYTES: Final = 4096
MAX_HEADER_LINE_BYTES: Final = 8192
MAX_HEADERS: Final = 128
MAX_HEADER_VALUES: Final = 256
MAX_URI_BYTES: Final = 2048
MAX_DELTA_SECONDS: Final = 2**32 - 1
MAX_CSEQ: Final = 2**31 - 1

SIP_VERSION: Final = "SIP/2.0"
BRANCH_MAGIC: Final = "z9hG4bK"

_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9.])?$")
_IPV6_RE: Final = re.compile(r"^\[[0-9A-Fa-f:.]{2,45}\]$")
_SCHEME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_CTL_RE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VIA_RE: Final = re.compile(
    r"^([A-Za-z0-9.!%*_+`'~-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s*/\s*"
    r"([A-Za-z0-9.!%*_+`'~-]+)\s+(.*)$",
    re.DOTALL,
)
_LINE_BREAK_RE: Final = re.compile(r"[\r\n\x00]")
_VERSION_RE: Final = re.compile(r"^SIP/(\d+)\.(\d+)$", re.IGNORECASE)
_CONTENT_LENGTH_RE: Final = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*(\d{1,10})[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)

# Compact forms (RFC 3261 7.3.3 and later RFCs).
_COMPACT: Final = {
    "i": "call-id",
    "m": "contact",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "u": "allow-events",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "y": "identity",
    "n": "identity-info",
}

_CANONICAL: Final = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "Identity",
        "Identity-Info",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "MIME-Version",
        "Organization",
        "Path",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "RAck",
        "Reason",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Reject-Contact",
        "Reply-To",
        "Request-Disposition",
        "Require",
        "Retry-After",
        "Route",
        "RSeq",
        "Server",
        "Session-Expires",
        "Subject",
        "Subscription-State",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

# Headers whose value is a comma-separated list (RFC 3261 7.3.1); the others (notably
# the authentication headers, Date and Retry-After) keep their commas.
_LIST_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-contact",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "in-reply-to",
        "path",
        "proxy-require",
        "record-route",
        "reject-contact",
        "require",
        "route",
        "supported",
        "unsupported",
        "via",
        "warning",
    }
)

# Headers that may appear once at most.
_SINGLE_HEADERS: Final = frozenset(
    {"call-id", "cseq", "from", "to", "content-length", "max-forwards", "content-type"}
)

REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


class SipParseError(ValueError):
    """A SIP message or header value that cannot be parsed, with a short reason."""

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        answerable: SipRequest | None = None,
    ) -> None:
        """Keep the reason, the status to answer with and what is needed to answer."""
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.answerable = answerable


# --- small text helpers -------------------------------------------------------------


def canonical_header_name(name: str) -> str:
    """Return the usual spelling of a header name (compact forms expanded)."""
    key = name.strip().lower()
    key = _COMPACT.get(key, key)
    return _CANONICAL.get(key, name.strip())


def _key(name: str) -> str:
    key = name.strip().lower()
    return _COMPACT.get(key, key)


def quote_string(text: str) -> str:
    """Return ``text`` as a SIP quoted-string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote_string(text: str) -> str:
    """Return the content of a quoted-string (or ``text`` unchanged when unquoted)."""
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    out: list[str] = []
    index = 1
    end = len(text) - 1
    while index < end:
        char = text[index]
        if char == "\\" and index + 1 < end:
            index += 1
            char = text[index]
        out.append(char)
        index += 1
    return "".join(out)


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside quoted strings and ``<...>``."""
    if '"' not in text and "<" not in text:
        plain = text.split(separator, MAX_HEADER_VALUES + 1)
        if len(plain) > MAX_HEADER_VALUES + 1:
            raise SipParseError("too many values")
        return plain
    parts: list[str] = []
    start = 0
    in_quote = False
    depth = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if in_quote:
            if char == "\\":
                index += 1
            elif char == '"':
                in_quote = False
        elif char == '"':
            in_quote = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
            if len(parts) > MAX_HEADER_VALUES:
                raise SipParseError("too many values")
        index += 1
    if in_quote:
        raise SipParseError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def split_header_values(text: str) -> list[str]:
    """Split a list header value at top-level commas (not in quotes or ``<...>``)."""
    values = [part.strip() for part in _split_top_level(text, ",")]
    return [value for value in values if value]


def parse_params(
    text: str, separator: str = ";", *, unquote: bool = True
) -> dict[str, str | None]:
    """Parse ``name[=value]`` parameters separated by ``separator``.

    Names are lower-cased; a value is unquoted unless ``unquote`` is False. Leading
    separators and empty items are skipped. Quotes protect separators.
    """
    params: dict[str, str | None] = {}
    for raw_item in _split_top_level(text, separator):
        item = raw_item.strip()
        if not item:
            continue
        name, has_value, value = item.partition("=")
        name = name.strip().lower()
        if not name or not _TOKEN_RE.match(name):
            raise SipParseError("bad parameter name")
        if not has_value:
            params[name] = None
            continue
        value = value.strip()
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"'):
                raise SipParseError("bad quoted parameter")
            params[name] = unquote_string(value) if unquote else value
        else:
            params[name] = value
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(
        f";{name}" if value is None else f";{name}={value}"
        for name, value in params.items()
    )


def parse_delta_seconds(text: str) -> int:
    """Parse a delta-seconds value (Expires, Min-Expires, expires param)."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise SipParseError("bad delta-seconds")
    return min(int(text), MAX_DELTA_SECONDS)


# --- URIs ---------------------------------------------------------------------------


@dataclass(slots=True)
class SipUri:
    """A sip, sips or tel URI. For tel, ``user`` holds the number and ``host`` is empty.

    The password of ``user:password@`` is never kept. A URI of another scheme (only
    accepted in header fields) keeps everything after the colon in ``opaque``.
    """

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    opaque: str | None = None

    def __str__(self) -> str:
        """Format the URI."""
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            text = f"tel:{self.user or ''}"
        else:
            text = f"{self.scheme}:"
            if self.user is not None:
                text += f"{self.user}@"
            text += self.host
            if self.port is not None:
                text += f":{self.port}"
        text += _format_params(self.params)
        if self.headers:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return text

    @property
    def host_port(self) -> str:
        """Return ``host[:port]``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def transport(self) -> str | None:
        """Return the ``transport`` parameter, lower-cased, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None


def _parse_host_port(text: str) -> tuple[str, int | None]:
    """Parse ``host[:port]`` where host may be ``[IPv6]``."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("bad IPv6 reference")
        host = text[: end + 1]
        rest = text[end + 1 :]
        if not _IPV6_RE.match(host):
            raise SipParseError("bad IPv6 reference")
        if rest and not rest.startswith(":"):
            raise SipParseError("bad host")
        port_text = rest[1:] if rest else None
    else:
        host, has_port, port_text_raw = text.partition(":")
        port_text = port_text_raw if has_port else None
        if not _HOST_RE.match(host):
            raise SipParseError("bad host")
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
            raise SipParseError("bad port")
        port = int(port_text)
        if not 0 < port < 65536:
            raise SipParseError("bad port")
    return host, port


def parse_uri(text: str, *, any_scheme: bool = False) -> SipUri:
    """Parse a sip, sips or tel URI.

    Other schemes raise :class:`SipParseError` with status 416, unless ``any_scheme``
    (header fields, RFC 4475 3.3.3): then the URI is kept opaque.
    """
    text = text.strip()
    if len(text) > MAX_URI_BYTES:
        raise SipParseError("URI too long", status=414)
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.match(scheme):
        raise SipParseError("bad URI")
    scheme = scheme.lower()
    if _CTL_RE.search(rest) or any(char in rest for char in ' \t<>"'):
        raise SipParseError("bad URI characters")
    if scheme == "tel":
        number, _, param_text = rest.partition(";")
        if not number:
            raise SipParseError("bad tel URI")
        return SipUri("tel", number, "", None, parse_params(param_text))
    if scheme not in ("sip", "sips"):
        if any_scheme and rest:
            return SipUri(scheme, opaque=rest)
        raise SipParseError("unsupported URI scheme", status=416)
    user: str | None = None
    # '@' may not appear unescaped in parameters or headers: the last one ends the
    # userinfo, which may itself hold '?' and ';' (RFC 3261 25.1, RFC 4475 3.1.1.4).
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user = userinfo.partition(":")[0]  # the password is dropped
        if not user:
            raise SipParseError("bad URI user")
    rest, has_headers, header_text = rest.partition("?")
    host_text, _, param_text = rest.partition(";")
    host, port = _parse_host_port(host_text)
    params = parse_params(param_text)
    headers: dict[str, str] = {}
    if has_headers:
        for item in header_text.split("&"):
            name, _, value = item.partition("=")
            if not name:
                raise SipParseError("bad URI header")
            headers[name] = value
            if len(headers) > MAX_HEADER_VALUES:
                raise SipParseError("too many URI headers")
    return SipUri(scheme, user, host, port, params, headers)


# --- name-addr ----------------------------------------------------------------------


@dataclass(slots=True)
class NameAddr:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route)."""

    uri: SipUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        """Format as a name-addr (always with angle brackets)."""
        text = f"<{self.uri}>"
        if self.display_name:
            text = f"{quote_string(self.display_name)} {text}"
        return text + _format_params(self.params)

    @property
    def tag(self) -> str | None:
        """Return the ``tag`` parameter, or None."""
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """Return the ``expires`` parameter (Contact), or None when absent."""
        value = self.params.get("expires")
        return None if value is None else parse_delta_seconds(value)


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``"Name" <uri>;params``, ``Name <uri>;params`` or ``uri;params``."""
    text = text.strip()
    if len(text) > MAX_HEADER_LINE_BYTES:
        raise SipParseError("value too long")
    display: str | None = None
    if text.startswith('"'):
        index = 1
        while index < len(text):
            if text[index] == "\\":
                index += 2
                continue
            if text[index] == '"':
                break
            index += 1
        else:
            raise SipParseError("unterminated display name")
        display = unquote_string(text[: index + 1])
        text = text[index + 1 :].lstrip()
        if not text.startswith("<"):
            raise SipParseError("display name without <uri>")
    if "<" in text.partition(";")[0] or text.startswith("<"):
        open_at = text.find("<")
        close_at = text.find(">", open_at)
        if close_at < 0:
            raise SipParseError("missing >")
        if display is None:
            words = text[:open_at].strip()
            if words and not all(_TOKEN_RE.match(word) for word in words.split()):
                raise SipParseError("bad display name")
            display = words or None
        uri = parse_uri(text[open_at + 1 : close_at], any_scheme=True)
        param_text = text[close_at + 1 :].strip()
        if param_text and not param_text.startswith(";"):
            raise SipParseError("junk after >")
    else:
        uri_text, _, param_text = text.partition(";")
        if "?" in uri_text or "," in uri_text:
            raise SipParseError("addr-spec needs <>")
        uri = parse_uri(uri_text, any_scheme=True)
    params = parse_params(param_text, unquote=False)
    return NameAddr(uri, display, params)


def parse_contacts(values: Iterable[str]) -> list[NameAddr] | Literal["*"]:
    """Parse Contact values (already split): a list of addresses, or ``"*"``."""
    items = list(values)
    if any(value.strip() == "*" for value in items):
        if len(items) != 1:
            raise SipParseError("* Contact with others")
        return "*"
    return [parse_name_addr(value) for value in items]


# --- Via ----------------------------------------------------------------------------


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport;received=...``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = SIP_VERSION

    def __str__(self) -> str:
        """Format the Via value."""
        port = "" if self.port is None else f":{self.port}"
        params = _format_params(self.params)
        return f"{self.protocol}/{self.transport} {self.host}{port}{params}"

    @property
    def branch(self) -> str | None:
        """Return the branch parameter, or None."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """Return the received parameter, or None."""
        return self.params.get("received")

    @property
    def maddr(self) -> str | None:
        """Return the maddr parameter, or None."""
        return self.params.get("maddr")

    @property
    def has_rport(self) -> bool:
        """Return True when the rport parameter is present (with or without value)."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """Return the rport value, or None when absent or empty."""
        value = self.params.get("rport")
        if value is None or not value.isascii() or not value.isdigit():
            return None
        port = int(value)
        return port if 0 < port < 65536 else None


def parse_via(text: str) -> Via:
    """Parse one Via value (LWS allowed around ``/``)."""
    text = text.strip()
    match = _VIA_RE.match(text)
    if match is None:
        raise SipParseError("bad Via")
    protocol = f"{match.group(1)}/{match.group(2)}".upper()
    transport = match.group(3).upper()
    sent_by, _, param_text = match.group(4).partition(";")
    host, port = _parse_host_port(sent_by)
    params = parse_params(param_text, unquote=False)
    return Via(transport, host, port, params, protocol)


# --- CSeq ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CSeq:
    """A CSeq value: sequence number and method."""

    seq: int
    method: str

    def __str__(self) -> str:
        """Format the CSeq value."""
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """Parse ``<number> <method>``."""
    parts = text.split()
    if len(parts) != 2:
        raise SipParseError("bad CSeq")
    number, method = parts
    if not number.isascii() or not number.isdigit() or len(number) > 10:
        raise SipParseError("bad CSeq number")
    seq = int(number)
    if seq > MAX_CSEQ:
        raise SipParseError("CSeq number too large")
    if not _TOKEN_RE.match(method):
        raise SipParseError("bad CSeq method")
    return CSeq(seq, method)


# --- headers ------------------------------------------------------------------------


class Headers:
    """Ordered SIP headers; names are case-insensitive and compact forms accepted."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        """Start with ``items`` (name, value) pairs."""
        # (lookup key, name as written out, value)
        self._items: list[tuple[str, str, str]] = []
        for name, value in items:
            self.add(name, value)

    def __contains__(self, name: object) -> bool:
        """Return True when a header of this name is present."""
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(item[0] == key for item in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Iterate over (name, value) pairs in order."""
        return iter(self.items())

    def __len__(self) -> int:
        """Return the number of header lines."""
        return len(self._items)

    def __repr__(self) -> str:
        """Return a debugging representation."""
        return f"Headers({self.items()!r})"

    def items(self) -> list[tuple[str, str]]:
        """Return the (name, value) pairs in order."""
        return [(name, value) for _, name, value in self._items]

    def copy(self) -> Headers:
        """Return an independent copy."""
        copy = Headers()
        copy._items = list(self._items)
        return copy

    def add(self, name: str, value: str) -> None:
        """Append a header line (the name is stored in its usual spelling)."""
        if _CTL_RE.search(name) or _LINE_BREAK_RE.search(value):
            raise ValueError("line breaks in a header")
        self._append_parsed(name, value.strip())

    def _append_parsed(self, name: str, value: str) -> None:
        """Append a parsed line as it came (quoted control characters included)."""
        self._items.append((_key(name), canonical_header_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of this header by one (at the first one's place)."""
        key = _key(name)
        for index, item in enumerate(self._items):
            if item[0] == key:
                if _LINE_BREAK_RE.search(value):
                    raise ValueError("line breaks in a header")
                self._items[index] = (key, canonical_header_name(name), value.strip())
                self._items = [
                    pair
                    for position, pair in enumerate(self._items)
                    if position <= index or pair[0] != key
                ]
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Remove every line of this header."""
        key = _key(name)
        self._items = [item for item in self._items if item[0] != key]

    def get(self, name: str) -> str | None:
        """Return the first line's value of a header, or None."""
        key = _key(name)
        for item in self._items:
            if item[0] == key:
                return item[2]
        return None

    def get_lines(self, name: str) -> list[str]:
        """Return the values of every line of a header, unsplit."""
        key = _key(name)
        return [item[2] for item in self._items if item[0] == key]

    def count(self, name: str) -> int:
        """Return how many lines of this header there are."""
        key = _key(name)
        return sum(1 for item in self._items if item[0] == key)

    def get_all(self, name: str) -> list[str]:
        """Return every value of a header; list headers are split at commas."""
        lines = self.get_lines(name)
        if _key(name) not in _LIST_HEADERS:
            return lines
        values: list[str] = []
        for line in lines:
            values.extend(split_header_values(line))
            if len(values) > MAX_HEADER_VALUES:
                raise SipParseError("too many header values")
        return values


# --- messages -----------------------------------------------------------------------


class SipMessage:
    """What requests and responses share: headers, body and typed accessors."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        """Keep headers and body."""
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialise; Content-Length is set from the body."""
        lines = [self._start_line()]
        lines.extend(
            f"{name}: {value}"
            for key, name, value in self.headers._items  # noqa: SLF001
            if key != "content-length"
        )
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def header(self, name: str) -> str | None:
        """Return the first value of a header, or None."""
        return self.headers.get(name)

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {canonical_header_name(name)}")
        return value

    @property
    def call_id(self) -> str:
        """Return the Call-ID (raises :class:`SipParseError` when missing)."""
        return self._required("call-id")

    @property
    def cseq(self) -> CSeq:
        """Return the parsed CSeq."""
        return parse_cseq(self._required("cseq"))

    @property
    def vias(self) -> list[Via]:
        """Return every Via, top first."""
        return [parse_via(value) for value in self.headers.get_all("via")]

    @property
    def top_via(self) -> Via:
        """Return the top Via."""
        values = self.headers.get_all("via")
        if not values:
            raise SipParseError("missing Via")
        return parse_via(values[0])

    def replace_top_via(self, via: Via) -> None:
        """Replace the top Via value (a comma-joined first line is split into lines).

        The other header lines are kept exactly as they are.
        """
        items = self.headers._items  # noqa: SLF001
        for index, (key, name, value) in enumerate(items):
            if key == "via":
                rest = split_header_values(value)[1:]
                new = [(key, name, str(via))] + [(key, name, item) for item in rest]
                items[index : index + 1] = new
                return
        raise SipParseError("missing Via")

    @property
    def from_addr(self) -> NameAddr:
        """Return the parsed From."""
        return parse_name_addr(self._required("from"))

    @property
    def to_addr(self) -> NameAddr:
        """Return the parsed To."""
        return parse_name_addr(self._required("to"))

    @property
    def max_forwards(self) -> int | None:
        """Return Max-Forwards, or None when absent."""
        value = self.headers.get("max-forwards")
        if value is None:
            return None
        number = value.strip()
        if not number.isascii() or not number.isdigit() or len(number) > 10:
            raise SipParseError("bad Max-Forwards")
        hops = int(number)  # leading zeros are allowed (RFC 4475 3.1.1.1)
        if hops > 255:
            raise SipParseError("Max-Forwards too large")
        return hops

    @property
    def expires(self) -> int | None:
        """Return the Expires header, or None when absent."""
        value = self.headers.get("expires")
        return None if value is None else parse_delta_seconds(value)

    @property
    def min_expires(self) -> int | None:
        """Return the Min-Expires header, or None when absent."""
        value = self.headers.get("min-expires")
        return None if value is None else parse_delta_seconds(value)

    @property
    def content_type(self) -> str | None:
        """Return the media type of Content-Type, lower-cased, without parameters."""
        value = self.headers.get("content-type")
        return None if value is None else value.partition(";")[0].strip().lower()

    def contacts(self) -> list[NameAddr] | Literal["*"]:
        """Return the parsed Contact values, or ``"*"``."""
        return parse_contacts(self.headers.get_all("contact"))


class SipRequest(SipMessage):
    """A SIP request."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: SipUri,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        """Keep the method, Request-URI, headers and body."""
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def __repr__(self) -> str:
        """Return a short description (no header values)."""
        return f"<SipRequest {self.method} {self.uri}>"

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"


class SipResponse(SipMessage):
    """A SIP response.

    ``from_network`` is True for a response parsed from the network and False for one
    built here (a transaction's local 408 or 503, or one we are about to send).
    """

    __slots__ = ("from_network", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        """Keep the status, reason phrase, headers and body."""
        super().__init__(headers, body)
        self.status = status
        self.reason = REASON_PHRASES.get(status, "") if reason is None else reason
        self.from_network = False

    def __repr__(self) -> str:
        """Return a short description."""
        return f"<SipResponse {self.status} {self.reason}>"

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"


# --- parsing ------------------------------------------------------------------------


def stream_message_length(buffer: bytes | bytearray) -> int | None:
    """Return the length of the first message in a stream buffer, None if incomplete.

    The buffer must start at the start line (the caller skips keep-alive CRLFs).
    Raises :class:`SipParseError` when the head is too long, Content-Length is missing
    or bad, or the message would exceed :data:`MAX_MESSAGE_BYTES`.
    """
    end = buffer.find(b"\r\n\r\n", 0, MAX_MESSAGE_BYTES + 4)
    if end < 0:
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise SipParseError("message head too long")
        return None
    total = stream_length_from_head(buffer[:end])
    return total if len(buffer) >= total else None


def stream_length_from_head(head: bytes | bytearray) -> int:
    """Return a stream message's whole length from its head (without the blank line).

    Raises :class:`SipParseError` when Content-Length is missing, repeated or bad, or
    the message would exceed :data:`MAX_MESSAGE_BYTES`.
    """
    if len(head) > MAX_MESSAGE_BYTES:
        raise SipParseError("message head too long")
    matches = _CONTENT_LENGTH_RE.findall(bytes(head))
    if len(matches) != 1:
        raise SipParseError("stream message needs one Content-Length")
    total = len(head) + 4 + int(matches[0])
    if total > MAX_MESSAGE_BYTES:
        raise SipParseError("message too large")
    return total


def _split_head(text: str) -> tuple[str, list[str]]:
    """Return the start line and the unfolded header lines."""
    lines = text.split("\r\n")
    start_line = lines[0]
    if len(start_line) > MAX_START_LINE_BYTES:
        raise SipParseError("start line too long", status=414)
    headers: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                raise SipParseError("continuation before first header")
            headers[-1] += " " + line.strip(" \t")
        else:
            headers.append(line)
            if len(headers) > MAX_HEADERS:
                raise SipParseError("too many headers")
        if len(headers[-1]) > MAX_HEADER_LINE_BYTES:
            raise SipParseError("header line too long")
    return start_line, headers


def _parse_headers(lines: list[str]) -> Headers:
    headers = Headers()
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not name or not _TOKEN_RE.match(name):
            raise SipParseError("bad header line")
        if "\r" in value or "\n" in value:
            raise SipParseError("bare CR or LF in a header")
        headers._append_parsed(name, value.strip(" \t"))  # noqa: SLF001
    return headers


def _answerable(headers: Headers) -> SipRequest | None:
    """Return a request with what a response copies, or None when it cannot be answered.

    The top Via must parse (the response is routed by it); From, To, Call-ID and
    CSeq must be present and are copied as they came (RFC 3261 8.2.6.2).
    """
    try:
        vias = headers.get_all("via")
        if not vias:
            return None
        parse_via(vias[0])
    except SipParseError:
        return None
    copy = Headers()
    for name in ("via", "from", "to", "call-id", "cseq"):
        lines = headers.get_lines(name)
        if not lines:
            return None
        for value in lines if name == "via" else lines[:1]:
            if value.strip():  # an empty Via line is not echoed
                copy._append_parsed(name, value)  # noqa: SLF001
    return SipRequest("INVALID", SipUri(host="invalid"), copy)


def _check_vias(headers: Headers) -> None:
    """Check that every Via value parses, and that none is empty.

    The Via grammar has no empty element (RFC 3261 20.42, 25.1): an empty line or
    an empty value between commas is malformed like any other bad Via.
    """
    lines = headers.get_lines("via")
    if not lines:
        raise SipParseError("missing Via")
    count = 0
    for line in lines:
        for part in _split_top_level(line, ","):
            count += 1
            if count > MAX_HEADER_VALUES:
                raise SipParseError("too many header values")
            value = part.strip()
            if not value:
                raise SipParseError("empty Via")
            parse_via(value)


def _check_common(headers: Headers) -> None:
    """Check what every request and response needs and what must parse."""
    for name in ("call-id", "cseq", "from", "to"):
        if name not in headers:
            raise SipParseError(f"missing {canonical_header_name(name)}")
    seen: set[str] = set()
    for key, _, _ in headers._items:  # noqa: SLF001
        if key in _SINGLE_HEADERS:
            if key in seen:
                raise SipParseError(f"duplicate {canonical_header_name(key)}")
            seen.add(key)
    _check_vias(headers)
    parse_name_addr(headers.get("from") or "")
    parse_name_addr(headers.get("to") or "")
    parse_cseq(headers.get("cseq") or "")
    if not (headers.get("call-id") or "").strip():
        raise SipParseError("empty Call-ID")
    if " " in (headers.get("call-id") or "").strip():
        raise SipParseError("bad Call-ID")
    message = SipMessage(headers)
    _ = message.max_forwards
    _ = message.expires
    contacts = headers.get_all("contact")
    if contacts:
        parsed = parse_contacts(contacts)
        if parsed != "*":
            for contact in parsed:
                _ = contact.expires
    for name in ("route", "record-route"):
        for value in headers.get_all(name):
            parse_name_addr(value)


def _parse_start_line(line: str) -> SipRequest | SipResponse:
    if line.startswith(("SIP/", "sip/")) and not line.lower().startswith("sip:"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not _VERSION_RE.match(version):
            raise SipParseError("bad status line")
        if version.upper() != SIP_VERSION:
            raise SipParseError("unsupported SIP version")
        if len(code) != 3 or not code.isascii() or not code.isdigit():
            raise SipParseError("bad status code")
        status = int(code)
        if not 100 <= status <= 699:
            raise SipParseError("bad status code")
        return SipResponse(status, reason)
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError("bad request line")
    method, uri_text, version = parts
    if not _TOKEN_RE.match(method):
        raise SipParseError("bad method")
    if not _VERSION_RE.match(version):
        raise SipParseError("bad request line")
    if version.upper() != SIP_VERSION:
        raise SipParseError("unsupported SIP version", status=505)
    uri = parse_uri(uri_text)
    if uri.headers:
        raise SipParseError("headers in the Request-URI")  # RFC 4475 3.1.2.5
    return SipRequest(method, uri)


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one SIP message from ``data`` (leading CRLFs are skipped).

    Raises :class:`SipParseError` for anything malformed or beyond a size bound.
    """
    try:
        return _parse_message(data)
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError) as err:
        raise SipParseError("malformed message") from err


def _parse_message(data: bytes) -> SipRequest | SipResponse:
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError("message too large", status=513)
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipParseError("no end of headers")
    head = data[start:end].decode("utf-8", "surrogateescape")
    body = data[end + 4 :]
    start_line, header_lines = _split_head(head)
    headers: Headers | None = None
    message: SipRequest | SipResponse | None = None
    try:
        headers = _parse_headers(header_lines)
        message = _parse_start_line(start_line)
        message.headers = headers
        _check_common(headers)
        message.body = _body(headers, body)
        if isinstance(message, SipResponse):
            message.from_network = True
        _check_request(message)
    except SipParseError as err:
        is_request = isinstance(message, SipRequest) or (
            message is None and _looks_like_request(start_line)
        )
        if headers is not None and is_request:
            err.answerable = _answerable(headers)
        raise
    return message


def _body(headers: Headers, body: bytes) -> bytes:
    """Return the body cut to Content-Length (RFC 3261 18.3)."""
    length_text = headers.get("content-length")
    if length_text is not None:
        text = length_text.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 10:
            raise SipParseError("bad Content-Length")
        length = int(text)
        if length > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:length]
    return body  # bounded by MAX_MESSAGE_BYTES, as the whole message is


def _check_request(message: SipRequest | SipResponse) -> None:
    """Check what only requests need."""
    if isinstance(message, SipRequest) and message.cseq.method != message.method:
        raise SipParseError("CSeq method does not match")


def _looks_like_request(start_line: str) -> bool:
    method = start_line.partition(" ")[0]
    return bool(_TOKEN_RE.match(method)) and not start_line.upper().startswith("SIP/")


# --- building -----------------------------------------------------------------------


def new_branch() -> str:
    """Return a new RFC 3261 branch (``z9hG4bK`` + random)."""
    return BRANCH_MAGIC + secrets.token_hex(10)


def new_tag() -> str:
    """Return a new From/To tag."""
    return secrets.token_hex(8)


def new_call_id(host: str) -> str:
    """Return a new Call-ID ``random@host``."""
    return f"{secrets.token_hex(12)}@{host}"


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    copy_record_route: bool = False,
) -> SipResponse:
    """Build a response to ``request`` (RFC 3261 8.2.6).

    Via (every value, in order), From, To, Call-ID and CSeq are copied; ``to_tag`` is
    added to To when To has no tag yet (never for 100 Trying, 8.2.6.2). Record-Route is
    copied when ``copy_record_route`` (dialog-creating responses, 12.1.1).
    """
    out = Headers()
    for value in request.headers.get_lines("via"):
        out._append_parsed("Via", value)  # noqa: SLF001
    out._append_parsed("From", request.headers.get("from") or "")  # noqa: SLF001
    to_value = request.headers.get("to") or ""
    if to_tag is not None and status != 100:
        try:
            has_tag = parse_name_addr(to_value).tag is not None
        except SipParseError:
            has_tag = True
        if not has_tag:
            to_value = f"{to_value};tag={to_tag}"
    out._append_parsed("To", to_value)  # noqa: SLF001
    out._append_parsed("Call-ID", request.headers.get("call-id") or "")  # noqa: SLF001
    out._append_parsed("CSeq", request.headers.get("cseq") or "")  # noqa: SLF001
    if copy_record_route:
        for value in request.headers.get_lines("record-route"):
            out._append_parsed("Record-Route", value)  # noqa: SLF001
    for name, value in headers:
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    return SipResponse(status, reason, out, body)
