"""Small read-only helpers for raw SIP messages (as pjsua2's ``wholeMsg`` gives them)."""

from dataclasses import dataclass, field
import re

# RFC 3261 compact header forms that matter here.
_COMPACT_NAMES = {
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
}
_URI_USER_RE = re.compile(r"^(?:sips?|tel):(?:([^@;?>]*)@)?", re.IGNORECASE)
_ANSWER_AFTER_RE = re.compile(r";\s*answer-after\s*=\s*(\d+)", re.IGNORECASE)
_ALERT_DELAY_RE = re.compile(r";\s*delay\s*=\s*(\d+)", re.IGNORECASE)
_AUTO_ANSWER_RE = re.compile(r"auto-?answer|intercom", re.IGNORECASE)
_REASON_CAUSE_RE = re.compile(r"^\s*SIP\s*;(?:.*;)?\s*cause\s*=\s*(\d+)", re.IGNORECASE)
_DISPLAY_NAME_RE = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<')


@dataclass(slots=True)
class SipMessage:
    """The start line and headers of one SIP message."""

    start_line: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Return the first value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def all_values(self, name: str) -> list[str]:
        """Return every value of a header, in order."""
        return list(self.headers.get(name.lower(), ()))

    @property
    def request_uri(self) -> str | None:
        """Return the request-URI of a request, or None for a response."""
        parts = self.start_line.split(" ")
        if len(parts) == 3 and parts[2].upper().startswith("SIP/"):
            return parts[1]
        return None


def parse_message(text: str) -> SipMessage:
    """Parse the start line and headers of a SIP message; never raises."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    message = SipMessage(start_line=lines[0].strip() if lines else "")
    last_name: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last_name is not None:
            message.headers[last_name][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT_NAMES.get(key, key)
        message.headers.setdefault(key, []).append(value.strip())
        last_name = key
    return message


def uri_user(uri: str | None) -> str | None:
    """Return the user part of a SIP URI (``sip:2000@host`` gives ``2000``)."""
    if not uri:
        return None
    match = _URI_USER_RE.match(uri.strip().strip("<"))
    return match.group(1) if match and match.group(1) is not None else None


def display_name(name_addr: str) -> str:
    """Return the display name of a name-addr like ``"Front door" <sip:9001@pbx>``."""
    match = _DISPLAY_NAME_RE.match(name_addr)
    if not match:
        return ""
    quoted, bare = match.groups()
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted)
    return (bare or "").strip()


def answer_after(call_info: str | None, alert_info: str | None) -> int | None:
    """Return the auto-answer delay asked for by Call-Info or Alert-Info, if any.

    ``Call-Info: <uri>;answer-after=0`` (RFC 7462 style, used by most PBXs) wins;
    otherwise an Alert-Info carrying ``info=alert-autoanswer`` (or ``intercom``) means
    answer at once, or after its ``delay=`` seconds.
    """
    if call_info and (match := _ANSWER_AFTER_RE.search(call_info)):
        return int(match.group(1))
    if alert_info and _AUTO_ANSWER_RE.search(alert_info):
        delay = _ALERT_DELAY_RE.search(alert_info)
        return int(delay.group(1)) if delay else 0
    return None


def reason_cause(reason: str | None) -> int | None:
    """Return the cause of a ``Reason: SIP;cause=200;text="..."`` header."""
    if not reason:
        return None
    for part in reason.split(","):
        if match := _REASON_CAUSE_RE.match(part):
            return int(match.group(1))
    return None


def source_host(address: str) -> str:
    """Return the host of pjsua2's ``srcAddress`` (``127.0.0.1:5060``, ``[::1]:5060``)."""
    address = address.strip()
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address
