"""The built-in engine's REGISTER connection carries the registrar's INVITE back.

The built-in engine opens its TCP/TLS connections from its listening SIP port (the
Contact's port). Kamailio, like most registrars, then finds that open connection by
the Contact's host:port and sends the INVITE down it instead of opening a new one
(the TLS case, where the engine has no listener at all, is in test_tls.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EndCause,
    EventName,
    Method,
    Transport,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.users import password_for

from .calling import answered_call, call_ended, registered_phone
from .client import account_params, start_params, start_result

if TYPE_CHECKING:
    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

EXT: Final = "2061"
EXT_ID: Final = f"ext-{EXT}"
TRACE_LEVEL: Final = 5  # the built-in engine logs every SIP message at this level


@pytest.mark.engines("builtin", reason="pjsua2 listens on TCP; Kamailio dials it")
def test_invite_arrives_over_the_register_connection(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """REGISTER over TCP from the SIP port; the INVITE comes back on it, answered."""
    worker = launched_worker
    result = start_result(
        worker.request(
            Method.START,
            start_params(
                port_min=sip_ports[0], port_max=sip_ports[1], log_level=TRACE_LEVEL
            ),
        )
    )
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            EXT,
            kamailio.host,
            kamailio.port,
            transport=Transport.TCP,
            password=password_for(EXT),
        ).to_wire(),
    )
    worker.wait_registration(EXT_ID, RegistrationStatus.SUCCESSFUL)
    # Kamailio saw the REGISTER come from our listening port, the Contact's port.
    assert kamailio.wait_for_log(
        f"REGISTER for {EXT} from {kamailio.host}:{result.sip_port} saved"
    ), kamailio.log_tail(200)
    caller = registered_phone(baresip_factory, kamailio)
    call = answered_call(worker, caller, EXT)
    caller.hangup()
    end = call_ended(worker, call.call_id)
    assert end.cause == EndCause.BYE
    assert end.answered
    received = [
        event.data["message"]
        for event in worker.events_named(EventName.LOG)
        if "Received from " in event.data["message"]
    ]
    invites = [line for line in received if f"\nINVITE sip:{EXT}@" in line]
    assert invites
    # From Kamailio's own port, i.e. down the connection we opened to it: a new
    # connection of Kamailio's would come from a port of its choosing.
    assert all(
        line.startswith(f"Received from tcp:{kamailio.host}:{kamailio.port}:")
        for line in invites
    )
