"""Device triggers of SIP Endpoint: calls, alerts and registration failures."""

from typing import Any, Final

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.homeassistant.triggers import event as event_trigger
from homeassistant.const import (
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType
import voluptuous as vol

from .const import (
    ATTR_TYPE,
    CONF_ROLE,
    DOMAIN,
    EVENT_ALERT,
    EVENT_CALL,
    EVENT_REGISTRATION,
    REGISTRATION_FAILED,
    AlertEventType,
    CallEventType,
    ExtensionRole,
)
from .device_lookup import async_get_device_extension

# Trigger type -> (bus event, its `type`).
TRIGGERS: Final[dict[str, tuple[str, str]]] = {
    "incoming_call": (EVENT_CALL, CallEventType.INCOMING),
    "answered": (EVENT_CALL, CallEventType.ANSWERED),
    "ended": (EVENT_CALL, CallEventType.ENDED),
    "missed": (EVENT_CALL, CallEventType.MISSED),
    "dtmf": (EVENT_CALL, CallEventType.DTMF),
    "alert_started": (EVENT_ALERT, AlertEventType.STARTED),
    "alert_stopped": (EVENT_ALERT, AlertEventType.STOPPED),
    "registration_failed": (EVENT_REGISTRATION, REGISTRATION_FAILED),
}
ALERT_TRIGGERS: Final = ("alert_started", "alert_stopped")

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {vol.Required(CONF_TYPE): vol.In(TRIGGERS)}
)


async def async_get_triggers(
    hass: HomeAssistant, device_id: str
) -> list[dict[str, Any]]:
    """List the triggers of an extension's device (alert ones for alert extensions)."""
    role = _extension_role(hass, device_id)
    if role is None:
        return []
    is_alert = role is ExtensionRole.EMERGENCY_ALERT
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type in TRIGGERS
        if is_alert or trigger_type not in ALERT_TRIGGERS
    ]


def _extension_role(hass: HomeAssistant, device_id: str) -> ExtensionRole | None:
    """Return the role of an extension's device; None for other devices."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return None
    if (found := async_get_device_extension(hass, device)) is None:
        return None
    return ExtensionRole(found[1].data[CONF_ROLE])


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Listen for the trigger's bus event from this device."""
    event_type, kind = TRIGGERS[config[CONF_TYPE]]
    event_config = event_trigger.TRIGGER_SCHEMA(
        {
            CONF_PLATFORM: "event",
            event_trigger.CONF_EVENT_TYPE: event_type,
            CONF_EVENT_DATA: {
                CONF_DEVICE_ID: config[CONF_DEVICE_ID],
                ATTR_TYPE: kind,
            },
        }
    )
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device"
    )
