"""An extension with an outbound proxy sends its REGISTER through that proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import Method
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.netutil import free_port

from .client import account_params

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient


def test_register_goes_through_the_outbound_proxy(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """The registrar's own port is silent; the proxy (Kamailio) answers 200."""
    silent_port = free_port("127.0.0.1")
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            "2060",
            kamailio.host,
            silent_port,
            outbound_proxy=f"{kamailio.host}:{kamailio.port}",
        ),
    )
    state = worker.wait_registration("ext-2060", RegistrationStatus.SUCCESSFUL)
    assert state.registrar.endswith(f":{silent_port}")
    assert state.expires > 0
