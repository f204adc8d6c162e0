"""Base entities of SIP Endpoint.

Each extension is a device linked to the server's device (the config entry's); the
server's own entities sit on the server's device.
"""

from collections.abc import Callable, Iterable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import (
    async_dispatcher_connect,
)
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, ROLE_TITLES
from .device_lookup import via_device_info
from .runtime import (
    ExtensionStatus,
    SipEndpointConfigEntry,
    SipEndpointRuntime,
    signal_extension_added,
    signal_extension_updated,
    signal_server_updated,
)

MANUFACTURER = "SIP Endpoint"
ROLE_MODELS = {role: f"{title} extension" for role, title in ROLE_TITLES.items()}


@callback
def async_setup_extension_entities(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[SipEndpointRuntime, ExtensionStatus], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every extension, now and when one is added later."""
    runtime = entry.runtime_data

    @callback
    def add_extension(account_id: str) -> None:
        if (status := runtime.extensions.get(account_id)) is not None:
            async_add_entities(build(runtime, status), config_subentry_id=account_id)

    for account_id in list(runtime.extensions):
        add_extension(account_id)
    entry.async_on_unload(
        async_dispatcher_connect(
            hass, signal_extension_added(entry.entry_id), add_extension
        )
    )


class SipEndpointEntity(Entity):
    """An entity of one extension, updated when the engine pushes a change."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        runtime: SipEndpointRuntime,
        status: ExtensionStatus,
        description: EntityDescription,
    ) -> None:
        """Describe the entity and its extension's device."""
        self.entity_description = description
        self.runtime = runtime
        self.status = status
        self._attr_unique_id = f"{status.account_id}_{description.key}"
        # The extension number is in the device's name ("Page 100"), not in its serial
        # number: it is an address on the server, not something printed on hardware.
        # The model id is the role: what the actions' device selectors filter on
        # (services.yaml), unlike the name and the model it never changes with language.
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, status.account_id)},
            translation_key=f"{status.role}_extension",
            translation_placeholders={"extension": status.extension},
            manufacturer=MANUFACTURER,
            model=ROLE_MODELS[status.role],
            model_id=status.role.value,
        )
        self._attr_device_info.update(
            via_device_info(runtime.hass, runtime.entry_id, runtime.entry_id)
        )

    async def async_added_to_hass(self) -> None:
        """Follow the extension's updates."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_extension_updated(self.runtime.entry_id, self.status.account_id),
                self._handle_update,
            )
        )

    @callback
    def _handle_update(self) -> None:
        self.async_write_ha_state()


class SipServerEntity(Entity):
    """An entity of the SIP server, derived from every extension's status."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self, runtime: SipEndpointRuntime, description: EntityDescription
    ) -> None:
        """Describe the entity; it belongs to the server's device (made at setup)."""
        self.entity_description = description
        self.runtime = runtime
        self._attr_unique_id = f"{runtime.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, runtime.entry_id)})
        self._update_from_runtime()

    async def async_added_to_hass(self) -> None:
        """Follow registration changes of every extension."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_server_updated(self.runtime.entry_id),
                self._handle_update,
            )
        )

    @property
    def extension_statuses(self) -> list[ExtensionStatus]:
        """The statuses of the server's extensions."""
        return list(self.runtime.extensions.values())

    @callback
    def _update_from_runtime(self) -> None:
        """Take the values from the extensions' statuses."""

    @callback
    def _handle_update(self) -> None:
        self._update_from_runtime()
        self.async_write_ha_state()
