"""A ring extension rings even when its own ringtone cannot be had.

A ringtone stored before the flows checked it, or a media source removed later, must
not silence the players: they get the built-in ringtone, one warning names the
extension and the ringtone, and a repair issue stays until the ringtone resolves again.
"""

import logging

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from yarl import URL

from custom_components.sip_endpoint.calls.audio_views import file_path
from custom_components.sip_endpoint.calls.sounds import Sound
from custom_components.sip_endpoint.const import (
    CONF_MEDIA_PLAYERS,
    CONF_RINGTONE,
    DOMAIN,
    ExtensionRole,
)
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory, until

RING_STATE = "sensor.ring_2002_call_state"
ISSUE = "ringtone_unavailable_subentry_2002"
MISSING_RINGTONE = "media-source://nope/ring.mp3"
FIXED_RINGTONE = "http://media.example/ring.mp3"


def _issue(hass: HomeAssistant) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, ISSUE)


async def test_call_rings_the_builtin_ringtone_while_its_ringtone_is_missing(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call to a ring extension whose ringtone is gone: built-in ringtone, issue."""
    players = await async_setup_players(hass, "Bell")
    player = next(iter(players.values()))
    entry = await create_entry(
        [
            (
                ExtensionRole.RING,
                "2002",
                {CONF_MEDIA_PLAYERS: list(players), CONF_RINGTONE: MISSING_RINGTONE},
            )
        ]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")
    caplog.clear()

    caller.dial("2002")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, RING_STATE, "ringing")
    await until(lambda: "repeat_set" in player.services(), "the ringtone")
    (url,) = player.played()
    assert URL(url).path == file_path(f"{Sound.RINGTONE.value}.wav")
    (warning,) = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.sip_endpoint")
        and record.levelno >= logging.WARNING
    ]
    assert "2002" in warning
    assert MISSING_RINGTONE in warning
    issue = _issue(hass)
    assert issue is not None
    assert issue.translation_key == "ringtone_unavailable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["extension"] == "2002"
    assert issue.translation_placeholders["media"] == MISSING_RINGTONE
    caller.hangup()
    await until(lambda: player.services()[-1] == "media_stop", "the ringtone to stop")
    await async_wait_for_state(hass, RING_STATE, "idle")

    # The user picks a ringtone that exists: the next call rings it, the issue goes.
    subentry = entry.subentries["subentry_2002"]
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, CONF_RINGTONE: FIXED_RINGTONE}
    )
    await hass.async_block_till_done()
    caller.dial("2002")
    await until(lambda: len(player.played()) == 2, "the second ringtone")
    assert player.played()[-1] == FIXED_RINGTONE
    assert _issue(hass) is None
    caller.hangup()
    await until(lambda: player.services()[-1] == "media_stop", "the ringtone to stop")
