"""Binary sensors of SIP Endpoint: is an extension registered, does the server answer."""

from collections.abc import Iterable

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SipEndpointEntity, SipServerEntity, async_setup_extension_entities
from .protocol.status import RegistrationStatus
from .runtime import ExtensionStatus, SipEndpointConfigEntry

PARALLEL_UPDATES = 0

REGISTERED = BinarySensorEntityDescription(
    key="registered",
    translation_key="registered",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)
REACHABLE = BinarySensorEntityDescription(
    key="reachable",
    translation_key="reachable",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)

# Statuses only a reply from the server gives; and the status of a server that is silent
# (the built-in engine's liveness probe moves a silent registrar's extensions there and
# registers them again as soon as it answers). The others (registering, unregistered,
# disabled, a refused TLS certificate) say nothing about whether the server answers.
_ANSWERED = frozenset(
    {
        RegistrationStatus.SUCCESSFUL,
        RegistrationStatus.REJECTED_BY_SERVER,
        RegistrationStatus.NOT_FOUND,
        RegistrationStatus.SERVER_ERROR,
    }
)


def server_answers(statuses: Iterable[ExtensionStatus]) -> bool | None:
    """Whether the server answers, judged by the extensions' registrations.

    True when any extension's last status came from the server; False when none did and
    at least one shows no reply; None when nothing tells either way.
    """
    silent = False
    for status in statuses:
        if status.registration is None:
            continue
        if status.registration.status in _ANSWERED:
            return True
        if status.registration.status is RegistrationStatus.NO_REPLY_FROM_SERVER:
            silent = True
    return False if silent else None


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the server's reachability and the connectivity sensor of every extension."""
    async_add_entities([SipServerReachableBinarySensor(entry.runtime_data, REACHABLE)])
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


class SipServerReachableBinarySensor(SipServerEntity, BinarySensorEntity):
    """On while the server answers; off once every answer is missing.

    A status that tells nothing (an extension registering, a worker restarting) keeps
    the last verdict, so the sensor does not flicker while extensions register again.
    Without extensions nothing is known.
    """

    @callback
    def _update_from_runtime(self) -> None:
        if not (statuses := self.extension_statuses):
            self._attr_is_on = None
        elif (answers := server_answers(statuses)) is not None:
            self._attr_is_on = answers
