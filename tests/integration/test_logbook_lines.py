"""The logbook lines of real calls read as sentences, under the extension's device name.

Found by trying the product as a user: the logbook showed "Extension 100 ended a call
(bye)" and "received a call from <sip:200@...>": an event key and SIP brackets, under
a name no other page of Home Assistant uses. A phone calls through a real Kamailio to
a real worker; the events it causes are described as the logbook describes them.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint import logbook
from custom_components.sip_endpoint.const import DOMAIN, EVENT_CALL
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state


def _describers(hass: HomeAssistant) -> dict[str, Callable[[Event], dict[str, str]]]:
    """Return the integration's logbook describer of each event type."""
    described: dict[str, Callable[[Event], dict[str, str]]] = {}

    def describe_event(
        domain: str, event_type: str, describe: Callable[[Event], dict[str, str]]
    ) -> None:
        assert domain == DOMAIN
        described[event_type] = describe

    logbook.async_describe_events(hass, describe_event)
    return described


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition that real SIP traffic makes true, for at most 15 s."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_call_lines_name_the_device_and_say_why(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """A page answered and hung up by the caller; a ring the caller gave up on."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")
    events: list[Event[Any]] = []

    @callback
    def record(event: Event[Any]) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_CALL, record)
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9001")
    caller.dial("2001")
    await hass.async_add_executor_job(caller.wait_established)
    caller.hangup()
    await _until(lambda: bool(events) and events[-1].data["type"] == "ended", "ended")
    caller.dial("2002")
    await _until(lambda: events[-1].data["type"] == "incoming", "the ring")
    caller.hangup()
    await _until(lambda: events[-1].data["type"] == "missed", "missed")

    describe = _describers(hass)[EVENT_CALL]
    lines = [describe(event) for event in events]
    devices = dr.async_get(hass)
    for event, line in zip(events, lines, strict=True):
        device = devices.async_get(event.data[ATTR_DEVICE_ID])
        assert device is not None
        assert line["name"] == device.name
    assert [line["name"] for line in lines] == [
        "Page 2001",
        "Page 2001",
        "Page 2001",
        "Ring 2002",
        "Ring 2002",
    ]
    messages = [line["message"] for line in lines]
    assert messages[0].startswith("received a call from sip:9001@")
    assert "<" not in messages[0]
    assert messages[1] == "answered a call"
    assert messages[2] == "ended a call: the other side hung up"
    assert messages[4] == "missed a call: the caller hung up before it was answered"


def test_caller_with_a_display_name(hass: HomeAssistant) -> None:
    """A name-addr caller shows as the name and the address inside its brackets."""
    describe = _describers(hass)[EVENT_CALL]
    line = describe(
        Event(
            EVENT_CALL,
            {
                "extension": "2001",
                "type": "incoming",
                "caller": '"Front door" <sip:9001@pbx.example;transport=udp>',
                "caller_name": "Front door",
            },
        )
    )
    assert line["message"] == (
        "received a call from Front door (sip:9001@pbx.example;transport=udp)"
    )
