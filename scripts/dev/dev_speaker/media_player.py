"""Media players that show what they were asked to play (scripts/develop only)."""

import logging
from typing import Any

from homeassistant.components.media_player import MediaPlayerEntity
from homeassistant.components.media_player.const import (
    MediaPlayerEntityFeature,
    MediaPlayerState,
    MediaType,
    RepeatMode,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

_LOGGER = logging.getLogger(__name__)


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """Add two development speakers."""
    async_add_entities([DevSpeaker("Lobby speaker"), DevSpeaker("Office speaker")])


class DevSpeaker(MediaPlayerEntity):
    """Logs and shows every play request; plays nothing."""

    _attr_should_poll = False
    _attr_supported_features = (
        MediaPlayerEntityFeature.PLAY_MEDIA
        | MediaPlayerEntityFeature.STOP
        | MediaPlayerEntityFeature.VOLUME_SET
        | MediaPlayerEntityFeature.REPEAT_SET
    )

    def __init__(self, name: str) -> None:
        """Start idle."""
        self._attr_name = name
        self._attr_unique_id = f"dev_speaker_{name.lower().replace(' ', '_')}"
        self._attr_state = MediaPlayerState.IDLE
        self._attr_volume_level = 0.5
        self._attr_repeat = RepeatMode.OFF

    async def async_play_media(
        self, media_type: MediaType | str, media_id: str, **kwargs: Any
    ) -> None:
        """Show the media as playing."""
        _LOGGER.info("%s plays %s (%s)", self.name, media_id, media_type)
        self._attr_state = MediaPlayerState.PLAYING
        self._attr_media_content_id = media_id
        self._attr_media_content_type = media_type
        self.async_write_ha_state()

    async def async_media_stop(self) -> None:
        """Stop."""
        _LOGGER.info("%s stops", self.name)
        self._attr_state = MediaPlayerState.IDLE
        self.async_write_ha_state()

    async def async_set_volume_level(self, volume: float) -> None:
        """Remember the volume."""
        self._attr_volume_level = volume
        self.async_write_ha_state()

    async def async_set_repeat(self, repeat: RepeatMode) -> None:
        """Remember the repeat mode."""
        self._attr_repeat = repeat
        self.async_write_ha_state()
