"""DTMF digits carried by SIP INFO (application/dtmf-relay and application/dtmf)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .sip.message import SipRequest

DTMF_RELAY: Final = "application/dtmf-relay"
DTMF: Final = "application/dtmf"
DIGITS: Final = frozenset("0123456789*#ABCD")
MAX_BODY: Final = 1024


def info_digit(request: SipRequest) -> str | None:
    """Return the digit an INFO carries, or None when it carries none we know."""
    kind = request.content_type
    if kind not in (DTMF_RELAY, DTMF) or len(request.body) > MAX_BODY:
        return None
    text = request.body.decode("utf-8", "replace")
    if kind == DTMF:
        return _digit(text.strip())
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip().lower() == "signal":
            return _digit(value.strip())
    return None


def _digit(text: str) -> str | None:
    if text == "10":  # some phones send * and # as their RFC 4733 event numbers
        return "*"
    if text == "11":
        return "#"
    upper = text.upper()
    return upper if len(upper) == 1 and upper in DIGITS else None
