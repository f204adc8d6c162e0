"""Entities and devices of extensions: snapshots, adding and removing extensions."""

from collections.abc import Callable
from types import MappingProxyType
from unittest.mock import patch

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_EXTENSION,
    CONF_ROLE,
    CONF_VOLUME,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from tests.sipbed.kamailio import Kamailio

from .devices import device_subentries, entry_device
from .helpers import async_wait_for_state, state_of

# Values that differ from run to run: times, and the registrar's free port.
DYNAMIC = props("registrar", "last_success", "time")


async def test_entities_and_devices(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Each extension is a device under the server with its entities."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")

    server = entry_device(hass, loaded_entry.entry_id)
    assert server is not None
    assert server == snapshot(name="device-server")
    for subentry_id, subentry in loaded_entry.subentries.items():
        device = entry_device(hass, subentry_id)
        assert device is not None
        assert device.via_device_id == server.id
        assert device_subentries(device) == {loaded_entry.entry_id: {subentry_id}}
        assert device.model == f"{subentry.data[CONF_ROLE].title()} extension"
        assert device == snapshot(name=f"device-{subentry.data[CONF_EXTENSION]}")

    entries = sorted(
        er.async_entries_for_config_entry(entity_registry, loaded_entry.entry_id),
        key=lambda entry: entry.entity_id,
    )
    assert [entry.entity_id for entry in entries] == snapshot(name="entity_ids")
    for entry in entries:
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        state = state_of(hass, entry.entity_id)
        assert state == snapshot(name=f"{entry.entity_id}-state", exclude=DYNAMIC)


async def test_add_and_remove_extension(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Adding a subentry registers a new extension; removing it unregisters it."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    subentry = ConfigSubentry(
        data=MappingProxyType(
            {
                CONF_ROLE: ExtensionRole.PAGE,
                CONF_EXTENSION: "2003",
                CONF_AUTH_ID: "2003",
                CONF_PASSWORD: "pw-2003",
            }
        ),
        subentry_type=SUBENTRY_TYPE_EXTENSION,
        title="Page 2003",
        unique_id="2003",
    )
    hass.config_entries.async_add_subentry(loaded_entry, subentry)
    await hass.async_block_till_done()

    await async_wait_for_state(hass, "sensor.page_2003_registration", "successful")
    device = entry_device(hass, subentry.subentry_id)
    assert device is not None
    runtime = loaded_entry.runtime_data
    assert subentry.subentry_id in runtime.extensions

    hass.config_entries.async_remove_subentry(loaded_entry, subentry.subentry_id)
    await hass.async_block_till_done()

    assert subentry.subentry_id not in runtime.extensions
    assert runtime.engine.registration(subentry.subentry_id) is None
    assert entry_device(hass, subentry.subentry_id) is None
    assert entity_registry.async_get("sensor.page_2003_registration") is None
    assert hass.states.get("sensor.page_2003_registration") is None
    # The others were not disturbed.
    assert state_of(hass, "sensor.page_2001_registration").state == "successful"


async def test_failure_code_survives_restart(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The last failure from before a restart is still shown after it."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(
                    "sensor.page_2001_last_failure_code",
                    "408",
                    {"reason": "Request Timeout", "status": "no_reply_from_server"},
                ),
                {"native_value": 408, "native_unit_of_measurement": None},
            )
        ],
    )
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    failure = state_of(hass, "sensor.page_2001_last_failure_code")
    assert failure.state == "408"
    assert failure.attributes["reason"] == "Request Timeout"
    assert failure.attributes["status"] == "no_reply_from_server"


async def test_changed_options_do_not_re_register(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Changing a role option keeps the registration; new credentials renew it."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    engine = loaded_entry.runtime_data.engine
    subentry = loaded_entry.subentries["subentry_2001"]

    with patch.object(
        engine, "update_extension", wraps=engine.update_extension
    ) as update_extension:
        hass.config_entries.async_update_subentry(
            loaded_entry, subentry, data={**subentry.data, CONF_VOLUME: 80}
        )
        await hass.async_block_till_done()
        assert update_extension.call_count == 0

        hass.config_entries.async_update_subentry(
            loaded_entry,
            subentry,
            data={**subentry.data, CONF_PASSWORD: "wrong"},
        )
        await hass.async_block_till_done()
        assert update_extension.call_count == 1
    await async_wait_for_state(
        hass, "sensor.page_2001_registration", "rejected_by_server"
    )
