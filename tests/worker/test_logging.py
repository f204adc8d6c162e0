"""pjlib's log lines reach Home Assistant's side without credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import EventName, Method
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .client import account_params, start_params

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient


def test_log_events_are_redacted(
    launched_worker: WorkerClient, kamailio: Kamailio, sip_ports: tuple[int, int]
) -> None:
    """At level 5 the SIP trace is logged, with Authorization values removed."""
    worker = launched_worker
    worker.request(
        Method.START,
        start_params(port_min=sip_ports[0], port_max=sip_ports[1], log_level=5),
    )
    worker.request(
        Method.ADD_ACCOUNT, account_params("2040", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2040", RegistrationStatus.SUCCESSFUL)
    worker.request(Method.REREGISTER, {"account_id": "ext-2040"})
    worker.wait_registration("ext-2040", RegistrationStatus.SUCCESSFUL)
    assert worker.shutdown() == 0
    lines = [event.data["message"] for event in worker.events_named(EventName.LOG)]
    text = "\n".join(lines)
    assert "REGISTER sip:" in text
    assert "Authorization: <redacted>" in text
    assert "pw-2040" not in text
    assert 'response="' not in text
    assert all(event.data["level"] <= 5 for event in worker.events_named(EventName.LOG))
    assert "pw-2040" not in worker.stderr()


def test_log_level_zero_is_quiet(worker: WorkerClient, kamailio: Kamailio) -> None:
    """`log_level` 1 (the default) sends no SIP trace."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2041", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2041", RegistrationStatus.SUCCESSFUL)
    text = "\n".join(
        event.data["message"] for event in worker.events_named(EventName.LOG)
    )
    assert "REGISTER sip:" not in text
