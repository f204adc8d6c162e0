"""The `call_ended` cause both engines give (worker/core/end_cause.py)."""

from __future__ import annotations

import pytest

from custom_components.sip_endpoint.protocol.payloads import CallDirection, EndCause
from custom_components.sip_endpoint.worker.core.end_cause import CallEnding, end_cause

IN = CallDirection.INBOUND
OUT = CallDirection.OUTBOUND


@pytest.mark.parametrize(
    ("direction", "local", "answered", "bye", "cancel", "code", "cause"),
    [
        (IN, True, True, False, None, 200, EndCause.LOCAL),
        (IN, True, False, False, None, 486, EndCause.REJECTED),
        (OUT, True, False, False, None, 487, EndCause.LOCAL),
        (IN, False, True, True, None, 200, EndCause.BYE),
        (OUT, False, True, False, None, 408, EndCause.FAILED),
        (IN, False, False, False, 200, 487, EndCause.ANSWERED_ELSEWHERE),
        (IN, False, False, False, 16, 487, EndCause.CANCEL),
        (IN, False, False, False, None, 487, EndCause.CANCEL),
        (IN, False, False, False, None, 500, EndCause.FAILED),
        (OUT, False, False, False, None, 0, EndCause.FAILED),
        (OUT, False, False, False, None, 503, EndCause.FAILED),
        (OUT, False, False, False, None, 486, EndCause.REJECTED),
        (OUT, False, False, False, None, 603, EndCause.REJECTED),
    ],
)
def test_end_cause(
    direction: CallDirection,
    local: bool,
    answered: bool,
    bye: bool,
    cancel: int | None,
    code: int,
    cause: EndCause,
) -> None:
    """Each way a call can end maps to one cause."""
    ending = CallEnding(
        direction=direction,
        answered=answered,
        local_hangup=local,
        remote_bye=bye,
        cancel_cause=cancel,
    )
    assert end_cause(ending, code) is cause
