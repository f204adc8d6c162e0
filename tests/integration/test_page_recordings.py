"""Record-then-play pages keep only the newest recording of each extension."""

import asyncio

from homeassistant.core import HomeAssistant
from yarl import URL

from custom_components.sip_endpoint.calls.sounds import audio_dir
from custom_components.sip_endpoint.const import (
    CONF_CHIME,
    CONF_MEDIA_PLAYERS,
    CONF_PAGE_MODE,
    ExtensionRole,
    PageMode,
)
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory, until

PAGE_STATE = "sensor.page_2001_call_state"


async def test_second_page_replaces_the_first_recording(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Each page plays its own recording; the older file is deleted."""
    players = await async_setup_players(hass, "Speaker")
    (player,) = players.values()
    await create_entry(
        [
            (
                ExtensionRole.PAGE,
                "2001",
                {
                    CONF_MEDIA_PLAYERS: list(players),
                    CONF_PAGE_MODE: PageMode.RECORD_THEN_PLAY,
                    CONF_CHIME: False,
                },
            )
        ]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9001")

    def recordings() -> list[str]:
        return sorted(path.name for path in audio_dir(hass).glob("page-*.wav"))

    names: list[list[str]] = []
    for _ in range(2):
        caller.dial("2001")
        await hass.async_add_executor_job(caller.wait_established)
        await async_wait_for_state(hass, PAGE_STATE, "paging")
        await asyncio.sleep(1.0)  # the caller speaks (sends its tone) for a while
        caller.hangup()
        await hass.async_add_executor_job(caller.wait_closed)
        await until(lambda: len(player.played()) == len(names) + 1, "play_media")
        names.append(await hass.async_add_executor_job(recordings))

    assert len(names[0]) == 1
    assert len(names[1]) == 1
    assert names[0] != names[1]
    assert URL(player.played()[1]).path.endswith(names[1][0])
