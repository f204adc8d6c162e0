"""Page extensions: answer, and bring the caller's voice to the media players.

`live`: the players get a signed URL of a WAV stream of the call (`audio_views.py`)
that starts with the chime. `record_then_play`: the call is recorded until the caller
hangs up (or the maximum duration), then the chime and the recording play.
The maximum duration hangs up the call in both modes.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
import secrets
import wave

from homeassistant.core import callback
from homeassistant.helpers.event import async_call_later

from ..const import (
    CONF_CHIME,
    CONF_MAX_DURATION,
    CONF_MEDIA_PLAYERS,
    CONF_PAGE_MODE,
    CONF_VOLUME,
    DEFAULT_MAX_DURATION,
    DEFAULT_VOLUME,
    LOGGER,
    PageMode,
)
from .audio_views import (
    async_close_live_audio,
    async_open_live_audio,
    file_path,
    live_path,
)
from .players import async_play_on_players, player_url
from .session import (
    MAX_ANSWER_AFTER,
    CallContext,
    CallSession,
    async_hangup,
    async_media_request,
)
from .sounds import SOUND_RATE, Sound, audio_dir, resample_pcm

RECORDING_PREFIX = "page-"
RECORDING_CLOSE_TIMEOUT = 10  # seconds for the worker to finish a recording


async def async_handle_page(context: CallContext, session: CallSession) -> None:
    """Answer a page (after Call-Info answer-after) and route its audio."""
    engine, options = context.engine, context.options
    if session.call.answer_after:
        await engine.ring(session.call_id)
        await asyncio.sleep(min(session.call.answer_after, MAX_ANSWER_AFTER))
        if session.ended.done():
            return
    await engine.answer(session.call_id)
    if not await session.wait_answered():
        return
    max_duration = options.get(CONF_MAX_DURATION, DEFAULT_MAX_DURATION)
    cancel_timer = async_call_later(
        context.hass, max_duration, _hangup_job(context, session)
    )
    try:
        if options.get(CONF_PAGE_MODE, PageMode.LIVE) == PageMode.RECORD_THEN_PLAY:
            await _async_record_then_play(context, session)
        else:
            await _async_live(context, session)
    finally:
        cancel_timer()


def _hangup_job(
    context: CallContext, session: CallSession
) -> Callable[[datetime], None]:
    @callback
    def hang_up(_now: datetime) -> None:
        LOGGER.debug("Page %s reached its maximum duration", session.call_id)
        context.hass.async_create_task(async_hangup(context, session))

    return hang_up


def _chime_pcm(context: CallContext) -> bytes:
    """Return the chime's PCM if the option is on (blocking read)."""
    if not context.options.get(CONF_CHIME, True):
        return b""
    with wave.open(str(context.sounds[Sound.CHIME]), "rb") as wav:
        return wav.readframes(wav.getnframes())


async def _async_live(context: CallContext, session: CallSession) -> None:
    hass = context.hass
    token, live = async_open_live_audio(hass, SOUND_RATE)
    try:
        if chime := await hass.async_add_executor_job(_chime_pcm, context):
            live.feed(chime)

        @callback
        def feed(pcm: bytes, rate: int) -> None:
            if rate == live.rate:
                live.feed(pcm)

        session.on_audio = feed
        if not await async_media_request(
            session,
            lambda: context.engine.stream(session.call_id, enable=True),
        ):
            return
        await async_play_on_players(
            hass,
            context.options.get(CONF_MEDIA_PLAYERS, []),
            player_url(hass, live_path(token)),
            volume=context.options.get(CONF_VOLUME, DEFAULT_VOLUME),
        )
        await session.wait_ended()
    finally:
        session.on_audio = None
        async_close_live_audio(hass, token)


async def _async_record_then_play(context: CallContext, session: CallSession) -> None:
    hass = context.hass
    folder = audio_dir(hass)
    name = f"{RECORDING_PREFIX}{context.account_id}-{secrets.token_hex(8)}.wav"
    raw = folder / f"raw-{name}"
    await hass.async_add_executor_job(lambda: folder.mkdir(parents=True, exist_ok=True))
    if not await async_media_request(
        session, lambda: context.engine.record(session.call_id, str(raw))
    ):
        return
    await session.wait_ended()
    try:
        async with asyncio.timeout(RECORDING_CLOSE_TIMEOUT):
            done = await session.recording
    except TimeoutError:
        LOGGER.warning("The recording of page %s was not closed", session.call_id)
        return
    chime = await hass.async_add_executor_job(_chime_pcm, context)
    await hass.async_add_executor_job(
        _finish_recording, Path(done.path), folder / name, chime, context.account_id
    )
    await async_play_on_players(
        hass,
        context.options.get(CONF_MEDIA_PLAYERS, []),
        player_url(hass, file_path(name)),
        volume=context.options.get(CONF_VOLUME, DEFAULT_VOLUME),
    )


def _finish_recording(raw: Path, target: Path, chime: bytes, account_id: str) -> None:
    """Write chime + recording as the file players fetch; drop older recordings."""
    for old in target.parent.glob(f"{RECORDING_PREFIX}{account_id}-*.wav"):
        old.unlink(missing_ok=True)
    with wave.open(str(raw), "rb") as source:
        rate = source.getframerate()
        voice = source.readframes(source.getnframes())
    with wave.open(str(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(resample_pcm(chime, SOUND_RATE, rate) + voice)
    raw.unlink(missing_ok=True)
