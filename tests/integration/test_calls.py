"""Incoming calls as Home Assistant shows them: call state and call events."""

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state, state_of


def _record_events(hass: HomeAssistant, entity_id: str) -> list[dict[str, Any]]:
    """Collect every event the entity fires, with its data."""
    fired: list[dict[str, Any]] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None and new.attributes.get(
            "event_type"
        ):
            fired.append(dict(new.attributes))

    async_track_state_change_event(hass, [entity_id], changed)
    return fired


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition that real SIP traffic makes true, for at most 15 s."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_page_call_is_answered_and_reported(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """A page is answered: paging state, incoming/answered/dtmf/ended events."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    events = _record_events(hass, "event.page_2001_call")
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9001")

    caller.dial("2001")
    await hass.async_add_executor_job(caller.wait_established)
    await async_wait_for_state(hass, "sensor.page_2001_call_state", "paging")
    await hass.async_add_executor_job(caller.send_dtmf, "7")
    await _until(lambda: any(e["event_type"] == "dtmf" for e in events), "dtmf")
    caller.hangup()
    await async_wait_for_state(hass, "sensor.page_2001_call_state", "idle")
    await _until(lambda: events[-1]["event_type"] == "ended", "ended")

    types = [event["event_type"] for event in events]
    assert types == ["incoming", "answered", "dtmf", "ended"]
    assert "9001" in events[0]["caller"]
    assert events[2]["digit"] == "7"
    assert events[3]["cause"] == "bye"
    assert len({event["call_id"] for event in events}) == 1


async def test_ring_call_cancelled_is_missed(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """A ring extension rings without answering; a cancelled ring is missed."""
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")
    events = _record_events(hass, "event.ring_2002_call")
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")

    caller.dial("2002")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, "sensor.ring_2002_call_state", "ringing")
    caller.hangup()
    await async_wait_for_state(hass, "sensor.ring_2002_call_state", "idle")

    assert state_of(hass, "event.ring_2002_call").attributes["event_type"] == "missed"
    assert [event["event_type"] for event in events] == ["incoming", "missed"]
    assert events[1]["cause"] == "cancel"
