"""Page extensions: the caller's voice reaches the media players, live or recorded."""

import asyncio
from datetime import timedelta
import io
import struct
import wave

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.sip_endpoint.calls.sounds import audio_dir
from custom_components.sip_endpoint.const import (
    CONF_CHIME,
    CONF_MAX_DURATION,
    CONF_MEDIA_PLAYERS,
    CONF_PAGE_MODE,
    CONF_VOLUME,
    ExtensionRole,
    PageMode,
)
from tests.sipbed.audio import dominant_frequency, rms, trim_silence
from tests.sipbed.baresip import DEFAULT_TONE_HZ, Baresip, BaresipFactory
from tests.sipbed.kamailio import Kamailio
from tests.worker.rawcall import RawCaller

from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import RecordingMediaPlayer, async_setup_players
from .roles import RoleEntryFactory, until

PAGE_STATE = "sensor.page_2001_call_state"
CHIME_SECONDS = 1.05  # sounds.py: 0.35 s + 0.5 s notes and 0.2 s of silence


async def _paged(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    names: tuple[str, ...] = ("Speaker",),
    options: dict[str, object] | None = None,
) -> tuple[list[RecordingMediaPlayer], Baresip]:
    """Make page extension 2001 for players ``names`` (and ``options``); call it.

    Return the players and the caller (9001), once the call is established.
    """
    players = await async_setup_players(hass, *names)
    await create_entry(
        [
            (
                ExtensionRole.PAGE,
                "2001",
                {CONF_MEDIA_PLAYERS: list(players), **(options or {})},
            )
        ]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9001")
    caller.dial("2001")
    await hass.async_add_executor_job(caller.wait_established)
    return list(players.values()), caller


def _pcm(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2]))


def _signed_path(player: RecordingMediaPlayer) -> URL:
    url = URL(player.played()[0])
    assert url.is_absolute()
    assert "authSig" in url.query
    return url


async def test_live_page_streams_the_callers_voice(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A live page plays a signed WAV stream of the caller on every player."""
    players, caller = await _paged(
        hass,
        create_entry,
        kamailio,
        baresip_factory,
        ("Speaker 1", "Speaker 2"),
        {CONF_PAGE_MODE: PageMode.LIVE, CONF_VOLUME: 40, CONF_CHIME: False},
    )
    await async_wait_for_state(hass, PAGE_STATE, "paging")
    await until(lambda: all(p.played() for p in players), "play_media")

    for player in players:
        assert player.services() == ["volume_set", "play_media"]
        assert player.calls[0].args == (0.4,)
    url = _signed_path(players[0])
    client = await hass_client_no_auth()
    assert (await client.get(url.path)).status == 401  # not without its signature
    response = await client.get(url.path_qs)
    assert response.status == 200
    assert response.content_type == "audio/wav"
    header = await response.content.readexactly(44)
    assert header[:4] == b"RIFF"
    assert header[8:16] == b"WAVEfmt "
    rate = int.from_bytes(header[24:28], "little")
    second = await response.content.readexactly(rate * 2)

    caller.hangup()
    rest = await response.read()  # the stream ends with the page
    await async_wait_for_state(hass, PAGE_STATE, "idle")

    voice = trim_silence(_pcm(second + rest))
    assert len(voice) > rate // 2
    assert rms(voice) > 0.05
    assert abs(dominant_frequency(voice, rate) - DEFAULT_TONE_HZ) < 30


async def test_live_page_starts_with_the_chime(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """With the chime on, the stream opens with the chime's first note (784 Hz)."""
    [player], caller = await _paged(hass, create_entry, kamailio, baresip_factory)
    await until(lambda: bool(player.played()), "play_media")

    client = await hass_client_no_auth()
    response = await client.get(_signed_path(player).path_qs)
    header = await response.content.readexactly(44)
    rate = int.from_bytes(header[24:28], "little")
    first_note = _pcm(await response.content.readexactly(int(rate * 0.3) * 2))
    caller.hangup()
    await response.read()

    assert abs(dominant_frequency(first_note, rate) - 784) < 15
    # The default volume (50 %) was set first.
    assert player.calls[0].args == (0.5,)


async def test_record_then_play(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The page is recorded until the caller hangs up, then chime + voice play."""
    players, caller = await _paged(
        hass,
        create_entry,
        kamailio,
        baresip_factory,
        ("Speaker 1", "Speaker 2"),
        {CONF_PAGE_MODE: PageMode.RECORD_THEN_PLAY, CONF_VOLUME: 70},
    )
    await async_wait_for_state(hass, PAGE_STATE, "paging")
    await asyncio.sleep(1.5)  # the caller speaks (sends its tone) for a while
    assert not any(p.played() for p in players)  # nothing before the end
    caller.hangup()
    await until(lambda: all(p.played() for p in players), "play_media")

    for player in players:
        assert player.services() == ["volume_set", "play_media"]
        assert player.calls[0].args == (0.7,)
    recordings = await hass.async_add_executor_job(
        lambda: list(audio_dir(hass).glob("page-*.wav"))
    )
    assert len(recordings) == 1
    client = await hass_client_no_auth()
    response = await client.get(_signed_path(players[0]).path_qs)
    assert response.status == 200
    with wave.open(io.BytesIO(await response.read()), "rb") as wav:
        rate = wav.getframerate()
        samples = _pcm(wav.readframes(wav.getnframes()))
    chime, voice = samples[: int(rate * 0.3)], samples[int(rate * CHIME_SECONDS) :]
    assert abs(dominant_frequency(chime, rate) - 784) < 15
    voice = trim_silence(voice)
    assert len(voice) > rate // 2
    assert abs(dominant_frequency(voice, rate) - DEFAULT_TONE_HZ) < 30


async def test_maximum_duration_hangs_up(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """A page longer than its maximum duration is hung up by Home Assistant."""
    [player], caller = await _paged(
        hass, create_entry, kamailio, baresip_factory, options={CONF_MAX_DURATION: 20}
    )
    await async_wait_for_state(hass, PAGE_STATE, "paging")
    await until(lambda: bool(player.played()), "play_media")  # the page is set up

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=21))
    await hass.async_add_executor_job(caller.wait_closed)
    await async_wait_for_state(hass, PAGE_STATE, "idle")
    call = state_of(hass, "event.page_2001_call")
    assert call.attributes["event_type"] == "ended"
    assert call.attributes["cause"] == "local"


async def test_call_info_answer_after(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """A page with Call-Info answer-after rings first, then is answered."""
    players = await async_setup_players(hass, "Speaker")
    entry = await create_entry(
        [(ExtensionRole.PAGE, "2001", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    (worker,) = entry.runtime_data.engine.workers()
    assert worker.sip_port is not None
    caller = RawCaller("2001", worker.sip_port)
    try:
        caller.invite("Call-Info: <sip:127.0.0.1>;answer-after=1\r\n")
        ringing = await hass.async_add_executor_job(caller.wait_response, "INVITE", 180)
        assert ringing.code == 180
        assert state_of(hass, PAGE_STATE).state == "ringing"
        answer = await hass.async_add_executor_job(caller.wait_response, "INVITE")
        assert answer.code == 200
        await hass.async_add_executor_job(lambda: caller.ack(to_tag_from=answer))
        await async_wait_for_state(hass, PAGE_STATE, "paging")
        await hass.async_add_executor_job(caller.bye)
        await async_wait_for_state(hass, PAGE_STATE, "idle")
    finally:
        caller.close()
