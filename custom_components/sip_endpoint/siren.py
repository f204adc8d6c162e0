"""Siren entity of SIP Endpoint: the emergency alert of an alert extension.

After a restart an alert that was running is **cleared**, not resumed: the players it
played on are told to stop and the siren stays off (an alert nobody is there to cancel
should not come back by itself; an automation can start it again).
"""

from typing import Any

from homeassistant.components.siren import SirenEntity, SirenEntityDescription
from homeassistant.components.siren.const import (
    ATTR_DURATION,
    ATTR_VOLUME_LEVEL,
    SirenEntityFeature,
)
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .calls.alert import AlertController, AlertStopReason
from .calls.players import async_stop_players
from .const import CONF_MEDIA_PLAYERS, LOGGER, ExtensionRole
from .entity import SipEndpointEntity, async_setup_extension_entities
from .helpers import sip_exception_handler
from .runtime import ExtensionStatus, SipEndpointConfigEntry, SipEndpointRuntime

PARALLEL_UPDATES = 0
ATTR_PLAYERS = "media_players"

ALERT = SirenEntityDescription(key="alert", translation_key="alert")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the siren of every emergency alert extension."""

    def build(
        runtime: SipEndpointRuntime, status: ExtensionStatus
    ) -> list[SipAlertSiren]:
        if status.role is not ExtensionRole.EMERGENCY_ALERT:
            return []
        return [SipAlertSiren(runtime, status, ALERT)]

    async_setup_extension_entities(hass, entry, async_add_entities, build)


class SipAlertSiren(SipEndpointEntity, SirenEntity, RestoreEntity):
    """On while the extension's alert plays; turn on/off starts or stops it."""

    _attr_supported_features = (
        SirenEntityFeature.TURN_ON
        | SirenEntityFeature.TURN_OFF
        | SirenEntityFeature.DURATION
        | SirenEntityFeature.VOLUME_SET
    )

    @property
    def controller(self) -> AlertController:
        """The extension's alert."""
        return self.runtime.alerts[self.status.account_id]

    @property
    def is_on(self) -> bool:
        """Whether the alert plays."""
        return self.status.alerting

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When the alert ends (None: until cancelled) and where it played."""
        controller = self.controller
        return {
            "ends_at": controller.ends_at.isoformat() if controller.ends_at else None,
            ATTR_PLAYERS: controller.players,
        }

    async def async_added_to_hass(self) -> None:
        """Clear an alert that was running before a restart."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        if last is None or last.state != STATE_ON or self.status.alerting:
            return
        players = last.attributes.get(ATTR_PLAYERS) or self.runtime.applied.extensions[
            self.status.account_id
        ].get(CONF_MEDIA_PLAYERS, [])
        LOGGER.warning(
            "The emergency alert of extension %s was running before the restart; "
            "it is cleared, not resumed",
            self.status.extension,
        )
        self.hass.async_create_task(async_stop_players(self.hass, list(players)))

    @sip_exception_handler()
    async def async_turn_on(self, /, **kwargs: Any) -> None:
        """Start the alert, for `duration` seconds if given."""
        volume = kwargs.get(ATTR_VOLUME_LEVEL)
        await self.controller.async_start(
            source=self.entity_id,
            duration=kwargs.get(ATTR_DURATION),
            volume=round(volume * 100) if volume is not None else None,
        )
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop the alert."""
        await self.controller.async_stop(AlertStopReason.TURNED_OFF)
        self.async_write_ha_state()
