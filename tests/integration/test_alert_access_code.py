"""An answered alert call without the right access code hangs up and starts nothing."""

import logging

from homeassistant.core import HomeAssistant
import pytest

from custom_components.sip_endpoint.calls import alert
from custom_components.sip_endpoint.const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_MEDIA,
    CONF_ANSWER_INBOUND_CALL,
    CONF_MEDIA_PLAYERS,
    ExtensionRole,
)
from tests.sipbed.baresip import Baresip, BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, state_of
from .media_fakes import RecordingMediaPlayer, async_setup_players
from .roles import RoleEntryFactory

SIREN = "siren.emergency_alert_2003_alert"
NO_CODE = "No valid access code"


async def _setup(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    baresip_factory: BaresipFactory,
    kamailio: Kamailio,
) -> tuple[RecordingMediaPlayer, Baresip]:
    players = await async_setup_players(hass, "Horn")
    await create_entry(
        [
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {
                    CONF_MEDIA_PLAYERS: list(players),
                    CONF_ALERT_MEDIA: "http://media.example/evacuate.mp3",
                    CONF_ANSWER_INBOUND_CALL: True,
                    CONF_ACCESS_CODE: "1234",
                },
            )
        ]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9003")
    return next(iter(players.values())), caller


async def test_no_code_in_time_hangs_up(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller who enters nothing is hung up on once the time for the code is over."""
    monkeypatch.setattr(alert, "ACCESS_CODE_TIMEOUT", 1)
    caplog.set_level(logging.INFO, logger="custom_components.sip_endpoint")
    player, caller = await _setup(hass, create_entry, baresip_factory, kamailio)
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_established)
    await hass.async_add_executor_job(caller.wait_closed)  # we hang up
    assert NO_CODE in caplog.text
    assert state_of(hass, SIREN).state == "off"
    assert player.calls == []
