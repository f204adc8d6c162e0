"""Registration through a real built-in worker process, against the real Kamailio.

The conformance suite (tests/worker) runs the pjsua2 worker's registration tests on
this engine too; these add what issue 11 asks of the built-in engine: a registrar
restart noticed and recovered (the extension reachable through Kamailio again), TLS
verified with the start's CA file, and no password in anything the worker says.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    KeepaliveMethod,
    Method,
    Transport,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.tls import make_certificates
from tests.worker.client import account_params

from .test_account_kamailio import reaches

if TYPE_CHECKING:
    from pathlib import Path

    from tests.sipbed.kamailio import Kamailio, KamailioFactory

    from .conftest import BuiltinWorker

Status = RegistrationStatus


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_registrar_restart_is_noticed_and_recovered(
    builtin_worker: BuiltinWorker, kamailio: Kamailio, transport: Transport
) -> None:
    """Stopped: no_reply_from_server. Back: registered again, reachable again."""
    worker = builtin_worker()
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            "2080",
            kamailio.host,
            kamailio.port,
            transport=transport,
            keepalive_interval=2,  # double CRLF plus the liveness OPTIONS
            expiry=3600,
            retry_interval=600,  # only the probe can bring it back in time
        ),
    )
    worker.wait_registration("ext-2080", Status.SUCCESSFUL)
    assert asyncio.run(reaches(kamailio, "2080"))
    kamailio.stop()
    lost = worker.wait_registration("ext-2080", Status.NO_REPLY_FROM_SERVER, timeout=30)
    assert lost.code in (408, 503)
    worker.events.clear()
    kamailio.start()
    back = worker.wait_registration("ext-2080", Status.SUCCESSFUL, timeout=30)
    assert back.code == 200
    states = [
        e.data["status"]
        for e in worker.events_named(EventName.REGISTRATION)
        if e.data["account_id"] == "ext-2080"
    ]
    # `successful` was consumed by the wait; before it came `registering` only.
    assert states == [Status.REGISTERING]
    assert asyncio.run(reaches(kamailio, "2080"))


def test_udp_send_error_ends_the_register_at_once_with_503(
    builtin_worker: BuiltinWorker,
) -> None:
    """A REGISTER the kernel refuses to send ends at once with 503, not Timer F's 408.

    127.255.255.255 is a broadcast address: sendto fails with EACCES and nothing
    leaves the machine. RFC 3261 8.1.3.1 and 17.1.4: a transport error is treated
    as a 503. The server never saw the request, so the status stays
    `no_reply_from_server` (its repair says to check the address and the firewall),
    but the code and reason say why, and no `registering` retries wait 32 s for it.
    """
    worker = builtin_worker()
    worker.request(
        Method.ADD_ACCOUNT,
        account_params("2083", "127.255.255.255", 5060, retry_interval=600),
    )
    failed = worker.wait_registration(
        "ext-2083", Status.NO_REPLY_FROM_SERVER, timeout=40
    )
    assert failed.code == 503
    assert failed.reason == "cannot send to 127.255.255.255:5060: Permission denied"
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    exchange = status.exchanges[-1]
    assert (exchange.account_id, exchange.code) == ("ext-2083", 503)
    assert not exchange.from_server


def test_tls_with_the_start_ca_file(
    builtin_worker: BuiltinWorker,
    kamailio_factory: KamailioFactory,
    tmp_path: Path,
) -> None:
    """TLS verified against `tls_ca_file`; without it the same server is refused."""
    certificates = make_certificates(tmp_path / "certificates")
    kamailio = kamailio_factory(tls_certificate=certificates.server("valid"))
    assert kamailio.tls_port is not None
    params = account_params(
        "2081", "127.0.0.1", kamailio.tls_port, transport=Transport.TLS
    )
    trusting = builtin_worker(tls_ca_file=str(certificates.ca_path))
    trusting.request(Method.ADD_ACCOUNT, params)
    state = trusting.wait_registration("ext-2081", Status.SUCCESSFUL)
    assert state.registrar.endswith(";transport=tls")
    doubting = builtin_worker()
    doubting.request(Method.ADD_ACCOUNT, params)
    refused = doubting.wait_registration("ext-2081", Status.TLS_CERTIFICATE_INVALID)
    assert "unable to get local issuer certificate" in refused.reason


def test_password_never_leaves_the_worker(
    builtin_worker: BuiltinWorker, kamailio: Kamailio
) -> None:
    """At log level 5 (whole SIP messages), no event or stderr line has the password."""
    worker = builtin_worker(log_level=5)
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            "2082",
            kamailio.host,
            kamailio.port,
            keepalive=KeepaliveMethod.SIP_OPTIONS,
            keepalive_interval=1,
        ),
    )
    worker.wait_registration("ext-2082", Status.SUCCESSFUL)
    worker.drain(1.5)
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert status.exchanges[-1].code == 200
    logged = [e.data["message"] for e in worker.events_named(EventName.LOG)]
    assert any("REGISTER" in line for line in logged)  # the trace is there
    text = "\n".join(logged) + str(list(worker.events))
    text += worker.stderr_path.read_text(errors="replace")
    assert "pw-2082" not in text
    worker.request(Method.REMOVE_ACCOUNT, {"account_id": "ext-2082"})
    assert worker.wait_registration("ext-2082", Status.UNREGISTERED).expires == 0
