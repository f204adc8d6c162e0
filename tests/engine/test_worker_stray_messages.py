"""A worker that says odd things: the client skips them and keeps working."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.engine import worker_client
from custom_components.sip_endpoint.engine.errors import (
    EngineNotRunningError,
    WorkerStartError,
)
from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.probe import probe_registration
from custom_components.sip_endpoint.engine.worker_client import WorkerClient
from custom_components.sip_endpoint.protocol import PROTOCOL_VERSION
from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    Method,
    StartParams,
)

if TYPE_CHECKING:
    from pathlib import Path

    from custom_components.sip_endpoint.protocol.wire import Event

    from .conftest import FakePythonFactory

START = StartParams(bind_host="127.0.0.1", port_min=5900, port_max=5999)
HELLO = {
    "protocol": PROTOCOL_VERSION,
    "engine": "pjsua2",
    "engine_version": "0.0-odd",
    "python": "3.12",
    "pid": 1,
    "max_accounts": 8,
    "max_calls": 4,
}

# Poses as the worker's interpreter. It answers the interpreter probe (`-c`), says
# hello, and answers requests with {"sip_port": 5900} until `shutdown` or the end of
# stdin. Modes: "odd" says hello twice, sends a request and two log events first;
# "refuse" refuses `add_account`; "vanish" sends a malformed registration event
# after `add_account`, then exits with code 5.
ODD_WORKER = """
import json, sys
def out(message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()
if "-c" in sys.argv:
    out({"python": "3.12.99", "pjsua2": "0.0-odd"})
    sys.exit(0)
hello, mode = json.loads(sys.argv[1]), sys.argv[2]
out({"type": "event", "event": "hello", "data": hello})
if mode == "odd":
    out({"type": "event", "event": "hello", "data": dict(hello, engine_version="second")})
    out({"type": "request", "id": 7, "method": "status", "params": {}})
    for text in ("first", "second"):
        out({"type": "event", "event": "log", "data": {"level": 3, "message": text}})
for line in sys.stdin:
    request = json.loads(line)
    answer = {"type": "response", "id": request["id"], "result": {"sip_port": 5900}}
    if request["method"] == "add_account" and mode == "refuse":
        answer = {
            "type": "response",
            "id": request["id"],
            "error": {"code": "limit_reached", "message": "no room"},
        }
    out(answer)
    if request["method"] == "add_account" and mode == "vanish":
        out({"type": "event", "event": "registration", "data": {"account_id": 5}})
        sys.exit(5)
    if request["method"] == "shutdown":
        break
"""


def _interpreter(tmp_path: Path, hello: dict[str, object], mode: str) -> str:
    """Return a script that poses as the worker's interpreter."""
    worker = tmp_path / "odd_worker.py"
    worker.write_text(ODD_WORKER)
    script = tmp_path / f"odd-python-{mode}"
    script.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{worker}" '
        f"'{json.dumps(hello)}' {mode} \"$@\"\n"
    )
    script.chmod(0o755)
    return str(script)


async def test_second_hello_requests_and_failing_handlers_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first hello counts; a request from the worker and a handler error are logged."""
    seen: list[str] = []
    both_seen = asyncio.Event()

    def on_event(event: Event) -> None:
        assert event.name == EventName.LOG
        seen.append(event.data["message"])
        if len(seen) == 2:
            both_seen.set()
        if event.data["message"] == "first":
            raise RuntimeError("handler failed")

    client = WorkerClient(
        _interpreter(tmp_path, HELLO, "odd"), name="odd", on_event=on_event
    )
    result = await client.start(START)
    assert result.sip_port == 5900
    assert client.hello is not None and client.hello.engine_version == "0.0-odd"
    async with asyncio.timeout(10):
        await both_seen.wait()
    assert seen == ["first", "second"]
    assert await client.request(Method.STATUS) == {"sip_port": 5900}
    await client.stop()
    assert client.returncode == 0
    assert "sent a second hello" in caplog.text
    assert "sent a request; ignored" in caplog.text
    assert "Error handling event log" in caplog.text


async def test_malformed_hello_fails_the_start(tmp_path: Path) -> None:
    """A hello without its fields is a start error, and no process is left."""
    client = WorkerClient(
        _interpreter(tmp_path, {"protocol": PROTOCOL_VERSION}, "plain"),
        name="odd",
        on_event=lambda event: None,
    )
    with pytest.raises(WorkerStartError, match="malformed hello"):
        await client.start(START)
    assert client.returncode is not None


@pytest.mark.parametrize(
    ("mode", "error"),
    [("refuse", "refused the extension"), ("vanish", "went away \\(exit code 5")],
)
async def test_probe_worker_refusing_or_vanishing_is_a_start_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, error: str
) -> None:
    """The check before saving settings reports the worker's failure, not a hang."""
    with pytest.raises(WorkerStartError, match=error):
        await probe_registration(
            ServerSettings(host="127.0.0.1", port=5060),
            EngineOptions(
                worker_python=_interpreter(tmp_path, HELLO, mode),
                bind_host="127.0.0.1",
            ),
            ExtensionSettings("id-2003", "2003", "2003", "pw-2003"),
            timeout=10,
        )
    if mode == "vanish":
        assert "Malformed registration event" in caplog.text


async def test_worker_without_hello_in_time_is_ended(
    fake_python: FakePythonFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hello within the limit: a start error, and the process does not linger."""
    monkeypatch.setattr(worker_client, "HELLO_TIMEOUT", 0.5)
    client = WorkerClient(
        fake_python("--hello-delay", "30"), name="slow", on_event=lambda event: None
    )
    with pytest.raises(WorkerStartError, match="sent no hello"):
        await client.start(START)
    assert client.returncode is not None


async def test_client_never_started() -> None:
    """Stopping a client that never started is a no-op; waiting for it is refused."""
    client = WorkerClient("/nonexistent/python", name="idle", on_event=print)
    await client.stop()
    with pytest.raises(EngineNotRunningError, match="never started"):
        await client.wait_closed()
    with pytest.raises(EngineNotRunningError, match="not running"):
        await client.request(Method.STATUS)
