"""Device registry look-ups that work on Home Assistant 2025.4 and on 2026.x.

Home Assistant 2026 made device identifiers unique per config entry only: a device
belongs to exactly one config entry (`DeviceEntry.config_entry_id`), and
`DeviceRegistry.async_get_device`, `DeviceEntry.config_entries` and
`DeviceInfo(via_device=...)` are deprecated in favour of
`async_get_device_by_identifier`, `config_entry_id` and `via_device_id`. Home Assistant
2025.4 has only the older API, so each look-up uses the new one where it exists.
"""

from collections.abc import Callable
from typing import Any, cast

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN

type _ByIdentifier = Callable[[tuple[str, str], str], dr.DeviceEntry | None]


def async_get_entry_device(
    hass: HomeAssistant, config_entry_id: str, identifier: str
) -> dr.DeviceEntry | None:
    """Return the config entry's device with this integration's identifier."""
    registry = dr.async_get(hass)
    by_identifier: _ByIdentifier | None = getattr(
        registry, "async_get_device_by_identifier", None
    )
    if by_identifier is not None:  # Home Assistant 2026.x
        return by_identifier((DOMAIN, identifier), config_entry_id)
    device = registry.async_get_device(identifiers={(DOMAIN, identifier)})
    if device is None or config_entry_id not in device.config_entries:
        return None
    return device


def device_config_entry_ids(device: dr.DeviceEntry) -> set[str]:
    """Return the ids of the config entries a device belongs to."""
    config_entry_id: str | None = getattr(device, "config_entry_id", None)
    if config_entry_id is not None:  # Home Assistant 2026.x: exactly one
        return {config_entry_id}
    return set(device.config_entries)


def async_get_device_extension(
    hass: HomeAssistant, device: dr.DeviceEntry
) -> tuple[ConfigEntry[Any], ConfigSubentry] | None:
    """Return the config entry and subentry of an extension's device; None for others."""
    for entry_id in device_config_entry_ids(device):
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            continue
        for domain, identifier in device.identifiers:
            if domain == DOMAIN and (subentry := entry.subentries.get(identifier)):
                return entry, subentry
    return None


def via_device_info(
    hass: HomeAssistant, config_entry_id: str, identifier: str
) -> dr.DeviceInfo:
    """Return the DeviceInfo keys that put a device under the entry's device `identifier`.

    Home Assistant 2026 takes the parent's device id (`via_device_id`), 2025.4 only its
    identifier (`via_device`). The parent must be registered first.
    """
    if "via_device_id" not in dr.DeviceInfo.__annotations__:  # Home Assistant 2025.4
        return dr.DeviceInfo(via_device=(DOMAIN, identifier))
    parent = async_get_entry_device(hass, config_entry_id, identifier)
    if parent is None:
        return dr.DeviceInfo()
    keys: dict[str, Any] = {"via_device_id": parent.id}
    return cast("dr.DeviceInfo", keys)
