"""A synchronous protocol client that drives one worker process in tests."""

from __future__ import annotations

from collections import deque
import contextlib
from dataclasses import dataclass, field
import itertools
import os
from pathlib import Path
import select
import subprocess
import time
from typing import IO, TYPE_CHECKING, Any

from custom_components.sip_endpoint.protocol import wire
from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    EventName,
    Hello,
    Method,
    Payload,
    RegistrationState,
    StartParams,
    StartResult,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from custom_components.sip_endpoint.protocol.status import RegistrationStatus

LAUNCH = (
    Path(__file__).resolve().parents[2]
    / "custom_components"
    / "sip_endpoint"
    / "worker"
    / "launch.py"
)
DEFAULT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 8.0


class WorkerFailedError(AssertionError):
    """The worker answered with an error, died, or did not answer in time."""


@dataclass
class WorkerClient:
    """Starts ``<python> -I launch.py --engine <engine>`` and speaks the protocol."""

    python: Path
    stderr_path: Path
    engine: str = "pjsua2"
    process: subprocess.Popen[bytes] = field(init=False)
    events: deque[wire.Event] = field(default_factory=deque)
    responses: dict[int, wire.Response] = field(default_factory=dict)
    hello: Hello | None = None
    sip_port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _buffer: bytes = b""
    _stderr: IO[bytes] | None = None

    def launch(self) -> Hello:
        """Start the process and wait for its `hello`."""
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [str(self.python), "-I", str(LAUNCH), "--engine", self.engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_worker_environment(),
        )
        event = self.wait_event(EventName.HELLO)
        self.hello = Hello.from_wire(event.data)
        return self.hello

    # --- sending -----------------------------------------------------------------

    def send_raw(self, line: bytes) -> None:
        """Write raw bytes to the worker's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(line)
        self.process.stdin.flush()

    def send(
        self, method: Method | str, params: Payload | dict[str, Any] | None = None
    ) -> int:
        """Send a request; return its id."""
        request_id = next(self._ids)
        body = params.to_wire() if isinstance(params, Payload) else (params or {})
        self.send_raw(
            wire.encode(wire.Request(id=request_id, method=str(method), params=body))
        )
        return request_id

    def request(
        self,
        method: Method | str,
        params: Payload | dict[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a request and return its result; raise on an error response."""
        response = self.wait_response(self.send(method, params), timeout=timeout)
        if response.error is not None:
            raise WorkerFailedError(
                f"{method}: {response.error.code}: {response.error.message}"
            )
        assert response.result is not None
        return response.result

    def request_error(
        self, method: Method | str, params: Payload | dict[str, Any] | None = None
    ) -> wire.ErrorInfo:
        """Send a request that must fail; return its error."""
        response = self.wait_response(self.send(method, params))
        if response.error is None:
            raise WorkerFailedError(
                f"{method} unexpectedly succeeded: {response.result}"
            )
        return response.error

    # --- receiving ---------------------------------------------------------------

    def wait_response(
        self, request_id: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> wire.Response:
        """Wait for the response to ``request_id``."""
        self._pump_until(
            lambda: request_id in self.responses, timeout, f"response {request_id}"
        )
        return self.responses.pop(request_id)

    def wait_event(
        self,
        name: EventName,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> wire.Event:
        """Wait for (and consume) the first event called ``name`` that matches."""
        found: list[wire.Event] = []

        def match() -> bool:
            for event in self.events:
                if event.name == name and (predicate is None or predicate(event.data)):
                    found.append(event)
                    self.events.remove(event)
                    return True
            return False

        self._pump_until(match, timeout, f"event {name}")
        return found[0]

    def wait_registration(
        self,
        account_id: str,
        status: RegistrationStatus,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RegistrationState:
        """Wait for a `registration` event of ``account_id`` with ``status``."""
        event = self.wait_event(
            EventName.REGISTRATION,
            lambda data: data["account_id"] == account_id and data["status"] == status,
            timeout=timeout,
        )
        return RegistrationState.from_wire(event.data)

    def drain(self, seconds: float) -> None:
        """Collect whatever arrives during ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read(deadline - time.monotonic())

    def events_named(self, name: EventName) -> list[wire.Event]:
        """Return (and keep) the events received so far called ``name``."""
        return [event for event in self.events if event.name == name]

    def _pump_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerFailedError(
                    f"timed out waiting for {what}; stderr:\n{self.stderr()}"
                )
            if not self._read(min(remaining, 0.2)) and self.process.poll() is not None:
                self._read(0)
                if done():
                    return
                raise WorkerFailedError(
                    f"worker exited ({self.process.returncode}) waiting for {what}; "
                    f"stderr:\n{self.stderr()}"
                )

    def _read(self, timeout: float) -> bool:
        """Read what is available; return False at end of file."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], max(timeout, 0))
        if not ready:
            return True
        chunk = os.read(stdout.fileno(), 1 << 16)
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = wire.decode(line)  # anything else on stdout fails the test
            if isinstance(message, wire.Response):
                self.responses[message.id] = message
            elif isinstance(message, wire.Event):
                self.events.append(message)
            else:
                raise WorkerFailedError(f"worker sent a request: {message}")
        return True

    # --- lifecycle ---------------------------------------------------------------

    def stderr(self) -> str:
        """Return what the worker wrote to stderr so far."""
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def shutdown(self, *, timeout: float = 10.0) -> int:
        """Ask the worker to stop; return its exit status."""
        self.request(Method.SHUTDOWN, timeout=timeout)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit, reading what it still writes."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        return self.process.wait(max(deadline - time.monotonic(), 0.1))

    def close(self) -> int | None:
        """End the process (stdin EOF first, as when Home Assistant goes away).

        Return its exit status, or None when it had to be killed.
        """
        if self.process.poll() is None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired, OSError, ValueError):
                self.wait_exit(CLOSE_TIMEOUT)
        status = self.process.poll()
        if status is None:
            self.process.kill()
            self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        if self._stderr is not None:
            self._stderr.close()
        return status


def _worker_environment() -> dict[str, str]:
    """Return a minimal environment (plus coverage's hook when it is measuring)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "COVERAGE_PROCESS_START" in os.environ:
        env["COVERAGE_PROCESS_START"] = os.environ["COVERAGE_PROCESS_START"]
    return env


def start_params(**overrides: Any) -> StartParams:
    """Return `StartParams` for loopback with a free-ish port range."""
    values: dict[str, Any] = {
        "bind_host": "127.0.0.1",
        "port_min": 30000 + (os.getpid() % 200) * 50,
        "port_max": 30000 + (os.getpid() % 200) * 50 + 49,
        "restrict_sources": True,
        "allowed_sources": ["127.0.0.1"],
        "log_level": 1,
    }
    values.update(overrides)
    return StartParams(**values)


def account_params(
    extension: str, registrar_host: str, registrar_port: int, **overrides: Any
) -> AccountParams:
    """Return `AccountParams` for a test-bed extension."""
    values: dict[str, Any] = {
        "account_id": f"ext-{extension}",
        "extension": extension,
        "auth_id": extension,
        "password": f"pw-{extension}",
        "domain": registrar_host,
        "port": registrar_port,
    }
    values.update(overrides)
    return AccountParams(**values)


def start_result(result: dict[str, Any]) -> StartResult:
    """Check and return a `start` result."""
    return StartResult.from_wire(result)
