"""Out-of-dialog requests from sources outside the allowed list."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import EventName, Method, Refused
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.rawsip import parse_response

from .client import account_params

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient


def _send_from(host: str, port: int, method: str, extra: str = "") -> int:
    """Send one request from ``host`` to the worker; return the final status code."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        local = sock.getsockname()[1]
        message = (
            f"{method} sip:2050@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{method}{local};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:9009@{host}:{local}>;tag=t{local}\r\n"
            "To: <sip:2050@127.0.0.1>\r\n"
            f"Call-ID: {method}-{local}@{host}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:9009@{host}:{local}>\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), ("127.0.0.1", port))
        sock.settimeout(3)
        while True:
            response = parse_response(sock.recvfrom(65535)[0])
            if response.code >= 200:
                return response.code


def test_subscribe_from_a_source_not_allowed(
    worker: WorkerClient, kamailio: Kamailio, engine: str
) -> None:
    """A SUBSCRIBE from 127.0.0.2 gets 403 and a `refused` event."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2050", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2050", RegistrationStatus.SUCCESSFUL)
    subscribe = "Event: presence\r\nExpires: 60\r\n"
    assert _send_from("127.0.0.2", worker.sip_port, "SUBSCRIBE", subscribe) == 403
    refused = Refused.from_wire(worker.wait_event(EventName.REFUSED).data)
    assert refused == Refused(source="127.0.0.2", method="SUBSCRIBE")
    options = _send_from("127.0.0.2", worker.sip_port, "OPTIONS")
    if engine == "pjsua2":
        # pjsua answers OPTIONS itself, before the worker could look at the source.
        assert options == 200
        worker.drain(0.3)
        assert not worker.events_named(EventName.REFUSED)
    else:
        # The built-in engine filters every method (issue 9), OPTIONS included.
        assert options == 403
        refused = Refused.from_wire(worker.wait_event(EventName.REFUSED).data)
        assert refused == Refused(source="127.0.0.2", method="OPTIONS")


def test_options_from_an_allowed_source(worker: WorkerClient) -> None:
    """An OPTIONS from an allowed source is answered 200, with no `refused` event."""
    assert _send_from("127.0.0.1", worker.sip_port, "OPTIONS") == 200
    worker.drain(0.3)
    assert not worker.events_named(EventName.REFUSED)
