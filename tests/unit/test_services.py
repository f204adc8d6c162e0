"""Actions: a hang-up reaches the engine for the extension's call."""

from unittest.mock import MagicMock

from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.sip_endpoint.const import DOMAIN, SERVICE_HANGUP
from custom_components.sip_endpoint.device_lookup import async_get_entry_device
from custom_components.sip_endpoint.protocol.payloads import (
    CallDirection,
    CallEnded,
    EndCause,
    IncomingCall,
)

from .const import ENTRY_ID, PAGE_ID


def _device_id(hass: HomeAssistant, identifier: str) -> str:
    device = async_get_entry_device(hass, ENTRY_ID, identifier)
    assert device is not None
    return device.id


@pytest.mark.usefixtures("init_integration")
async def test_hangup(hass: HomeAssistant, mock_engine: MagicMock) -> None:
    """The hangup action ends the extension's current call through the engine."""
    mock_engine.on_event(
        IncomingCall(
            account_id=PAGE_ID,
            call_id="call-7",
            remote_uri="sip:3001@pbx.example.com",
            display_name="",
            source="192.0.2.10",
        )
    )
    await hass.async_block_till_done()

    await hass.services.async_call(
        DOMAIN,
        SERVICE_HANGUP,
        {ATTR_DEVICE_ID: _device_id(hass, PAGE_ID)},
        blocking=True,
    )

    mock_engine.hangup.assert_awaited_once_with("call-7")
    # The worker reports the end of the call it hung up.
    mock_engine.on_event(
        CallEnded(
            call_id="call-7",
            account_id=PAGE_ID,
            direction=CallDirection.INBOUND,
            cause=EndCause.LOCAL,
            code=200,
            reason="OK",
            answered=False,
            duration=0.5,
        )
    )
    await hass.async_block_till_done()
    assert (state := hass.states.get("sensor.page_2001_call_state"))
    assert state.state == "idle"


@pytest.mark.usefixtures("init_integration")
async def test_hangup_without_call(hass: HomeAssistant, mock_engine: MagicMock) -> None:
    """Without a call the action fails with a translated error; the engine is not asked."""
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_HANGUP,
            {ATTR_DEVICE_ID: _device_id(hass, PAGE_ID)},
            blocking=True,
        )

    assert raised.value.translation_key == "no_active_call"
    assert raised.value.translation_placeholders == {"extension": "2001"}
    mock_engine.hangup.assert_not_awaited()


@pytest.mark.usefixtures("init_integration")
async def test_hangup_on_server_device(
    hass: HomeAssistant, mock_engine: MagicMock
) -> None:
    """The server's device is no extension: the action says so."""
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_HANGUP,
            {ATTR_DEVICE_ID: _device_id(hass, ENTRY_ID)},
            blocking=True,
        )

    assert raised.value.translation_key == "not_an_extension"
    mock_engine.hangup.assert_not_awaited()
