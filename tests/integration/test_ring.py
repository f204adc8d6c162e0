"""Ring extensions: the ringtone plays on the media players while a call rings."""

from homeassistant.components.media_player.const import RepeatMode
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.sip_endpoint.const import (
    CONF_MEDIA_PLAYERS,
    CONF_RINGTONE,
    ExtensionRole,
)
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio
from tests.worker.rawcall import RawCaller

from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory, until

RING_STATE = "sensor.ring_2002_call_state"


async def test_ringtone_plays_until_the_caller_cancels(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The bundled ringtone loops on the players while ringing, and stops on CANCEL."""
    players = await async_setup_players(hass, "Bell 1", "Bell 2")
    await create_entry(
        [(ExtensionRole.RING, "2002", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")

    caller.dial("2002")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, RING_STATE, "ringing")
    await until(
        lambda: all("repeat_set" in p.services() for p in players.values()),
        "the ringtone",
    )
    for player in players.values():
        assert player.services() == ["play_media", "repeat_set"]
        assert player.calls[1].args == (RepeatMode.ONE,)
    url = URL(next(iter(players.values())).played()[0])
    client = await hass_client_no_auth()
    response = await client.get(url.path_qs)
    assert response.status == 200
    assert (await response.read())[:4] == b"RIFF"

    caller.hangup()
    await async_wait_for_state(hass, RING_STATE, "idle")
    await until(
        lambda: all(p.services()[-1] == "media_stop" for p in players.values()),
        "the ringtone to stop",
    )
    assert state_of(hass, "event.ring_2002_call").attributes["event_type"] == "missed"


async def test_configured_ringtone(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """A configured ringtone URL is played as it is."""
    players = await async_setup_players(hass, "Bell")
    ringtone = "http://media.example/ring.mp3"
    await create_entry(
        [
            (
                ExtensionRole.RING,
                "2002",
                {CONF_MEDIA_PLAYERS: list(players), CONF_RINGTONE: ringtone},
            )
        ]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")
    caller.dial("2002")
    player = next(iter(players.values()))
    await until(lambda: bool(player.played()), "the ringtone")
    assert player.played() == [ringtone]
    caller.hangup()
    await until(lambda: player.services()[-1] == "media_stop", "the ringtone to stop")


async def test_ringtone_stops_when_answered_elsewhere(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """A CANCEL with Reason cause=200 (answered elsewhere) stops the ringtone."""
    players = await async_setup_players(hass, "Bell")
    entry = await create_entry(
        [(ExtensionRole.RING, "2002", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    (worker,) = entry.runtime_data.engine.workers()
    assert worker.sip_port is not None
    player = next(iter(players.values()))
    caller = RawCaller("2002", worker.sip_port)
    try:
        caller.invite()
        await until(lambda: bool(player.played()), "the ringtone")
        caller.cancel('SIP;cause=200;text="Call completed elsewhere"')
        await until(lambda: player.services()[-1] == "media_stop", "the stop")
        final = await hass.async_add_executor_job(caller.wait_response, "INVITE")
        assert final.code == 487
        await hass.async_add_executor_job(lambda: caller.ack(to_tag_from=final))
    finally:
        caller.close()
    await async_wait_for_state(hass, RING_STATE, "idle")
    call = state_of(hass, "event.ring_2002_call")
    assert call.attributes["event_type"] == "missed"
    assert call.attributes["cause"] == "answered_elsewhere"
