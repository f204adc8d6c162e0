"""Snapshots that read the same on Home Assistant 2025.4 and 2026.x.

The suite runs on both versions against one set of snapshot files. Home Assistant
changed its own bookkeeping fields of registry entries between them: a device belongs to
one config entry in 2026 (`config_entry_id` / `config_subentry_id` replace
`config_entries` / `config_entries_subentries` / `primary_config_entry`; `is_new` and
`suggested_area` are gone), and entity entries gained `object_id_base` and
`suggested_object_id` and store `aliases` differently. None of those fields is set by
this integration, and tests/integration/test_entities.py asserts a device's entry and
subentry directly, so the snapshots leave them out; every field the integration sets
stays in. tests/integration and tests/unit both snapshot through this module.

State attribute and capability names are StrEnum members in 2026
(`EntityStateAttribute`, `EventEntityCapabilityAttribute`, ...), equal to the plain
strings of 2025; snapshots write them as the plain strings.
"""

from typing import Any

from homeassistant.util.read_only_dict import ReadOnlyDict
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
    HomeAssistantSnapshotSerializer,
)

DEVICE_BOOKKEEPING = (
    "config_entries",
    "config_entries_subentries",
    "config_entry_id",
    "config_subentry_id",
    "primary_config_entry",
    "is_new",
    "suggested_area",
)
ENTITY_BOOKKEEPING = ("aliases", "object_id_base", "suggested_object_id")


def _plain_keys(mapping: Any) -> dict[str, Any]:
    """Return the mapping with its (StrEnum) keys as plain strings."""
    return {str(name): value for name, value in mapping.items()}


class VersionNeutralSerializer(HomeAssistantSnapshotSerializer):  # type: ignore[misc]
    """Home Assistant's serializer without its version-specific registry fields."""

    @classmethod
    def _serializable_device_registry_entry(cls, data: Any) -> Any:
        serialized = super()._serializable_device_registry_entry(data)
        for key in DEVICE_BOOKKEEPING:
            serialized.pop(key, None)
        return serialized

    @classmethod
    def _serializable_entity_registry_entry(cls, data: Any) -> Any:
        serialized = super()._serializable_entity_registry_entry(data)
        for key in ENTITY_BOOKKEEPING:
            serialized.pop(key, None)
        if serialized.get("capabilities") is not None:
            serialized["capabilities"] = _plain_keys(serialized["capabilities"])
        return serialized

    @classmethod
    def _serializable_state(cls, data: Any) -> Any:
        serialized = super()._serializable_state(data)
        serialized["attributes"] = ReadOnlyDict(_plain_keys(serialized["attributes"]))
        return serialized


class VersionNeutralSnapshotExtension(HomeAssistantSnapshotExtension):  # type: ignore[misc]
    """Home Assistant's snapshot extension with the version-neutral serializer."""

    serializer_class = VersionNeutralSerializer
