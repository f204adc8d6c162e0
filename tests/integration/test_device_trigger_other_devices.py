"""Devices that are not extensions of this integration offer no SIP triggers."""

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.device_trigger import async_get_triggers


async def test_unknown_and_foreign_devices_have_no_triggers(
    hass: HomeAssistant,
) -> None:
    """A removed device and another integration's device list nothing."""
    assert await async_get_triggers(hass, "no-such-device") == []
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other_integration", "x")}
    )
    assert await async_get_triggers(hass, device.id) == []
