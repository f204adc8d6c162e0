"""Why a call ended, as both engines report it in `call_ended` (docs/protocol.md)."""

from dataclasses import dataclass
from typing import Final, Protocol

from ...protocol.payloads import CallDirection, EndCause

# Final codes that mean our side failed (no answer, a transport error, our own 500),
# not that the callee refused: 0 is pjsua's "no response at all".
LOCAL_FAILURE_CODES: Final = frozenset({0, 408, 500, 503})


class EndingCall(Protocol):
    """What a call knows about itself when it ends (each engine's call has it)."""

    @property
    def direction(self) -> CallDirection:
        """Inbound or outbound."""
        ...

    @property
    def answered(self) -> bool:
        """A 200 OK was sent (inbound) or received (outbound)."""
        ...

    @property
    def local_hangup(self) -> bool:
        """Home Assistant's side ended it (hangup, make_call's end)."""
        ...

    @property
    def remote_bye(self) -> bool:
        """The peer sent BYE."""
        ...

    @property
    def cancel_cause(self) -> int | None:
        """A CANCEL's Reason cause (200: answered elsewhere)."""
        ...


@dataclass(frozen=True, slots=True)
class CallEnding:
    """An `EndingCall` as plain values."""

    direction: CallDirection
    answered: bool  # a 200 OK was sent (inbound) or received (outbound)
    local_hangup: bool  # Home Assistant's side ended it (hangup, make_call's end)
    remote_bye: bool  # the peer sent BYE
    cancel_cause: int | None  # a CANCEL's Reason cause (200: answered elsewhere)


def end_cause(ending: EndingCall, code: int) -> EndCause:
    """Return the `call_ended` cause for a call that ended with final ``code``."""
    if ending.local_hangup:
        if ending.answered or ending.direction is CallDirection.OUTBOUND:
            return EndCause.LOCAL
        return EndCause.REJECTED
    if ending.answered:
        return EndCause.BYE if ending.remote_bye else EndCause.FAILED
    if ending.direction is CallDirection.INBOUND:
        if ending.cancel_cause == 200:
            return EndCause.ANSWERED_ELSEWHERE
        if ending.cancel_cause is not None or code == 487:
            return EndCause.CANCEL
        return EndCause.FAILED
    if code in LOCAL_FAILURE_CODES:
        return EndCause.FAILED
    return EndCause.REJECTED
