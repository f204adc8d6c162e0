"""Home Assistant restarts while an emergency alert runs: the documented choice holds.

README: an alert that was running is cleared, not resumed, after a restart; the siren
is off and the players are told to stop. Here the alert is started by a real call,
Home Assistant's side is unloaded and set up again (its restart, for this
integration), and a new call still starts a new alert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.integration.helpers import async_wait_for_state, state_of
from tests.integration.roles import role_entries
from tests.integration.test_alert import (
    ALERT_STATE,
    SIREN,
    _alert_events,
    _caller,
    _setup,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from tests.integration.roles import RoleEntryFactory
    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def alert_entries(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> AsyncIterator[RoleEntryFactory]:
    """Create loaded entries with role options (as tests/integration/test_alert.py)."""
    async with role_entries(hass, kamailio, make_entry) as create:
        yield create


async def test_restart_during_an_alert_clears_it(
    hass: HomeAssistant,
    alert_entries: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Alert on, restart: stopped (unloaded), not resumed; a new call alerts again."""
    player = await _setup(hass, alert_entries)
    events = _alert_events(hass)
    caller = await _caller(hass, baresip_factory, kamailio)
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, SIREN, "on")

    entry = hass.config_entries.async_entries("sip_endpoint")[0]
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()

    assert "media_stop" in player.services()
    assert [event["type"] for event in events] == ["started", "stopped"]
    assert events[1]["reason"] == "unloaded"
    await async_wait_for_state(
        hass, "sensor.emergency_alert_2003_registration", "successful"
    )
    assert state_of(hass, SIREN).state == "off"
    assert state_of(hass, ALERT_STATE).state == "idle"

    caller.hangup()
    await hass.async_add_executor_job(caller.wait_closed)
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, SIREN, "on")
    assert [event["type"] for event in events] == ["started", "stopped", "started"]
    caller.hangup()
