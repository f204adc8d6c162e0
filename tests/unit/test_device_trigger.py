"""Device triggers: which an extension's device offers."""

from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_get_device_automations

from custom_components.sip_endpoint.const import DOMAIN
from custom_components.sip_endpoint.device_lookup import async_get_entry_device

from .const import ALERT_ID, ENTRY_ID, PAGE_ID, RING_ID

CALL_TRIGGERS = {
    "incoming_call",
    "answered",
    "ended",
    "missed",
    "dtmf",
    "registration_failed",
}
ALERT_TRIGGERS = {"alert_started", "alert_stopped"}


async def _own_trigger_types(hass: HomeAssistant, identifier: str) -> set[str]:
    """Return the types of this integration's triggers on a device of the entry."""
    device = async_get_entry_device(hass, ENTRY_ID, identifier)
    assert device is not None
    triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, device.id
    )
    own = [trigger for trigger in triggers if trigger["domain"] == DOMAIN]
    assert all(
        (trigger["platform"], trigger["device_id"]) == ("device", device.id)
        for trigger in own
    )
    types = {trigger["type"] for trigger in own}
    assert len(types) == len(own), "a trigger is listed twice"
    return types


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        (PAGE_ID, CALL_TRIGGERS),
        (RING_ID, CALL_TRIGGERS),
        (ALERT_ID, CALL_TRIGGERS | ALERT_TRIGGERS),
        (ENTRY_ID, set()),  # the server's device
    ],
    ids=["page", "ring", "emergency_alert", "server"],
)
async def test_trigger_list(
    hass: HomeAssistant, identifier: str, expected: set[str]
) -> None:
    """Every extension offers the call triggers; only alert extensions the alert ones."""
    assert await _own_trigger_types(hass, identifier) == expected
