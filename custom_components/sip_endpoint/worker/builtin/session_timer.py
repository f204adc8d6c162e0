"""Session timers (RFC 4028), tolerated: answered, never enforced or refreshed.

A re-INVITE or UPDATE asking for a session interval gets it echoed in our 2xx with
the refresher the peer chose (``uac`` when it left the choice to us), so that the peer
keeps refreshing and we never have to. Only an interval below our minimum (90 s, the
RFC's floor) is refused, with 422 and ``Min-SE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sip.message import SipParseError, parse_delta_seconds, parse_params

if TYPE_CHECKING:
    from .sip.message import SipRequest

MIN_SE = 90


@dataclass(frozen=True, slots=True)
class SessionTimerAnswer:
    """What to do about a request's Session-Expires."""

    too_small: bool  # answer 422 with `Min-SE: MIN_SE`
    headers: tuple[tuple[str, str], ...]  # add these to the 2xx


def answer_session_timer(request: SipRequest) -> SessionTimerAnswer:
    """Return how to answer the Session-Expires of an INVITE or UPDATE."""
    value = request.headers.get("session-expires")
    if value is None:
        return SessionTimerAnswer(too_small=False, headers=())
    delta_text, _, param_text = value.partition(";")
    try:
        delta = parse_delta_seconds(delta_text)
        params = parse_params(param_text)
    except SipParseError:
        return SessionTimerAnswer(too_small=False, headers=())
    if delta < MIN_SE:
        return SessionTimerAnswer(too_small=True, headers=(("Min-SE", str(MIN_SE)),))
    if not _supports_timer(request):
        # RFC 4028 9: without the peer's support we just do not use a timer.
        return SessionTimerAnswer(too_small=False, headers=())
    refresher = (params.get("refresher") or "uac").lower()
    if refresher not in ("uac", "uas"):
        refresher = "uac"
    return SessionTimerAnswer(
        too_small=False,
        headers=(
            ("Session-Expires", f"{delta};refresher={refresher}"),
            ("Require", "timer"),
        ),
    )


def _supports_timer(request: SipRequest) -> bool:
    options = request.headers.get_all("supported") + request.headers.get_all("require")
    return any(option.strip().lower() == "timer" for option in options)
