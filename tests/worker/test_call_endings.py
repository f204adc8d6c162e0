"""How calls end when the extension goes away or an announcement has nothing to play."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    CallStarted,
    EndCause,
    EventName,
    IncomingCall,
    Method,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .client import account_params

if TYPE_CHECKING:
    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

EXT = "2070"
EXT_ID = f"ext-{EXT}"


@pytest.fixture
def registered(worker: WorkerClient, kamailio: Kamailio) -> WorkerClient:
    """Return a worker with extension 2070 registered."""
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    return worker


@pytest.fixture
def phone(baresip_factory: BaresipFactory, kamailio: Kamailio) -> Baresip:
    """Return a registered baresip (9001)."""
    baresip = baresip_factory(user="9001", password="pw-9001", registrar=kamailio)
    baresip.wait_registered()
    return baresip


def _ended(worker: WorkerClient, call_id: str) -> CallEnded:
    event = worker.wait_event(EventName.CALL_ENDED, lambda d: d["call_id"] == call_id)
    return CallEnded.from_wire(event.data)


def test_removing_the_extension_ends_its_ringing_call(
    registered: WorkerClient, phone: Baresip
) -> None:
    """The call is refused with 503, its end is reported, then the unregistration."""
    worker = registered
    phone.dial(EXT)
    call = IncomingCall.from_wire(worker.wait_event(EventName.INCOMING_CALL).data)
    worker.request(Method.RING, {"call_id": call.call_id})
    phone.wait_ringing()
    worker.request(Method.REMOVE_ACCOUNT, {"account_id": EXT_ID})
    ended = _ended(worker, call.call_id)
    assert ended.cause == EndCause.REJECTED
    assert ended.code == 503
    # A proxy turns a 503 into a 500 (RFC 3261 16.7); the reason phrase stays.
    assert phone.wait_closed().endswith("Service Unavailable")
    worker.wait_registration(EXT_ID, RegistrationStatus.UNREGISTERED)
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).calls == 0


def test_make_call_without_a_file_hangs_up_once_answered(
    registered: WorkerClient, phone: Baresip
) -> None:
    """With nothing to play the answered call is ended by us at once."""
    worker = registered
    started = CallStarted.from_wire(
        worker.request(Method.MAKE_CALL, {"account_id": EXT_ID, "target": "9001"})
    )
    phone.wait_incoming()
    phone.accept()
    ended = _ended(worker, started.call_id)
    assert ended.cause == EndCause.LOCAL
    assert ended.answered
    phone.wait_closed()
