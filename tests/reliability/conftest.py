"""Fixtures for the reliability suite: engines on the real test bed, and HA entries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import SipEngine
from custom_components.sip_endpoint.protocol.payloads import Transport
from tests.engine.conftest import EventRecorder
from tests.integration.conftest import (  # noqa: F401 - fixtures for HA-side tests
    entry_options,
    loaded_entry,
    make_entry,
)
from tests.sipbed.users import password_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from tests.sipbed.kamailio import Kamailio

    type EngineFactory = Callable[..., SipEngine]


def extension(number: int, password: str | None = None) -> ExtensionSettings:
    """Return the settings of a standard test bed extension (2000 + number)."""
    ext = str(2000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, password or password_for(ext))


def server(kamailio: Kamailio, transport: Transport = Transport.UDP) -> ServerSettings:
    """Return the server settings of a test bed Kamailio."""
    return ServerSettings(host=kamailio.host, port=kamailio.port, transport=transport)


@pytest.fixture
def recorder() -> EventRecorder:
    """Return an event recorder to pass as on_event."""
    return EventRecorder()


@pytest.fixture
async def engine_factory(
    worker_python: Path, recorder: EventRecorder, socket_enabled: None
) -> AsyncIterator[EngineFactory]:
    """Return a factory of engines reporting to `recorder`; all are stopped at teardown.

    Options default to loopback and a 1 s retry interval; keyword arguments change them.
    """
    engines: list[SipEngine] = []

    def make(settings: ServerSettings, **changes: object) -> SipEngine:
        values: dict[str, object] = {
            "worker_python": str(worker_python),
            "bind_host": "127.0.0.1",
            "retry_interval": 1,
            **changes,
        }
        made = SipEngine(settings, EngineOptions(**values), recorder)  # type: ignore[arg-type]
        engines.append(made)
        return made

    yield make
    for started in engines:
        await started.stop()


# Worker-level fixtures (a worker process driven directly over the protocol).
from tests.worker.conftest import (  # noqa: E402, F401
    engine,
    engine_python,
    launched_worker,
    sip_ports,
    worker,
    worker_factory,
)
