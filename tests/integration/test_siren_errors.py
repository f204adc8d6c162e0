"""The siren alerts even when the extension's own media cannot be found."""

from homeassistant.core import HomeAssistant
from yarl import URL

from custom_components.sip_endpoint.calls.audio_views import file_path
from custom_components.sip_endpoint.const import (
    CONF_ALERT_MEDIA,
    CONF_MEDIA_PLAYERS,
    ExtensionRole,
)

from .helpers import state_of
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory

SIREN = "siren.emergency_alert_2003_alert"


async def test_turn_on_with_configured_media_that_cannot_be_found(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """The extension's own alert media resolves to nothing: the built-in alert plays.

    (It was media_not_found with the siren off; an alert must never stay silent.
    test_alert_media_fallback.py covers the warning and the repair issue.)
    """
    players = await async_setup_players(hass, "Horn")
    await create_entry(
        [
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {
                    CONF_MEDIA_PLAYERS: list(players),
                    CONF_ALERT_MEDIA: "media-source://media_source/nowhere/x.mp3",
                },
            )
        ]
    )
    await hass.services.async_call(
        "siren", "turn_on", {"entity_id": SIREN}, blocking=True
    )
    assert state_of(hass, SIREN).state == "on"
    player = next(iter(players.values()))
    (url,) = player.played()
    assert URL(url).path == file_path("alert.wav")
