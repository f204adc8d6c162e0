"""Setting up, unloading and reloading an entry; extensions added and removed."""

from types import MappingProxyType
from unittest.mock import MagicMock, call

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint.const import (
    CONF_EXTENSION,
    CONF_MEDIA_PLAYERS,
    CONF_ROLE,
    DOMAIN,
    ISSUE_NO_WORKER_PYTHON,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from custom_components.sip_endpoint.engine import (
    EngineError,
    ExtensionSettings,
    WorkerPythonNotFoundError,
)

from .const import ALERT_ID, ENTRY_ID, PAGE_ID, RING_ID

PAGE_REGISTRATION = "sensor.page_2001_registration"
ADDED_ID = "01JSIPENDPOINTRING20040000"


async def test_setup(mock_engine: MagicMock, init_integration: MockConfigEntry) -> None:
    """Setup starts the engine and adds every extension with its credentials."""
    assert init_integration.state is ConfigEntryState.LOADED
    mock_engine.start.assert_awaited_once_with()
    assert mock_engine.add_extension.await_args_list == [
        # No authentication ID configured: the extension authenticates.
        call(ExtensionSettings(PAGE_ID, "2001", "2001", "page-secret")),
        call(ExtensionSettings(RING_ID, "2002", "ring-auth", "ring-secret")),
        call(ExtensionSettings(ALERT_ID, "2003", "2003", "alert-secret")),
    ]


async def test_unload(
    hass: HomeAssistant, mock_engine: MagicMock, init_integration: MockConfigEntry
) -> None:
    """Unloading stops the engine; the entities become unavailable."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()

    assert init_integration.state is ConfigEntryState.NOT_LOADED
    mock_engine.stop.assert_awaited_once_with()
    assert (state := hass.states.get(PAGE_REGISTRATION))
    assert state.state == "unavailable"


async def test_reload(
    hass: HomeAssistant, mock_engine: MagicMock, init_integration: MockConfigEntry
) -> None:
    """A reload stops the engine and starts a new one with the same extensions."""
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()

    assert init_integration.state is ConfigEntryState.LOADED
    mock_engine.stop.assert_awaited_once_with()
    assert mock_engine.start.await_count == 2
    assert mock_engine.add_extension.await_count == 6
    assert (state := hass.states.get(PAGE_REGISTRATION))
    assert state.state == "successful"


@pytest.mark.parametrize(
    "error",
    [EngineError("the worker did not start"), WorkerPythonNotFoundError([])],
    ids=["engine_error", "no_worker_python"],
)
async def test_engine_start_fails(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_engine: MagicMock,
    error: EngineError,
) -> None:
    """An engine that does not start makes Home Assistant retry the entry later."""
    mock_engine.start.side_effect = error
    mock_config_entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    mock_engine.add_extension.assert_not_awaited()


async def test_no_worker_python_repair(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    mock_config_entry: MockConfigEntry,
    mock_engine: MagicMock,
) -> None:
    """A missing pjsua2 interpreter raises a repair issue."""
    mock_engine.start.side_effect = WorkerPythonNotFoundError(["/nowhere/python"])
    mock_config_entry.add_to_hass(hass)

    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert any(
        issue.translation_key == ISSUE_NO_WORKER_PYTHON
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN
    )


async def test_extension_added_and_removed(
    hass: HomeAssistant, mock_engine: MagicMock, init_integration: MockConfigEntry
) -> None:
    """A new subentry registers without a reload; a removed one is unregistered."""
    subentry = ConfigSubentry(
        data=MappingProxyType(
            {
                CONF_ROLE: ExtensionRole.RING,
                CONF_EXTENSION: "2004",
                CONF_PASSWORD: "new-secret",
                CONF_MEDIA_PLAYERS: [],
            }
        ),
        subentry_id=ADDED_ID,
        subentry_type=SUBENTRY_TYPE_EXTENSION,
        title="Ring 2004",
        unique_id="2004",
    )
    hass.config_entries.async_add_subentry(init_integration, subentry)
    await hass.async_block_till_done()

    mock_engine.add_extension.assert_awaited_with(
        ExtensionSettings(ADDED_ID, "2004", "2004", "new-secret")
    )
    mock_engine.stop.assert_not_awaited()  # no reload
    assert (state := hass.states.get("sensor.ring_2004_registration"))
    assert state.state == "successful"

    hass.config_entries.async_remove_subentry(init_integration, RING_ID)
    await hass.async_block_till_done()

    mock_engine.remove_extension.assert_awaited_once_with(RING_ID)
    mock_engine.stop.assert_not_awaited()
    assert hass.states.get("sensor.ring_2002_registration") is None
    assert (state := hass.states.get("sensor.pbx_example_com_registered_extensions"))
    assert state.state == "3"


async def test_devices(
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """The server's device, and one device per extension under it."""
    devices = dr.async_entries_for_config_entry(
        device_registry, init_integration.entry_id
    )
    by_identifier = {
        identifier: device
        for device in devices
        for domain, identifier in device.identifiers
        if domain == DOMAIN
    }
    assert set(by_identifier) == {ENTRY_ID, PAGE_ID, RING_ID, ALERT_ID}
    server = by_identifier.pop(ENTRY_ID)
    assert server == snapshot(name="server")
    for identifier, device in by_identifier.items():
        assert device.via_device_id == server.id
        assert device == snapshot(name=identifier)
