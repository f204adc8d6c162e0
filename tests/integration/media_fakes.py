"""Test doubles for the Home Assistant side of audio: media players and a TTS engine."""

from dataclasses import dataclass
import io
from typing import Any
import wave

from homeassistant.components.media_player import MediaPlayerEntity
from homeassistant.components.media_player.const import (
    MediaPlayerEntityFeature,
    MediaPlayerState,
    MediaType,
    RepeatMode,
)
from homeassistant.components.tts import Provider, TtsAudioType
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockPlatform,
    mock_platform,
    setup_test_component_platform,
)

from tests.sipbed.audio import write_tone

TTS_TONE_HZ = 600.0  # what the fake TTS engine "says": a tone the tests can recognise


@dataclass(frozen=True)
class PlayerCall:
    """One action a media player received."""

    service: str
    args: tuple[Any, ...]


class RecordingMediaPlayer(MediaPlayerEntity):
    """A media player that only records what it is asked to do."""

    _attr_should_poll = False
    _attr_supported_features = (
        MediaPlayerEntityFeature.PLAY_MEDIA
        | MediaPlayerEntityFeature.STOP
        | MediaPlayerEntityFeature.VOLUME_SET
        | MediaPlayerEntityFeature.REPEAT_SET
    )

    def __init__(self, name: str) -> None:
        """Start idle, with no calls."""
        self._attr_name = name
        self._attr_unique_id = name
        self._attr_state = MediaPlayerState.IDLE
        self.calls: list[PlayerCall] = []

    def services(self) -> list[str]:
        """Return the names of the actions received, in order."""
        return [call.service for call in self.calls]

    def played(self) -> list[str]:
        """Return the media ids passed to play_media, in order."""
        return [call.args[1] for call in self.calls if call.service == "play_media"]

    async def async_play_media(
        self, media_type: MediaType | str, media_id: str, **kwargs: Any
    ) -> None:
        """Record play_media."""
        self.calls.append(PlayerCall("play_media", (media_type, media_id)))
        self._attr_state = MediaPlayerState.PLAYING
        self.async_write_ha_state()

    async def async_media_stop(self) -> None:
        """Record media_stop."""
        self.calls.append(PlayerCall("media_stop", ()))
        self._attr_state = MediaPlayerState.IDLE
        self.async_write_ha_state()

    async def async_set_volume_level(self, volume: float) -> None:
        """Record volume_set."""
        self.calls.append(PlayerCall("volume_set", (volume,)))
        self._attr_volume_level = volume
        self.async_write_ha_state()

    async def async_set_repeat(self, repeat: RepeatMode) -> None:
        """Record repeat_set."""
        self.calls.append(PlayerCall("repeat_set", (repeat,)))
        self._attr_repeat = repeat
        self.async_write_ha_state()


async def async_setup_players(
    hass: HomeAssistant, *names: str
) -> dict[str, RecordingMediaPlayer]:
    """Add recording media players; return them by entity id."""
    players = [RecordingMediaPlayer(name) for name in names]
    setup_test_component_platform(hass, "media_player", players)
    assert await async_setup_component(
        hass, "media_player", {"media_player": {"platform": "test"}}
    )
    await hass.async_block_till_done()
    by_id = {player.entity_id: player for player in players}
    assert all(by_id)
    return by_id


class ToneTtsProvider(Provider):
    """A TTS engine that answers every message with a 600 Hz tone as WAV."""

    def __init__(self, folder: Any) -> None:
        """Write its tone into `folder`."""
        self.name = "Tone TTS"
        self._tone = write_tone(folder / "tts-tone.wav", TTS_TONE_HZ, 2.0)

    @property
    def default_language(self) -> str:
        """English only."""
        return "en"

    @property
    def supported_languages(self) -> list[str]:
        """English only."""
        return ["en"]

    def get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        """Return the tone, whatever the message."""
        buffer = io.BytesIO()
        with wave.open(str(self._tone), "rb") as source, wave.open(buffer, "wb") as out:
            out.setparams(source.getparams())
            out.writeframes(source.readframes(source.getnframes()))
        return "wav", buffer.getvalue()


async def async_setup_tone_tts(hass: HomeAssistant, folder: Any) -> None:
    """Set up `tts` with the tone engine as its only (default) engine."""
    provider = ToneTtsProvider(folder)

    async def async_get_engine(
        hass: HomeAssistant, config: Any, discovery_info: Any = None
    ) -> Provider:
        return provider

    platform = MockPlatform()
    platform.async_get_engine = async_get_engine
    mock_platform(hass, "test.tts", platform)
    assert await async_setup_component(
        hass, "tts", {"tts": {"platform": "test", "cache": False}}
    )
    await hass.async_block_till_done()
