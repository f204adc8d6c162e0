"""Registration against a real Kamailio: outcomes, retries, limits, unregistration."""

from __future__ import annotations

import socket
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
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from tests.sipbed.netutil import free_port
from tests.sipbed.users import TEST_EXTENSIONS

from .client import account_params, start_params

if TYPE_CHECKING:
    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio, KamailioFactory

    from .client import WorkerClient

Status = RegistrationStatus


def test_registers_through_the_digest_challenge(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """The first REGISTER is challenged (401); the retry with credentials gets 200."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2000", kamailio.host, kamailio.port)
    )
    registering = worker.wait_registration("ext-2000", Status.REGISTERING)
    assert registering.code is None
    state = worker.wait_registration("ext-2000", Status.SUCCESSFUL)
    assert state.code == 200
    assert state.expires > 0
    assert state.last_success is not None
    assert state.registrar == f"sip:{kamailio.host}:{kamailio.port}"
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert status.accounts == 1
    assert [(x.code, x.from_server) for x in status.exchanges] == [(200, True)]


@pytest.mark.parametrize(
    ("wrong_password", "code"), [("rechallenge", 401), ("forbidden", 403)]
)
def test_wrong_password_is_rejected_by_server(
    worker: WorkerClient,
    kamailio_factory: KamailioFactory,
    wrong_password: str,
    code: int,
) -> None:
    """A wrong password ends in rejected_by_server with the server's code."""
    registrar = kamailio_factory(wrong_password=wrong_password)  # type: ignore[arg-type]
    params = account_params("2001", registrar.host, registrar.port, password="nope")
    worker.request(Method.ADD_ACCOUNT, params)
    state = worker.wait_registration("ext-2001", Status.REJECTED_BY_SERVER)
    assert state.code == code


@pytest.mark.parametrize(
    ("unknown_user", "status", "code"),
    [
        ("forbidden", Status.REJECTED_BY_SERVER, 403),
        ("not_found", Status.NOT_FOUND, 404),
    ],
)
def test_unknown_user(
    worker: WorkerClient,
    kamailio_factory: KamailioFactory,
    unknown_user: str,
    status: RegistrationStatus,
    code: int,
) -> None:
    """An unknown user is rejected (403) or not found (404), as the server says."""
    registrar = kamailio_factory(unknown_user=unknown_user)  # type: ignore[arg-type]
    params = account_params("7777", registrar.host, registrar.port)
    worker.request(Method.ADD_ACCOUNT, params)
    state = worker.wait_registration("ext-7777", status)
    assert state.code == code


def test_server_down_on_tcp_is_no_reply_at_once(worker: WorkerClient) -> None:
    """A refused TCP connection (a local 503) means no reply from the server."""
    dead_port = free_port("127.0.0.1")
    params = account_params("2002", "127.0.0.1", dead_port, transport=Transport.TCP)
    worker.request(Method.ADD_ACCOUNT, params)
    state = worker.wait_registration("ext-2002", Status.NO_REPLY_FROM_SERVER)
    assert state.code == 503
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert status.exchanges[-1].from_server is False


def test_server_down_on_udp_times_out(worker: WorkerClient) -> None:
    """Without an answer on UDP, Timer F (32 s) ends in no_reply_from_server (408)."""
    dead_port = free_port("127.0.0.1")
    params = account_params("2003", "127.0.0.1", dead_port, transport=Transport.UDP)
    worker.request(Method.ADD_ACCOUNT, params)
    state = worker.wait_registration(
        "ext-2003", Status.NO_REPLY_FROM_SERVER, timeout=45
    )
    assert state.code == 408


def test_recovers_after_kamailio_restarts(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """While the server is down the worker retries with backoff, then registers again."""
    params = account_params(
        "2004", kamailio.host, kamailio.port, transport=Transport.TCP, retry_interval=1
    )
    worker.request(Method.ADD_ACCOUNT, params)
    worker.wait_registration("ext-2004", Status.SUCCESSFUL)
    kamailio.stop()
    worker.request(Method.REREGISTER, {"account_id": "ext-2004"})
    worker.wait_registration("ext-2004", Status.NO_REPLY_FROM_SERVER)
    # The automatic retry (about 1 s later) fails again while the server is down.
    worker.wait_registration("ext-2004", Status.REGISTERING, timeout=5)
    worker.wait_registration("ext-2004", Status.NO_REPLY_FROM_SERVER, timeout=5)
    kamailio.start()
    state = worker.wait_registration("ext-2004", Status.SUCCESSFUL, timeout=15)
    assert state.code == 200


def test_options_keepalive_notices_a_dead_server(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """With sip_options, a server that stops answering shows up as no reply."""
    params = account_params(
        "2005",
        kamailio.host,
        kamailio.port,
        transport=Transport.TCP,
        keepalive=KeepaliveMethod.SIP_OPTIONS,
        keepalive_interval=1,
        retry_interval=60,
    )
    worker.request(Method.ADD_ACCOUNT, params)
    worker.wait_registration("ext-2005", Status.SUCCESSFUL)
    worker.drain(2.5)  # a couple of OPTIONS go out and are answered
    assert not [
        e
        for e in worker.events_named(EventName.REGISTRATION)
        if e.data["status"] == Status.NO_REPLY_FROM_SERVER
    ]
    kamailio.stop()
    state = worker.wait_registration(
        "ext-2005", Status.NO_REPLY_FROM_SERVER, timeout=10
    )
    assert state.code in (408, 503, 0)


def test_account_past_the_limit_is_refused(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """As many extensions as hello allows register; one more is refused; all live on.

    pjsua2 holds 8 (PJSUA_MAX_ACC: a ninth would abort the process), the built-in
    engine 100.
    """
    assert worker.hello is not None
    limit = worker.hello.max_accounts
    extensions = TEST_EXTENSIONS[:limit]
    assert len(extensions) == limit, "the test bed has too few users"
    for ext in extensions:
        worker.request(
            Method.ADD_ACCOUNT, account_params(ext, kamailio.host, kamailio.port)
        )
    for ext in extensions:
        worker.wait_registration(f"ext-{ext}", Status.SUCCESSFUL, timeout=30)
    error = worker.request_error(
        Method.ADD_ACCOUNT,
        account_params(
            extensions[0], kamailio.host, kamailio.port, account_id="ext-over"
        ),
    )
    assert error.code == ErrorCode.LIMIT_REACHED
    assert worker.process.poll() is None
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).accounts == limit
    # Removing one frees a slot.
    worker.request(Method.REMOVE_ACCOUNT, {"account_id": f"ext-{extensions[0]}"})
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            extensions[0], kamailio.host, kamailio.port, account_id="ext-over"
        ),
    )
    worker.wait_registration("ext-over", Status.SUCCESSFUL)


def test_remove_account_unregisters(
    worker: WorkerClient, kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    """`remove_account` sends Expires: 0: calls to the extension no longer reach it."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2020", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2020", Status.SUCCESSFUL)
    worker.request(Method.REMOVE_ACCOUNT, {"account_id": "ext-2020"})
    state = worker.wait_registration("ext-2020", Status.UNREGISTERED)
    assert state.expires == 0
    exchanges = WorkerStatus.from_wire(worker.request(Method.STATUS)).exchanges
    assert exchanges[-1].code == 200
    assert exchanges[-1].from_server
    caller = baresip_factory(user="9001", password="pw-9001", registrar=kamailio)
    caller.wait_registered()
    caller.dial("2020")
    assert caller.wait_closed().startswith("480")
    error = worker.request_error(Method.REREGISTER, {"account_id": "ext-2020"})
    assert error.code == ErrorCode.UNKNOWN_EXTENSION


def test_shutdown_unregisters_and_exits(
    worker: WorkerClient, kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    """`shutdown` unregisters every extension, then the process exits 0."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2021", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2021", Status.SUCCESSFUL)
    assert worker.shutdown() == 0
    worker.wait_registration("ext-2021", Status.UNREGISTERED, timeout=0.1)
    caller = baresip_factory(user="9002", password="pw-9002", registrar=kamailio)
    caller.wait_registered()
    caller.dial("2021")
    assert caller.wait_closed().startswith("480")


def test_registration_is_refreshed_before_expiry(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """The registration is refreshed by pjsua before it expires (no retry needed)."""
    params = account_params("2022", kamailio.host, kamailio.port, expiry=7)
    worker.request(Method.ADD_ACCOUNT, params)
    first = worker.wait_registration("ext-2022", Status.SUCCESSFUL)
    assert first.expires == 7
    refreshed = worker.wait_registration("ext-2022", Status.SUCCESSFUL, timeout=10)
    assert refreshed.last_success is not None
    assert first.last_success is not None
    assert refreshed.last_success > first.last_success
    # Status did not change, so changed_at stays at the first success.
    assert refreshed.changed_at == first.changed_at
    exchanges = WorkerStatus.from_wire(worker.request(Method.STATUS)).exchanges
    assert [x.code for x in exchanges if x.account_id == "ext-2022"] == [200, 200]


def test_double_crlf_keepalive_is_sent_on_udp(
    launched_worker: WorkerClient, kamailio: Kamailio, sip_ports: tuple[int, int]
) -> None:
    """With double_crlf, pjsua sends its UDP keep-alive every interval."""
    worker = launched_worker
    worker.request(
        Method.START,
        start_params(port_min=sip_ports[0], port_max=sip_ports[1], log_level=5),
    )
    params = account_params(
        "2023",
        kamailio.host,
        kamailio.port,
        transport=Transport.UDP,
        keepalive=KeepaliveMethod.DOUBLE_CRLF,
        keepalive_interval=1,
    )
    worker.request(Method.ADD_ACCOUNT, params)
    worker.wait_registration("ext-2023", Status.SUCCESSFUL)
    worker.wait_event(
        EventName.LOG, lambda data: "keep-alive" in data["message"], timeout=5
    )
    worker.wait_event(
        EventName.LOG, lambda data: "keep-alive" in data["message"], timeout=5
    )


def test_lost_tcp_connection_is_noticed_without_waiting_for_refresh(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """When the registrar's TCP connection drops, the worker registers again at once."""
    params = account_params(
        "2024",
        kamailio.host,
        kamailio.port,
        transport=Transport.TCP,
        expiry=3600,
        keepalive=KeepaliveMethod.OFF,
        retry_interval=1,
    )
    worker.request(Method.ADD_ACCOUNT, params)
    worker.wait_registration("ext-2024", Status.SUCCESSFUL)
    kamailio.stop()
    lost = worker.wait_registration("ext-2024", Status.NO_REPLY_FROM_SERVER, timeout=5)
    assert lost.code == 503
    kamailio.start()
    worker.wait_registration("ext-2024", Status.SUCCESSFUL, timeout=15)


def test_lost_tcp_connection_of_another_peer_changes_nothing(
    worker: WorkerClient, kamailio: Kamailio
) -> None:
    """An unrelated TCP connection closing leaves the registration as it is.

    pjsua2 answers any closed connection with a quiet re-REGISTER; the built-in engine
    re-registers only when the connection to its next hop closes
    (tests/builtin/registration/test_account_liveness.py). Either way the status never
    leaves successful and the registrar answers only 200.
    """
    params = account_params(
        "2025", kamailio.host, kamailio.port, transport=Transport.TCP
    )
    worker.request(Method.ADD_ACCOUNT, params)
    worker.wait_registration("ext-2025", Status.SUCCESSFUL)
    worker.events.clear()
    with socket.create_connection(("127.0.0.1", worker.sip_port), timeout=2) as tcp:
        tcp.sendall(b"\r\n\r\n")
    worker.drain(1.5)
    states = [e.data["status"] for e in worker.events_named(EventName.REGISTRATION)]
    assert set(states) <= {Status.SUCCESSFUL}  # pjsua2: its quiet re-REGISTER's answer
    exchanges = WorkerStatus.from_wire(worker.request(Method.STATUS)).exchanges
    codes = [x.code for x in exchanges]
    assert codes[0] == 200
    assert set(codes) == {200}
    assert len(codes) == 1 + len(states)  # a re-REGISTER is answered and reported


def test_tls_connection_refused_is_no_reply(worker: WorkerClient) -> None:
    """REGISTER over TLS to a closed port fails at once: no reply from the server."""
    dead_port = free_port("127.0.0.1")
    params = account_params("2026", "127.0.0.1", dead_port, transport=Transport.TLS)
    worker.request(Method.ADD_ACCOUNT, params)
    state = worker.wait_registration("ext-2026", Status.NO_REPLY_FROM_SERVER)
    assert state.code == 503
    assert state.registrar == f"sip:127.0.0.1:{dead_port};transport=tls"
    exchanges = WorkerStatus.from_wire(worker.request(Method.STATUS)).exchanges
    assert exchanges[-1].from_server is False
