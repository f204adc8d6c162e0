"""The worker's handshake, framing and request checking."""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import socket
import subprocess
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol import PROTOCOL_VERSION
from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    Method,
    StartResult,
)
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from tests.sipbed.netutil import free_port

from .client import start_params

if TYPE_CHECKING:
    from .client import WorkerClient
    from .conftest import WorkerFactory

MANIFEST = (
    Path(__file__).resolve().parents[2]
    / "custom_components"
    / "sip_endpoint"
    / "manifest.json"
)
# What each engine announces: its version, and its limits (docs/builtin-engine.md).
EXPECTED_HELLO = {
    "pjsua2": ("2.15", 8, 4),
    "builtin": (json.loads(MANIFEST.read_text())["version"], 100, 32),
}


def test_hello_names_versions(
    launched_worker: WorkerClient, engine: str, engine_python: Path
) -> None:
    """The first line is `hello`: protocol, engine and Python versions, limits."""
    hello = launched_worker.hello
    assert hello is not None
    assert hello.protocol == PROTOCOL_VERSION
    assert hello.engine == engine
    version, max_accounts, max_calls = EXPECTED_HELLO[engine]
    assert hello.engine_version.startswith(version)
    assert (hello.max_accounts, hello.max_calls) == (max_accounts, max_calls)
    python_version = subprocess.run(
        [str(engine_python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert hello.python == python_version
    if engine == "pjsua2":
        assert hello.python.startswith("3.12.")
    assert hello.pid == launched_worker.process.pid
    assert hello.pid != os.getpid()


def test_bad_lines_get_errors_and_the_worker_carries_on(
    launched_worker: WorkerClient,
) -> None:
    """Garbage, non-requests, unknown methods and bad params get error responses."""
    worker = launched_worker
    worker.send_raw(b"this is not json\n")
    assert worker.wait_response(0).error.code == ErrorCode.BAD_REQUEST  # type: ignore[union-attr]
    worker.send_raw(b'{"type": "event", "event": "hello", "data": {}}\n')
    assert worker.wait_response(0).error.code == ErrorCode.BAD_REQUEST  # type: ignore[union-attr]
    worker.send_raw(b"\xff\xfe\x00garbage\n")
    assert worker.wait_response(0).error.code == ErrorCode.BAD_REQUEST  # type: ignore[union-attr]
    worker.send_raw(
        b'{"type": "request", "id": 5, "method": "' + b"x" * (1 << 20) + b'"}\n'
    )
    assert worker.wait_response(0).error.code == ErrorCode.BAD_REQUEST  # type: ignore[union-attr]
    assert worker.request_error("fly_to_the_moon").code == ErrorCode.UNKNOWN_METHOD
    assert (
        worker.request_error(Method.START, {"bind_host": 5}).code
        == ErrorCode.BAD_REQUEST
    )
    # Requests that need the SIP stack are refused before `start`.
    assert (
        worker.request_error(Method.RING, {"call_id": "x"}).code
        == ErrorCode.BAD_REQUEST
    )
    status = worker.request(Method.STATUS)
    assert status["accounts"] == 0
    assert status["rss_kib"] > 0


def test_start_binds_the_first_free_port(
    launched_worker: WorkerClient, sip_ports: tuple[int, int]
) -> None:
    """`start` binds UDP and TCP on the first free port of the range."""
    result = StartResult.from_wire(
        launched_worker.request(
            Method.START, start_params(port_min=sip_ports[0], port_max=sip_ports[1])
        )
    )
    assert result.sip_port == sip_ports[0]
    assert result.tls_port is None or result.tls_port > result.sip_port
    error = launched_worker.request_error(
        Method.START, start_params(port_min=sip_ports[0], port_max=sip_ports[1])
    )
    assert error.code == ErrorCode.BAD_REQUEST


def test_second_worker_skips_a_taken_port(
    worker: WorkerClient, worker_factory: WorkerFactory, sip_ports: tuple[int, int]
) -> None:
    """A second worker with the same range takes the next free port."""
    other = worker_factory()
    result = StartResult.from_wire(
        other.request(
            Method.START, start_params(port_min=sip_ports[0], port_max=sip_ports[1])
        )
    )
    assert result.sip_port > worker.sip_port
    assert result.sip_port != result.tls_port


def test_end_of_stdin_ends_the_worker(worker: WorkerClient) -> None:
    """When Home Assistant's side goes away (stdin closes) the worker exits cleanly."""
    assert worker.process.stdin is not None
    worker.process.stdin.close()
    assert worker.wait_exit() == 0


def test_shutdown_answers_and_exits_zero(worker: WorkerClient) -> None:
    """`shutdown` gets its answer and the process exits with status 0."""
    assert worker.shutdown() == 0
    assert not worker.events_named(EventName.LOG) or all(
        "pw-" not in event.data["message"]
        for event in worker.events_named(EventName.LOG)
    )


def test_sigterm_ends_the_worker_cleanly(worker: WorkerClient) -> None:
    """SIGTERM is handled like the end of stdin: a clean exit with status 0."""
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait_exit() == 0


def test_start_on_ipv6_loopback(launched_worker: WorkerClient) -> None:
    """`start` binds UDP and TCP on an IPv6 address too."""
    port = free_port("127.0.0.1")
    result = StartResult.from_wire(
        launched_worker.request(
            Method.START,
            start_params(
                bind_host="::1", port_min=port, port_max=min(port + 20, 65535)
            ),
        )
    )
    assert port <= result.sip_port <= port + 20
    with (
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe,
        pytest.raises(OSError),
    ):
        probe.bind(("::1", result.sip_port))
    assert launched_worker.shutdown() == 0
