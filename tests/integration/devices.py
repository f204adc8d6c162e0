"""Device registry look-ups for tests, the same on Home Assistant 2025.4 and 2026.x."""

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.sip_endpoint.device_lookup import async_get_entry_device

ENTRY_ID = "test_entry"  # the id make_entry gives its config entry


def entry_device(
    hass: HomeAssistant, identifier: str, entry_id: str = ENTRY_ID
) -> dr.DeviceEntry | None:
    """Return the config entry's device with this integration's identifier."""
    return async_get_entry_device(hass, entry_id, identifier)


def entry_device_id(
    hass: HomeAssistant, identifier: str, entry_id: str = ENTRY_ID
) -> str:
    """Return the id of the config entry's device; fail when there is none."""
    device = entry_device(hass, identifier, entry_id)
    assert device is not None, f"no device {identifier} in {entry_id}"
    return device.id


def device_subentries(device: dr.DeviceEntry) -> dict[str, set[str | None]]:
    """Return the device's config entry ids and, for each, its subentry ids."""
    config_entry_id: str | None = getattr(device, "config_entry_id", None)
    if config_entry_id is not None:  # Home Assistant 2026.x: one entry, one subentry
        subentry_id: str | None = getattr(device, "config_subentry_id", None)
        return {config_entry_id: {subentry_id}}
    return {
        entry_id: set(subentries)
        for entry_id, subentries in device.config_entries_subentries.items()
    }
