"""Steps the worker call tests share: a registered extension, a phone, a call.

The tests run on both engines (the ``worker`` fixture); the phone is a baresip
registered at the test bed's Kamailio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    EventName,
    IncomingCall,
    Method,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .client import account_params

if TYPE_CHECKING:
    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient


def register_extension(worker: WorkerClient, kamailio: Kamailio, ext: str) -> None:
    """Add test-bed extension ``ext`` (account ``ext-<ext>``); wait until registered."""
    worker.request(
        Method.ADD_ACCOUNT, account_params(ext, kamailio.host, kamailio.port)
    )
    worker.wait_registration(f"ext-{ext}", RegistrationStatus.SUCCESSFUL)


def registered_phone(
    baresip_factory: BaresipFactory, kamailio: Kamailio, user: str = "9001"
) -> Baresip:
    """Return a baresip registered at Kamailio as test-bed ``user``."""
    phone = baresip_factory(user=user, password=f"pw-{user}", registrar=kamailio)
    phone.wait_registered()
    return phone


def incoming_call(worker: WorkerClient) -> IncomingCall:
    """Wait for the next `incoming_call`."""
    return IncomingCall.from_wire(worker.wait_event(EventName.INCOMING_CALL).data)


def confirmed(worker: WorkerClient, call_id: str) -> None:
    """Wait for the `call_state` event of ``call_id``'s answer (phase confirmed)."""
    worker.wait_event(
        EventName.CALL_STATE,
        lambda d: d["call_id"] == call_id and d["phase"] == "confirmed",
    )


def answered_call(worker: WorkerClient, caller: Baresip, ext: str) -> IncomingCall:
    """Let ``caller`` dial ``ext``; the worker answers; return the confirmed call.

    The call must come in for account ``ext-<ext>``.
    """
    caller.dial(ext)
    call = incoming_call(worker)
    assert call.account_id == f"ext-{ext}"
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established()
    confirmed(worker, call.call_id)
    return call


def call_ended(worker: WorkerClient, call_id: str) -> CallEnded:
    """Wait for the `call_ended` of ``call_id``."""
    event = worker.wait_event(EventName.CALL_ENDED, lambda d: d["call_id"] == call_id)
    return CallEnded.from_wire(event.data)
