"""Fixtures of the fast Home Assistant side tests: a config entry and an engine double.

The integration runs as in Home Assistant, but its `SipEngine` is a double specced on
the real class: no worker process, no SIP, no sockets. The double accepts every
request, and each extension it is given registers a moment later, as a worker reports
it. Tests send further engine events through `mock_engine.on_event`, the callback the
runtime gave the engine, and assert the requests the engine got. As in
tests/integration, a warning of Home Assistant about the integration fails a test.
tests/integration is the end-to-end layer, on a real Kamailio and real workers.
"""

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
from unittest.mock import MagicMock, create_autospec, patch

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.const import CONF_PASSWORD, Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint import PLATFORMS
from custom_components.sip_endpoint.calls.sounds import AUDIO_DIR
from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_ENGINE,
    CONF_EXTENSION,
    CONF_PORT,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TRANSPORT,
    DOMAIN,
    SUBENTRY_TYPE_EXTENSION,
)
from custom_components.sip_endpoint.engine import (
    EngineEvent,
    ExtensionSettings,
    SelectedEngine,
    SipEngine,
)
from custom_components.sip_endpoint.engine.models import WorkerInfo
from custom_components.sip_endpoint.flow_schemas import extension_title
from custom_components.sip_endpoint.protocol.engines import ENGINE_LIMITS, EngineName
from custom_components.sip_endpoint.protocol.payloads import (
    RegistrationExchange,
    RegistrationState,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.integration.conftest import (  # noqa: F401 - an autouse fixture
    no_home_assistant_warnings,
)
from tests.snapshot_extension import VersionNeutralSnapshotExtension

from .const import (
    ALERT_ID,
    ENTRY_ID,
    EXPIRES,
    EXTENSIONS,
    INTERNAL_URL,
    PAGE_ID,
    REGISTERED_AT,
    RING_ID,
    SERVER,
    WORKER_STARTED_AT,
)

# Where the runtime finds the engine class (elgato patches its client the same way).
ENGINE_CLASS = "custom_components.sip_endpoint.runtime.SipEngine"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom integrations in every test of this package."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshot with Home Assistant's serializer, the same on 2025.4 and 2026.x."""
    return snapshot.use_extension(VersionNeutralSnapshotExtension)


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """Return a SIP server's entry with a page, a ring and an emergency alert extension."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=SERVER,
        unique_id=f"{SERVER}:5060",
        data={CONF_SERVER: SERVER, CONF_PORT: 5060, CONF_TRANSPORT: "udp"},
        options={CONF_ENGINE: "auto"},
        subentries_data=[
            ConfigSubentryDataWithId(
                subentry_id=subentry_id,
                subentry_type=SUBENTRY_TYPE_EXTENSION,
                title=extension_title(role, extension),
                unique_id=extension,
                data={
                    CONF_ROLE: role,
                    CONF_EXTENSION: extension,
                    CONF_AUTH_ID: auth_id,
                    CONF_PASSWORD: password,
                    **options,
                },
            )
            for subentry_id, role, extension, auth_id, password, options in EXTENSIONS
        ],
    )


def registered(account_id: str) -> RegistrationState:
    """Return the state a worker reports once the server accepted a REGISTER."""
    return RegistrationState(
        account_id=account_id,
        status=RegistrationStatus.SUCCESSFUL,
        code=200,
        reason="OK",
        changed_at=REGISTERED_AT,
        last_success=REGISTERED_AT,
        expires=EXPIRES,
        registrar=f"sip:{SERVER}",
    )


@pytest.fixture
def mock_engine() -> Generator[MagicMock]:
    """Return the engine the integration builds: a `SipEngine` double.

    Every added extension registers on the next turn of the event loop. `on_event` is
    the callback the runtime handed to the engine (the latest one, after a reload).
    """
    engine: MagicMock = create_autospec(SipEngine, instance=True)
    engine.selected_engine = SelectedEngine(
        name=EngineName.BUILTIN,
        python="/srv/homeassistant/bin/python3",
        python_version="3.13.0",
        engine_version="",
    )
    engine.limits = ENGINE_LIMITS[EngineName.BUILTIN]
    engine.workers.return_value = [
        WorkerInfo(
            index=0,
            pid=4242,
            engine=EngineName.BUILTIN,
            engine_version="0.1.0",
            python="3.13.0",
            max_accounts=100,
            max_calls=32,
            started_at=WORKER_STARTED_AT,
            restarts=0,
            sip_port=5062,
            account_ids=[PAGE_ID, RING_ID, ALERT_ID],
        )
    ]
    engine.worker_statuses.return_value = {
        0: WorkerStatus(
            accounts=3,
            calls=0,
            rss_kib=30_000,
            exchanges=[
                RegistrationExchange(
                    account_id=account_id,
                    at=REGISTERED_AT - 0.5 + index,
                    code=code,
                    reason=reason,
                    from_server=True,
                )
                for index, (account_id, code, reason) in enumerate(
                    ((PAGE_ID, 401, "Unauthorized"), (PAGE_ID, 200, "OK"))
                )
            ],
        )
    }

    async def add_extension(settings: ExtensionSettings) -> None:
        asyncio.get_running_loop().call_soon(
            engine.on_event, registered(settings.account_id)
        )

    engine.add_extension.side_effect = add_extension

    def build(
        server: object,
        options: object,
        on_event: Callable[[EngineEvent], None],
        **kwargs: object,
    ) -> MagicMock:
        engine.on_event = on_event
        return engine

    with patch(ENGINE_CLASS, autospec=True, side_effect=build):
        yield engine


@pytest.fixture
def platforms() -> list[Platform]:
    """Return the platforms to set up (a platform's test module narrows it)."""
    return PLATFORMS


@pytest.fixture(scope="session")
def sounds_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder for the generated sounds, made once per test session.

    Not the test config folder every test (and every pytest-xdist worker) shares.
    """
    return tmp_path_factory.mktemp("sounds")


@pytest.fixture(autouse=True)
def hass_folders(hass: HomeAssistant, sounds_folder: Path) -> None:
    """Give Home Assistant a URL for media players and the session's sounds folder."""
    hass.config.internal_url = INTERNAL_URL
    hass.data[AUDIO_DIR] = sounds_folder


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_engine: MagicMock,
    platforms: list[Platform],
) -> AsyncGenerator[MockConfigEntry]:
    """Set up the integration on the engine double; its extensions are registered."""
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.sip_endpoint.PLATFORMS", platforms):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry
