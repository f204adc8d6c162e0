"""Fixtures for the engine tests: fake interpreters and an event recorder."""

import asyncio
from collections.abc import Callable, Sequence
import os
from pathlib import Path
import sys

import pytest

from custom_components.sip_endpoint.engine.models import EngineEvent
from custom_components.sip_endpoint.protocol.payloads import RegistrationState
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")

type FakePythonFactory = Callable[..., str]


@pytest.fixture
def fake_python(tmp_path: Path) -> FakePythonFactory:
    """Return a factory of shell scripts posing as interpreters that run the fake worker."""
    made: list[Path] = []

    def make(*flags: str, name: str | None = None, folder: Path | None = None) -> str:
        directory = folder or tmp_path / "fake-pythons"
        directory.mkdir(parents=True, exist_ok=True)
        script = directory / (name or f"fake-python-{len(made)}")
        script.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_WORKER}" {" ".join(flags)} -- "$@"\n'
        )
        script.chmod(0o755)
        made.append(script)
        return str(script)

    return make


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point PATH at an empty folder (no python3.12, no pyenv) and clear the env var."""
    folder = tmp_path / "path"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("SIP_ENDPOINT_WORKER_PYTHON", raising=False)
    return folder


class EventRecorder:
    """Collects engine events and waits for conditions on them."""

    def __init__(self) -> None:
        """Start with no events."""
        self.events: list[EngineEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: EngineEvent) -> None:
        """Record one event (the engine's on_event callback)."""
        self.events.append(event)
        self._changed.set()

    def states(self, account_id: str, since: int = 0) -> list[RegistrationState]:
        """Return the registration events of one extension from index ``since`` on."""
        return [
            event
            for event in self.events[since:]
            if isinstance(event, RegistrationState) and event.account_id == account_id
        ]

    def latest_state(self, account_id: str) -> RegistrationState | None:
        """Return the last registration event of one extension (what the runtime holds)."""
        states = self.states(account_id)
        return states[-1] if states else None

    async def wait_for(
        self, predicate: Callable[[list[EngineEvent]], bool], limit: float = 30.0
    ) -> None:
        """Wait until the predicate holds over the recorded events (bounded, not timed)."""
        async with asyncio.timeout(limit):
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def recorder() -> EventRecorder:
    """Return an event recorder to pass as on_event."""
    return EventRecorder()


def pid_alive(pid: int) -> bool:
    """Tell whether a process exists (our children are reaped by asyncio)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def latest_with_status(
    events: Sequence[object], status: RegistrationStatus
) -> set[str]:
    """Return the extensions whose latest registration event has this status."""
    latest: dict[str, RegistrationState] = {}
    for event in events:
        if isinstance(event, RegistrationState):
            latest[event.account_id] = event
    return {
        account_id for account_id, state in latest.items() if state.status is status
    }
