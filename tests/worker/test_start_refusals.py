"""`start` and `add_account` refusals: clean error answers, and the worker lives on."""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import (
    Method,
    StartResult,
    Transport,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.protocol.wire import ErrorCode

from .client import account_params, start_params

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient


def test_start_without_a_free_port_fails_and_can_be_retried(
    launched_worker: WorkerClient, sip_ports: tuple[int, int]
) -> None:
    """A taken range is a SIP error, a bad range a bad request; a retry then works.

    The TLS transport skips a port another program listens on.
    """
    worker = launched_worker
    first, last = sip_ports
    with contextlib.ExitStack() as held:
        taken = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        taken.bind(("127.0.0.1", first))
        error = worker.request_error(
            Method.START, start_params(port_min=first, port_max=first)
        )
        assert error.code == ErrorCode.SIP_ERROR
        assert str(first) in error.message
        for low, high in ((0, 10), (first + 5, first + 1), (first, 65536)):
            assert (
                worker.request_error(
                    Method.START, start_params(port_min=low, port_max=high)
                ).code
                == ErrorCode.BAD_REQUEST
            )
        assert worker.process.poll() is None
        listener = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        listener.bind(("127.0.0.1", first + 2))
        listener.listen()
        result = StartResult.from_wire(
            worker.request(
                Method.START, start_params(port_min=first + 1, port_max=last)
            )
        )
    assert result.sip_port == first + 1
    assert result.tls_port in (None, first + 3)
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert status.accounts == 0


def test_account_refusals(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    engine: str,
) -> None:
    """Duplicates, zero timers and a transport the worker lacks are refused cleanly.

    A worker whose range has a single port has no TLS transport. pjsua2 cannot
    register over TLS without one; the built-in engine opens TLS connections as a
    client without a TLS listener of its own, so it lacks no transport.
    """
    worker = launched_worker
    first = sip_ports[0]
    result = StartResult.from_wire(
        worker.request(Method.START, start_params(port_min=first, port_max=first))
    )
    assert result.tls_port is None
    if engine == "pjsua2":
        error = worker.request_error(
            Method.ADD_ACCOUNT,
            account_params(
                "2040", kamailio.host, kamailio.port, transport=Transport.TLS
            ),
        )
        assert error.code == ErrorCode.BAD_REQUEST
        assert "tls" in error.message
    for timers in ({"expiry": 0}, {"retry_interval": 0}):
        error = worker.request_error(
            Method.ADD_ACCOUNT,
            account_params("2040", kamailio.host, kamailio.port, **timers),
        )
        assert error.code == ErrorCode.BAD_REQUEST
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).accounts == 0
    params = account_params("2040", kamailio.host, kamailio.port)
    worker.request(Method.ADD_ACCOUNT, params)
    worker.wait_registration("ext-2040", RegistrationStatus.SUCCESSFUL)
    error = worker.request_error(Method.ADD_ACCOUNT, params)
    assert error.code == ErrorCode.BAD_REQUEST
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).accounts == 1
    # The refused attempts left nothing behind: the extension still unregisters.
    worker.request(Method.REMOVE_ACCOUNT, {"account_id": "ext-2040"})
    worker.wait_registration("ext-2040", RegistrationStatus.UNREGISTERED)
