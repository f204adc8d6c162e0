"""Actions of SIP Endpoint: alerts, outbound pages and hanging up."""

from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .calls.alert import AlertController, AlertStopReason
from .calls.call_audio import async_call_audio
from .const import (
    ATTR_DURATION,
    ATTR_MEDIA,
    ATTR_MESSAGE,
    ATTR_TARGET,
    ATTR_TIMEOUT,
    ATTR_VOLUME,
    DOMAIN,
    SERVICE_CANCEL_ALERT,
    SERVICE_HANGUP,
    SERVICE_PAGE,
    SERVICE_PLAY_ALERT,
)
from .device_lookup import async_get_device_extension
from .engine import EngineError, SipEngine
from .helpers import sip_exception_handler, validation_error
from .runtime import ExtensionStatus, SipEndpointConfigEntry, SipEndpointRuntime

DEFAULT_PAGE_TIMEOUT = 30

_DEVICE: dict[vol.Marker, Any] = {vol.Required(ATTR_DEVICE_ID): cv.string}
_MEDIA_OR_MESSAGE: dict[vol.Marker, Any] = {
    vol.Exclusive(ATTR_MEDIA, "audio"): cv.string,
    vol.Exclusive(ATTR_MESSAGE, "audio"): cv.string,
}
PLAY_ALERT_SCHEMA = vol.Schema(
    {
        **_DEVICE,
        **_MEDIA_OR_MESSAGE,
        vol.Optional(ATTR_DURATION): vol.All(vol.Coerce(int), vol.Range(0, 86400)),
        vol.Optional(ATTR_VOLUME): vol.All(vol.Coerce(int), vol.Range(0, 100)),
    }
)
DEVICE_SCHEMA = vol.Schema(_DEVICE)
PAGE_SCHEMA = vol.Schema(
    {
        **_DEVICE,
        **_MEDIA_OR_MESSAGE,
        vol.Required(ATTR_TARGET): cv.string,
        vol.Optional(ATTR_TIMEOUT, default=DEFAULT_PAGE_TIMEOUT): vol.All(
            vol.Coerce(int), vol.Range(1, 300)
        ),
    }
)


def _extension(
    hass: HomeAssistant, call: ServiceCall
) -> tuple[SipEndpointRuntime, str]:
    """Return the loaded runtime and subentry id of the action's extension device."""
    device_id: str = call.data[ATTR_DEVICE_ID]
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise validation_error("device_not_found", device_id=device_id)
    if (found := async_get_device_extension(hass, device)) is None:
        raise validation_error("not_an_extension", device=device.name or device_id)
    entry: SipEndpointConfigEntry = found[0]
    if entry.state is not ConfigEntryState.LOADED:
        raise validation_error("entry_not_loaded", entry=entry.title)
    return entry.runtime_data, found[1].subentry_id


def _alert(hass: HomeAssistant, call: ServiceCall) -> AlertController:
    runtime, account_id = _extension(hass, call)
    controller = runtime.alerts.get(account_id)
    if controller is None:
        raise validation_error(
            "not_an_alert_extension", extension=runtime.extensions[account_id].extension
        )
    return controller


@sip_exception_handler()
async def _async_play_alert(call: ServiceCall) -> None:
    controller = _alert(call.hass, call)
    media, message = call.data.get(ATTR_MEDIA), call.data.get(ATTR_MESSAGE)
    if not media and not message and not controller.has_configured_media():
        raise validation_error("no_alert_media")
    await controller.async_start(
        source="action",
        media=media,
        message=message,
        duration=call.data.get(ATTR_DURATION),
        volume=call.data.get(ATTR_VOLUME),
    )


async def _async_cancel_alert(call: ServiceCall) -> None:
    await _alert(call.hass, call).async_stop(AlertStopReason.TURNED_OFF)


def _call_failed(call: ServiceCall, err: EngineError) -> dict[str, str]:
    return {"target": call.data[ATTR_TARGET], "error": str(err)}


@sip_exception_handler("call_failed", _call_failed)
async def _async_page(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    runtime, account_id = _extension(hass, call)
    media, message = call.data.get(ATTR_MEDIA), call.data.get(ATTR_MESSAGE)
    if not media and not message:
        raise validation_error("no_page_media")
    audio = await async_call_audio(hass, media=media, message=message)
    try:
        ended = await runtime.engine.make_call(
            account_id, call.data[ATTR_TARGET], str(audio), call.data[ATTR_TIMEOUT]
        )
    finally:
        await hass.async_add_executor_job(Path(audio).unlink, True)
    result: dict[str, Any] = {
        "call_id": ended.call_id,
        "answered": ended.answered,
        "cause": ended.cause.value,
        "sip_code": ended.code,
        "reason": ended.reason,
        "duration": round(ended.duration, 1),
    }
    return result


async def _async_hangup(call: ServiceCall) -> None:
    runtime, account_id = _extension(call.hass, call)
    await _async_hang_up(runtime.extensions[account_id], runtime.engine)


def _extension_number(status: ExtensionStatus, _err: EngineError) -> dict[str, str]:
    return {"extension": status.extension}


@sip_exception_handler("hangup_failed", _extension_number)
async def _async_hang_up(status: ExtensionStatus, engine: SipEngine) -> None:
    """End the extension's current call."""
    if status.call_id is None:
        raise validation_error("no_active_call", extension=status.extension)
    await engine.hangup(status.call_id)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, in async_setup)."""
    hass.services.async_register(
        DOMAIN, SERVICE_PLAY_ALERT, _async_play_alert, schema=PLAY_ALERT_SCHEMA
    )
    hass.services.async_register(
        DOMAIN, SERVICE_CANCEL_ALERT, _async_cancel_alert, schema=DEVICE_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_PAGE,
        _async_page,
        schema=PAGE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, SERVICE_HANGUP, _async_hangup, schema=DEVICE_SCHEMA
    )
