"""Requests that arrive while an extension is being removed wait for the removal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import Method, WorkerStatus
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .client import account_params

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient


def test_status_sent_with_the_removal_sees_it_done(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """A `status` right behind `remove_account` is answered after it, without it."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2080", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2080", RegistrationStatus.SUCCESSFUL)
    worker.send_raw(
        b'{"type": "request", "id": 901, "method": "remove_account",'
        b' "params": {"account_id": "ext-2080"}}\n'
        b'{"type": "request", "id": 902, "method": "status", "params": {}}\n'
    )
    removed = worker.wait_response(901)
    status = worker.wait_response(902)
    assert removed.error is None
    assert status.error is None and status.result is not None
    assert WorkerStatus.from_wire(status.result).accounts == 0
    state = worker.wait_registration("ext-2080", RegistrationStatus.UNREGISTERED)
    assert state.expires == 0
