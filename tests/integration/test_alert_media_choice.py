"""Which sound an alert plays: the action's media, or the configured TTS message."""

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from yarl import URL

from custom_components.sip_endpoint.const import (
    CONF_ALERT_MEDIA,
    CONF_ALERT_TTS_MESSAGE,
    CONF_MEDIA_PLAYERS,
    DOMAIN,
    ExtensionRole,
)

from .devices import entry_device
from .helpers import state_of
from .media_fakes import (
    RecordingMediaPlayer,
    async_setup_players,
    async_setup_tone_tts,
)
from .roles import RoleEntryFactory

SIREN = "siren.emergency_alert_2003_alert"
CONFIGURED_MEDIA = "http://media.example/evacuate.mp3"


async def _alert_extension(
    hass: HomeAssistant, create_entry: RoleEntryFactory, **options: Any
) -> tuple[RecordingMediaPlayer, str]:
    players = await async_setup_players(hass, "Horn")
    await create_entry(
        [
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {CONF_MEDIA_PLAYERS: list(players), **options},
            )
        ]
    )
    device = entry_device(hass, "subentry_2003")
    assert device is not None
    return next(iter(players.values())), device.id


async def test_action_media_wins_over_the_configured_one(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """play_alert with media plays that media, not the extension's own."""
    player, device_id = await _alert_extension(
        hass, create_entry, **{CONF_ALERT_MEDIA: CONFIGURED_MEDIA}
    )
    other = "http://media.example/lockdown.mp3"
    await hass.services.async_call(
        DOMAIN, "play_alert", {"device_id": device_id, "media": other}, blocking=True
    )
    assert state_of(hass, SIREN).state == "on"
    assert player.played() == [other]
    await hass.services.async_call(
        DOMAIN, "cancel_alert", {"device_id": device_id}, blocking=True
    )
    assert state_of(hass, SIREN).state == "off"


async def test_configured_tts_message_is_spoken(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> None:
    """Without media, the configured TTS message is what the players get."""
    await async_setup_tone_tts(hass, tmp_path)
    player, device_id = await _alert_extension(
        hass, create_entry, **{CONF_ALERT_TTS_MESSAGE: "Please leave the building"}
    )
    await hass.services.async_call(
        DOMAIN, "play_alert", {"device_id": device_id}, blocking=True
    )
    assert state_of(hass, SIREN).state == "on"
    (url,) = player.played()
    assert URL(url).path.startswith("/api/tts_proxy/")
    # Home Assistant 2026 renders the message into its TTS cache in a background task
    # (nothing here fetches the URL); let it finish before the test's cleanup checks.
    await hass.async_block_till_done(wait_background_tasks=True)
