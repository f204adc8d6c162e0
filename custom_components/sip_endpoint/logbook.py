"""Logbook entries of SIP Endpoint's bus events."""

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .const import (
    ATTR_EXTENSION,
    ATTR_TYPE,
    DOMAIN,
    EVENT_ALERT,
    EVENT_CALL,
    EVENT_REGISTRATION,
    AlertEventType,
    CallEventType,
)

_CALL_MESSAGES: dict[str, str] = {
    CallEventType.INCOMING: "received a call from {caller}",
    CallEventType.ANSWERED: "answered a call",
    CallEventType.ENDED: "ended a call ({cause})",
    CallEventType.MISSED: "missed a call ({cause})",
    CallEventType.DTMF: "received DTMF digit {digit}",
}


def _message(event_type: str, data: dict[str, Any]) -> str:
    kind = str(data.get(ATTR_TYPE, ""))
    values = {key: data.get(key, "") for key in ("caller", "cause", "digit")}
    if event_type == EVENT_CALL:
        return str(_CALL_MESSAGES.get(kind, kind)).format(**values)
    if event_type == EVENT_ALERT:
        if kind == AlertEventType.STARTED:
            return f"started an emergency alert ({data.get('source', '')})"
        return f"stopped its emergency alert ({data.get('reason', '')})"
    return f"failed to register: {data.get('status', '')} {data.get('sip_code', '')}"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the call, alert and registration events."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        return {
            LOGBOOK_ENTRY_NAME: f"Extension {event.data.get(ATTR_EXTENSION, '')}",
            LOGBOOK_ENTRY_MESSAGE: _message(str(event.event_type), dict(event.data)),
        }

    for event_type in (EVENT_CALL, EVENT_ALERT, EVENT_REGISTRATION):
        async_describe_event(DOMAIN, event_type, describe)
