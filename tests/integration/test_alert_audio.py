"""What the alert's players hear, checked by frequency on the player path.

A call through Kamailio starts the alert; the test fetches the URL the media player
was given, as a player would, and analyses the audio: the generated warble (800 Hz
then 1000 Hz, half a second each) or the configured TTS message (the fake TTS engine
speaks a 600 Hz tone, which Home Assistant's TTS turns into MP3; ffmpeg decodes it).
"""

import io
from pathlib import Path
import subprocess
import wave

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.sip_endpoint.const import (
    CONF_ALERT_TTS_MESSAGE,
    CONF_MEDIA_PLAYERS,
    ExtensionRole,
)
from tests.sipbed.audio import dominant_frequency, rms, trim_silence
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state
from .media_fakes import (
    TTS_TONE_HZ,
    RecordingMediaPlayer,
    async_setup_players,
    async_setup_tone_tts,
)
from .roles import RoleEntryFactory, until

SIREN = "siren.emergency_alert_2003_alert"
WARBLE_HZ = (800.0, 1000.0)  # calls/sounds.py: Sound.ALERT, 0.5 s each
WARBLE_STEP = 0.5


def _pcm(data: bytes) -> tuple[list[int], int]:
    """Return the samples (first channel) and rate of a 16-bit WAV file's bytes."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert wav.getsampwidth() == 2
        channels, rate = wav.getnchannels(), wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = [
        int.from_bytes(frames[i : i + 2], "little", signed=True)
        for i in range(0, len(frames), 2 * channels)
    ]
    return samples, rate


async def _alerting_player(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    **options: object,
) -> RecordingMediaPlayer:
    """Start extension 2003's alert with a call; return its (only) player."""
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
    player = next(iter(players.values()))
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9003")
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, SIREN, "on")
    await until(lambda: bool(player.played()), "play_media")
    caller.hangup()
    await hass.async_add_executor_job(caller.wait_closed)
    return player


async def _fetch(
    hass_client_no_auth: ClientSessionGenerator, player: RecordingMediaPlayer
) -> bytes:
    client = await hass_client_no_auth()
    response = await client.get(URL(player.played()[0]).path_qs)
    assert response.status == 200
    data: bytes = await response.read()
    return data


def _decoded(data: bytes) -> bytes:
    """Return the audio as 16-bit mono WAV (ffmpeg, as the players would decode it)."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "wav", "-ac", "1", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return result.stdout


async def test_default_alert_plays_the_warble(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Without media or message the players get the two-tone warble, 800/1000 Hz."""
    player = await _alerting_player(hass, create_entry, kamailio, baresip_factory)
    samples, rate = _pcm(await _fetch(hass_client_no_auth, player))
    step = int(rate * WARBLE_STEP)
    assert len(samples) >= 4 * step
    # Analyse the middle 60 % of each half second (away from the fades).
    margin = step // 5
    heard = [
        dominant_frequency(samples[start + margin : start + step - margin], rate)
        for start in range(0, 4 * step, step)
    ]
    expected = [*WARBLE_HZ, *WARBLE_HZ]
    assert all(abs(h - e) < 15 for h, e in zip(heard, expected, strict=True)), heard
    assert rms(samples[margin : step - margin]) > 0.1


async def test_alert_speaks_the_configured_message(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """With a TTS message the players get the spoken message (the fake's 600 Hz)."""
    await async_setup_tone_tts(hass, tmp_path)
    player = await _alerting_player(
        hass,
        create_entry,
        kamailio,
        baresip_factory,
        **{CONF_ALERT_TTS_MESSAGE: "Please leave the building"},
    )
    assert URL(player.played()[0]).path.startswith("/api/tts_proxy/")
    # Home Assistant's TTS hands players MP3 (ID3 header) by default.
    data = await _fetch(hass_client_no_auth, player)
    samples, rate = _pcm(await hass.async_add_executor_job(_decoded, data))
    voice = trim_silence(samples)
    assert len(voice) > rate  # the fake speaks 2 s
    steady = voice[rate // 10 : rate // 10 + rate]
    assert rms(steady) > 0.05
    assert abs(dominant_frequency(steady, rate) - TTS_TONE_HZ) < 15
    await hass.async_block_till_done(wait_background_tasks=True)
