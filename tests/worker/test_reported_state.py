"""What both engines' calls and accounts report: end causes, registration states."""

from __future__ import annotations

import pytest

from custom_components.sip_endpoint.protocol.payloads import CallDirection, EndCause
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.core.end_cause import CallEnding, end_cause
from custom_components.sip_endpoint.worker.core.registration_state import (
    RegistrationRecord,
)

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


def test_registration_record_moves_changed_at_only_on_a_new_status() -> None:
    """A refresh (same status) keeps `changed_at`; a new status moves it."""
    record = RegistrationRecord("ext-1", "sip:pbx.example")
    first = record.update(RegistrationStatus.SUCCESSFUL, 200, "OK", 300)
    record.last_success = 5.0
    refreshed = record.update(RegistrationStatus.SUCCESSFUL, 200, "OK", 300)
    assert refreshed.changed_at == first.changed_at
    assert refreshed.last_success == 5.0
    lost = record.update(RegistrationStatus.NO_REPLY_FROM_SERVER, 408, "Timeout", 0)
    assert lost.changed_at >= first.changed_at
    assert (lost.account_id, lost.status, lost.code, lost.reason, lost.expires) == (
        "ext-1",
        RegistrationStatus.NO_REPLY_FROM_SERVER,
        408,
        "Timeout",
        0,
    )
    assert lost.registrar == "sip:pbx.example"
    assert record.state() == lost
