"""A page whose caller gives up during the answer-after delay is never answered."""

import asyncio

from homeassistant.core import HomeAssistant

from custom_components.sip_endpoint.const import CONF_MEDIA_PLAYERS, ExtensionRole
from tests.worker.rawcall import RawCaller

from .helpers import async_wait_for_state, state_of
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory

PAGE_STATE = "sensor.page_2001_call_state"


async def test_cancel_during_answer_after(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """The caller's CANCEL ends the ringing; the delay's end answers nothing."""
    players = await async_setup_players(hass, "Speaker")
    entry = await create_entry(
        [(ExtensionRole.PAGE, "2001", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    (worker,) = entry.runtime_data.engine.workers()
    assert worker.sip_port is not None
    caller = RawCaller("2001", worker.sip_port)
    try:
        caller.invite("Call-Info: <sip:127.0.0.1>;answer-after=1\r\n")
        await hass.async_add_executor_job(caller.wait_response, "INVITE", 180)
        assert state_of(hass, PAGE_STATE).state == "ringing"
        caller.cancel()
        final = await hass.async_add_executor_job(caller.wait_response, "INVITE")
        assert final.code == 487
        await async_wait_for_state(hass, PAGE_STATE, "idle")
        await asyncio.sleep(1.5)  # past the answer-after delay
        await hass.async_block_till_done()
        assert state_of(hass, PAGE_STATE).state == "idle"
        assert all(player.calls == [] for player in players.values())
    finally:
        caller.close()
