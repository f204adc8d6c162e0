"""Logbook entries of SIP Endpoint's bus events.

Each line is named after the extension's device, as the rest of Home Assistant shows
it, and says in words why a call ended, why an alert stopped and why a registration
failed (the events carry the keys automations match on).
"""

from collections.abc import Callable, Mapping
from typing import Any, Final

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .calls.alert import AlertStopReason
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
from .protocol.payloads import EndCause
from .protocol.status import RegistrationStatus

_CALL_MESSAGES: Final[Mapping[str, str]] = {
    CallEventType.INCOMING: "received a call from {caller}",
    CallEventType.ANSWERED: "answered a call",
    CallEventType.ENDED: "ended a call: {cause}",
    CallEventType.MISSED: "missed a call: {cause}",
    CallEventType.DTMF: "received DTMF digit {digit}",
}
_CAUSES: Final[Mapping[str, str]] = {
    EndCause.BYE: "the other side hung up",
    EndCause.CANCEL: "the caller hung up before it was answered",
    EndCause.ANSWERED_ELSEWHERE: "it was answered elsewhere",
    EndCause.LOCAL: "Home Assistant hung up",
    EndCause.REJECTED: "it was refused",
    EndCause.FAILED: "the connection failed",
}
_STOP_REASONS: Final[Mapping[str, str]] = {
    AlertStopReason.CANCELLED: "a call-to-cancel extension was called",
    AlertStopReason.EXPIRED: "its duration ran out",
    AlertStopReason.TURNED_OFF: "it was turned off",
    AlertStopReason.UNLOADED: "SIP Endpoint was stopped or reloaded",
}
_FAILURES: Final[Mapping[str, str]] = {
    RegistrationStatus.REJECTED_BY_SERVER: "the server rejected its credentials",
    RegistrationStatus.NOT_FOUND: "the server does not know it",
    RegistrationStatus.NO_REPLY_FROM_SERVER: "no reply from the server",
    RegistrationStatus.SERVER_ERROR: "the server reported an error",
    RegistrationStatus.TLS_CERTIFICATE_INVALID: "the server's certificate is not valid",
}


def _caller(data: Mapping[str, Any]) -> str:
    """Return the caller's name, else their SIP address without its brackets."""
    name = str(data.get("caller_name") or "")
    caller = str(data.get("caller") or "").strip()  # a name-addr: "Name" <sip:...>
    start, end = caller.find("<"), caller.rfind(">")
    address = caller[start + 1 : end] if 0 <= start < end else caller
    if name and address:
        return f"{name} ({address})"
    return name or address or "an unknown caller"


def _message(event_type: str, data: Mapping[str, Any]) -> str:
    kind = str(data.get(ATTR_TYPE, ""))
    if event_type == EVENT_CALL:
        template = _CALL_MESSAGES.get(kind, kind)
        cause = str(data.get("cause", ""))
        return template.format(
            caller=_caller(data),
            cause=_CAUSES.get(cause, cause),
            digit=data.get("digit", ""),
        )
    if event_type == EVENT_ALERT:
        if kind == AlertEventType.STARTED:
            # A caller's address, "action", or the siren entity that turned it on.
            source = str(data.get("source") or "")
            started_by = (
                "an action" if source == "action" else _caller({"caller": source})
            )
            return f"started an emergency alert, raised by {started_by}"
        reason = str(data.get("reason", ""))
        return f"stopped its emergency alert: {_STOP_REASONS.get(reason, reason)}"
    status = str(data.get("status", ""))
    message = f"could not register: {_FAILURES.get(status, status)}"
    if code := data.get("sip_code"):
        message += f" (SIP {code} {data.get('reason') or ''})".replace(" )", ")")
    return message


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the call, alert and registration events."""
    devices = dr.async_get(hass)

    @callback
    def describe(event: Event) -> dict[str, str]:
        device = devices.async_get(str(event.data.get(ATTR_DEVICE_ID, "")))
        name = device and (device.name_by_user or device.name)
        return {
            LOGBOOK_ENTRY_NAME: name
            or f"Extension {event.data.get(ATTR_EXTENSION, '')}",
            LOGBOOK_ENTRY_MESSAGE: _message(str(event.event_type), event.data),
        }

    for event_type in (EVENT_CALL, EVENT_ALERT, EVENT_REGISTRATION):
        async_describe_event(DOMAIN, event_type, describe)
