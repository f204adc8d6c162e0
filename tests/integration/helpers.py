"""Helpers for waiting on states that real SIP traffic changes."""

import asyncio
from collections.abc import Callable

from homeassistant.core import (
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers.event import async_track_state_change_event

from tests.sipbed.baresip import Baresip, BaresipFactory
from tests.sipbed.kamailio import Kamailio
from tests.sipbed.users import password_for

DEFAULT_TIMEOUT = 30.0


async def async_wait_for_state(
    hass: HomeAssistant,
    entity_id: str,
    expected: str | Callable[[State], bool],
    within: float = DEFAULT_TIMEOUT,
) -> State:
    """Wait until an entity's state matches; fail with the last state seen."""

    def matches(state: State | None) -> bool:
        if state is None:
            return False
        if isinstance(expected, str):
            return state.state == expected
        return expected(state)

    if matches(current := hass.states.get(entity_id)):
        assert current is not None
        return current
    reached = asyncio.Event()

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        if matches(event.data["new_state"]):
            reached.set()

    unsubscribe = async_track_state_change_event(hass, [entity_id], changed)
    try:
        async with asyncio.timeout(within):
            await reached.wait()
    except TimeoutError:
        raise AssertionError(
            f"{entity_id} did not reach {expected!r}; it is {hass.states.get(entity_id)}"
        ) from None
    finally:
        unsubscribe()
    state = hass.states.get(entity_id)
    assert state is not None
    return state


def state_of(hass: HomeAssistant, entity_id: str) -> State:
    """Return an entity's state, failing when it has none."""
    state = hass.states.get(entity_id)
    assert state is not None, f"{entity_id} has no state"
    return state


async def async_registered_phone(
    hass: HomeAssistant,
    baresip_factory: BaresipFactory,
    kamailio: Kamailio,
    user: str,
) -> Baresip:
    """Start a baresip as test user ``user`` and wait until Kamailio registered it."""
    phone = baresip_factory(user=user, password=password_for(user), registrar=kamailio)
    await hass.async_add_executor_job(phone.wait_registered)
    return phone
