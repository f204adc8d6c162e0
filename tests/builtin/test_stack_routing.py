"""How the built-in engine's stack answers requests that no call or account owns.

Every test drives a real built-in worker over UDP with hand-written requests: the
source filter for every method, OPTIONS, unsupported Require, unknown dialogs,
unknown users, other methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    Method,
    Refused,
    StartResult,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.netutil import free_port
from tests.worker.client import WorkerClient, account_params, start_params
from tests.worker.conftest import builtin_python
from tests.worker.rawcall import send_request

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.sipbed.kamailio import Kamailio
    from tests.sipbed.rawsip import SipResponse

EXT = "2060"


def _started_worker(tmp_path: Path, *, log_level: int = 1) -> WorkerClient:
    """Launch and start a built-in worker (sources: 127.0.0.1)."""
    client = WorkerClient(
        builtin_python(), tmp_path / "worker.stderr", engine="builtin"
    )
    client.launch()
    first = free_port("127.0.0.1")
    result = StartResult.from_wire(
        client.request(
            Method.START,
            start_params(
                port_min=first, port_max=min(first + 20, 65535), log_level=log_level
            ),
        )
    )
    client.sip_port = result.sip_port
    return client


@pytest.fixture
def builtin_worker(
    tmp_path: Path, socket_enabled: None, kamailio: Kamailio
) -> Iterator[WorkerClient]:
    """Return a started built-in worker (sources: 127.0.0.1) with 2060 registered."""
    client = _started_worker(tmp_path)
    client.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    client.wait_registration(f"ext-{EXT}", RegistrationStatus.SUCCESSFUL)
    yield client
    assert client.close() == 0


def _request(
    host: str,
    port: int,
    method: str,
    *,
    user: str = EXT,
    to_tag: str | None = None,
    extra: str = "",
) -> SipResponse | None:
    """Send one request from ``host``; return its final response (None: no answer)."""
    return send_request(
        host, port, method, user=user, to_tag=to_tag, extra=extra, timeout=1.5
    )


@pytest.mark.parametrize(
    "method", ["OPTIONS", "INVITE", "BYE", "CANCEL", "MESSAGE", "SUBSCRIBE", "INFO"]
)
def test_every_method_from_a_stranger_is_refused(
    builtin_worker: WorkerClient, method: str
) -> None:
    """Any request from a source outside the list gets 403 and a `refused` event."""
    response = _request("127.0.0.2", builtin_worker.sip_port, method)
    assert response is not None
    assert response.code == 403
    refused = Refused.from_wire(builtin_worker.wait_event(EventName.REFUSED).data)
    assert refused == Refused(source="127.0.0.2", method=method)


def test_an_ack_from_a_stranger_is_dropped_quietly(
    builtin_worker: WorkerClient,
) -> None:
    """An ACK gets no answer and, from a stranger, no `refused` event either."""
    assert _request("127.0.0.2", builtin_worker.sip_port, "ACK", to_tag="x") is None
    assert not builtin_worker.events_named(EventName.REFUSED)


def test_options_is_answered_with_allow_and_accept(
    builtin_worker: WorkerClient,
) -> None:
    """OPTIONS from an allowed source: 200 with what the engine takes."""
    response = _request("127.0.0.1", builtin_worker.sip_port, "OPTIONS")
    assert response is not None
    assert response.code == 200
    allow = response.header("allow")
    assert allow is not None
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"} <= {
        method.strip() for method in allow.split(",")
    }
    assert response.header("accept") == "application/sdp"


def test_an_unsupported_requirement_gets_420(builtin_worker: WorkerClient) -> None:
    """`Require: 100rel` (reliable provisionals) is answered 420 with Unsupported."""
    response = _request(
        "127.0.0.1", builtin_worker.sip_port, "INVITE", extra="Require: 100rel\r\n"
    )
    assert response is not None
    assert response.code == 420
    assert response.header("unsupported") == "100rel"
    assert not builtin_worker.events_named(EventName.INCOMING_CALL)


def test_a_request_in_an_unknown_dialog_gets_481(
    builtin_worker: WorkerClient,
) -> None:
    """BYE with a To tag that matches no call: 481 Call/Transaction Does Not Exist."""
    response = _request("127.0.0.1", builtin_worker.sip_port, "BYE", to_tag="none")
    assert response is not None
    assert response.code == 481
    response = _request("127.0.0.1", builtin_worker.sip_port, "CANCEL")
    assert response is not None
    assert response.code == 481


def test_an_invite_for_another_user_gets_404(builtin_worker: WorkerClient) -> None:
    """An INVITE whose Request-URI user is no extension of the worker: 404."""
    response = _request("127.0.0.1", builtin_worker.sip_port, "INVITE", user="4444")
    assert response is not None
    assert response.code == 404
    assert not builtin_worker.events_named(EventName.INCOMING_CALL)


def test_other_methods_get_405_with_allow(builtin_worker: WorkerClient) -> None:
    """A method the engine does not take (MESSAGE) is answered 405 with Allow."""
    response = _request("127.0.0.1", builtin_worker.sip_port, "MESSAGE")
    assert response is not None
    assert response.code == 405
    assert response.header("allow") is not None


def test_level_five_traces_both_ways_without_secrets(
    tmp_path: Path, socket_enabled: None, kamailio: Kamailio
) -> None:
    """At log level 5 every message sent and received is logged, redacted."""
    client = _started_worker(tmp_path, log_level=5)
    client.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    client.wait_registration(f"ext-{EXT}", RegistrationStatus.SUCCESSFUL)
    options = _request("127.0.0.1", client.sip_port, "OPTIONS")
    assert options is not None
    assert options.code == 200
    assert client.shutdown() == 0
    logs = [event.data["message"] for event in client.events_named(EventName.LOG)]
    registrar = f"udp:{kamailio.host}:{kamailio.port}"
    sent = [line for line in logs if line.startswith("Sending to ")]
    received = [line for line in logs if line.startswith("Received from ")]
    assert any(f"{registrar}:\nREGISTER sip:" in line for line in sent)
    assert any("Authorization: <redacted>" in line for line in sent)
    assert any(f"{registrar}:\nSIP/2.0 401" in line for line in received)
    assert any(f"{registrar}:\nSIP/2.0 200" in line for line in received)
    assert any("OPTIONS sip:" in line for line in received)
    assert any("\nSIP/2.0 200" in line and "OPTIONS" in line for line in sent)
    assert not any(f"pw-{EXT}" in line or 'response="' in line for line in logs)
