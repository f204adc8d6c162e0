"""Binary sensor of SIP Endpoint: is the extension registered."""

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SipEndpointEntity, async_setup_extension_entities
from .protocol.status import RegistrationStatus
from .runtime import SipEndpointConfigEntry

PARALLEL_UPDATES = 0

REGISTERED = BinarySensorEntityDescription(
    key="registered",
    translation_key="registered",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the connectivity sensor of every extension."""
    async_setup_extension_entities(
        hass,
        entry,
        async_add_entities,
        lambda runtime, status: [
            SipRegisteredBinarySensor(runtime, status, REGISTERED)
        ],
    )


class SipRegisteredBinarySensor(SipEndpointEntity, BinarySensorEntity):
    """On while the server holds a valid registration of the extension."""

    @property
    def is_on(self) -> bool:
        """Return whether the extension is registered."""
        registration = self.status.registration
        return (
            registration is not None
            and registration.status is RegistrationStatus.SUCCESSFUL
        )
