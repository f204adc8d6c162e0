"""The siren's errors are translated: an alert whose media cannot be found."""

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest

from custom_components.sip_endpoint.const import (
    CONF_ALERT_MEDIA,
    CONF_MEDIA_PLAYERS,
    DOMAIN,
    ExtensionRole,
)

from .helpers import state_of
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory

SIREN = "siren.emergency_alert_2003_alert"


async def test_turn_on_with_configured_media_that_cannot_be_found(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """The extension's own alert media resolves to nothing: media_not_found, siren off."""
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
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            "siren", "turn_on", {"entity_id": SIREN}, blocking=True
        )
    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "media_not_found"
    assert str(raised.value).startswith("The media could not be found: ")
    assert state_of(hass, SIREN).state == "off"
    player = next(iter(players.values()))
    assert player.played() == []
