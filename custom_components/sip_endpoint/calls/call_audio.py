"""Audio for calls: TTS messages and media turned into what a call plays.

Home Assistant's `tts` speaks the message; the `ffmpeg` integration's binary converts it
(or any media file or URL) to mono 16-bit 16 kHz WAV, which the SIP worker plays.
"""

import asyncio
from pathlib import Path
import secrets

from homeassistant.components import media_source
from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from ..const import DOMAIN
from .players import async_resolve_media
from .sounds import SOUND_RATE, audio_dir

FFMPEG_TIMEOUT = 60  # seconds to convert one message or file


def tts_media_source_id(hass: HomeAssistant, message: str) -> str:
    """Return the media source id of a message spoken by the default TTS engine."""
    if "tts" not in hass.config.components:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="tts_not_available"
        )
    # Imported here: `tts` is an after-dependency, loaded only when set up.
    from homeassistant.components.tts import (
        generate_media_source_id,
    )

    try:
        return generate_media_source_id(hass, message)
    except HomeAssistantError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="tts_not_available"
        ) from err


async def async_call_audio(
    hass: HomeAssistant, *, media: str | None = None, message: str | None = None
) -> Path:
    """Make a WAV file a call can play from a media id, URL, file or TTS message."""
    folder = audio_dir(hass)
    await hass.async_add_executor_job(lambda: folder.mkdir(parents=True, exist_ok=True))
    target = folder / f"call-{secrets.token_hex(8)}.wav"
    try:
        await _async_convert(hass, target, media, message)
    except BaseException:
        await hass.async_add_executor_job(target.unlink, True)
        raise
    return target


async def _async_convert(
    hass: HomeAssistant, target: Path, media: str | None, message: str | None
) -> None:
    if message is not None:
        from homeassistant.components.tts import (
            async_get_media_source_audio,
        )

        _extension, data = await async_get_media_source_audio(
            hass, tts_media_source_id(hass, message)
        )
        await _async_ffmpeg(hass, "pipe:0", target, data)
        return
    assert media is not None
    if media.startswith("/") and not media_source.is_media_source_id(media):
        if not hass.config.is_allowed_path(media):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="media_not_allowed",
                translation_placeholders={"media": media},
            )
        source = media
    else:
        source = await async_resolve_media(hass, media)
    await _async_ffmpeg(hass, source, target, None)


async def _async_ffmpeg(
    hass: HomeAssistant, source: str, target: Path, data: bytes | None
) -> None:
    """Convert `source` (or `data` on stdin) to the call's WAV format."""
    try:
        process = await _async_start_ffmpeg(hass, source, target, data is not None)
    except OSError as start_error:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="audio_conversion_failed"
        ) from start_error
    try:
        async with asyncio.timeout(FFMPEG_TIMEOUT):
            _out, errors = await process.communicate(data)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="audio_conversion_failed"
        ) from None
    if process.returncode != 0:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="audio_conversion_failed",
        ) from RuntimeError(errors.decode(errors="replace")[-500:])


async def _async_start_ffmpeg(
    hass: HomeAssistant, source: str, target: Path, stdin: bool
) -> asyncio.subprocess.Process:
    """Start ffmpeg converting `source` (or stdin) to the call's WAV format."""
    return await asyncio.create_subprocess_exec(
        get_ffmpeg_manager(hass).binary,
        "-hide_banner" if stdin else "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        source,
        "-ac",
        "1",
        "-ar",
        str(SOUND_RATE),
        "-sample_fmt",
        "s16",
        "-f",
        "wav",
        str(target),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
