"""Event entity of SIP Endpoint: the calls of an extension."""

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CallEventType
from .entity import SipEndpointEntity, async_setup_extension_entities
from .runtime import SipEndpointConfigEntry, signal_call_event

PARALLEL_UPDATES = 0

CALL = EventEntityDescription(
    key="call",
    translation_key="call",
    event_types=[event_type.value for event_type in CallEventType],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the call event entity of every extension."""
    async_setup_extension_entities(
        hass,
        entry,
        async_add_entities,
        lambda runtime, status: [SipCallEvent(runtime, status, CALL)],
    )


class SipCallEvent(SipEndpointEntity, EventEntity):
    """Fires incoming, answered, ended, missed and dtmf events."""

    async def async_added_to_hass(self) -> None:
        """Follow the extension's call events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_call_event(self.runtime.entry_id, self.status.account_id),
                self._handle_call_event,
            )
        )

    @callback
    def _handle_update(self) -> None:
        """Status changes alone do not fire events."""

    @callback
    def _handle_call_event(
        self, event_type: CallEventType, data: dict[str, Any]
    ) -> None:
        self._trigger_event(event_type, data)
        self.async_write_ha_state()
