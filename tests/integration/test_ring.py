"""Ring extensions: the ringtone plays on the media players while a call rings."""

import io
import math
import wave

from homeassistant.components.media_player.const import RepeatMode
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.sip_endpoint.const import (
    CONF_MEDIA_PLAYERS,
    CONF_RINGTONE,
    ExtensionRole,
)
from tests.sipbed.audio import dominant_frequency, rms
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio
from tests.worker.rawcall import RawCaller

from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory, until

RING_STATE = "sensor.ring_2002_call_state"
RING_HZ = (440.0, 480.0)  # calls/sounds.py: the North American ring, 2 s on, 4 s off
RING_ON, RING_OFF = 2.0, 4.0


def _assert_ring_cadence(data: bytes) -> None:
    """Check a ringtone WAV: 440 + 480 Hz for 2 s, silence for 4 s, ringing again."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getsampwidth(), wav.getnchannels()) == (2, 1)
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = [
        int.from_bytes(frames[i : i + 2], "little", signed=True)
        for i in range(0, len(frames), 2)
    ]
    cycle = int(rate * (RING_ON + RING_OFF))
    assert len(samples) >= 2 * cycle
    margin = rate // 10
    for start in (0, cycle):
        ring = samples[start + margin : start + int(rate * RING_ON) - margin]
        pause = samples[start + int(rate * RING_ON) + margin : start + cycle - margin]
        assert rms(ring) > 0.1
        assert rms(pause) < 0.001
        peak = dominant_frequency(ring, rate)
        assert min(abs(peak - hz) for hz in RING_HZ) < 10, peak
        # Both tones sound: notch out the loudest, the other remains.
        other = RING_HZ[1] if abs(peak - RING_HZ[0]) < 10 else RING_HZ[0]
        assert _tone_level(ring, rate, other) > 0.5 * _tone_level(ring, rate, peak)


def _tone_level(samples: list[int], rate: int, frequency: float) -> float:
    """Return the amplitude of one frequency in the samples (a single DFT bin)."""
    step = 2 * math.pi * frequency / rate
    real = sum(value * math.cos(step * index) for index, value in enumerate(samples))
    imag = sum(value * math.sin(step * index) for index, value in enumerate(samples))
    return math.hypot(real, imag) / len(samples)


async def test_ringtone_plays_until_the_caller_cancels(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The bundled ringtone loops on the players while ringing, and stops on CANCEL."""
    players = await async_setup_players(hass, "Bell 1", "Bell 2")
    await create_entry(
        [(ExtensionRole.RING, "2002", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")

    caller.dial("2002")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, RING_STATE, "ringing")
    await until(
        lambda: all("repeat_set" in p.services() for p in players.values()),
        "the ringtone",
    )
    for player in players.values():
        assert player.services() == ["play_media", "repeat_set"]
        assert player.calls[1].args == (RepeatMode.ONE,)
    url = URL(next(iter(players.values())).played()[0])
    client = await hass_client_no_auth()
    response = await client.get(url.path_qs)
    assert response.status == 200
    ringtone = await response.read()
    assert ringtone[:4] == b"RIFF"
    _assert_ring_cadence(ringtone)

    caller.hangup()
    await async_wait_for_state(hass, RING_STATE, "idle")
    await until(
        lambda: all(p.services()[-1] == "media_stop" for p in players.values()),
        "the ringtone to stop",
    )
    assert state_of(hass, "event.ring_2002_call").attributes["event_type"] == "missed"


async def test_configured_ringtone(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """A configured ringtone URL is played as it is."""
    players = await async_setup_players(hass, "Bell")
    ringtone = "http://media.example/ring.mp3"
    await create_entry(
        [
            (
                ExtensionRole.RING,
                "2002",
                {CONF_MEDIA_PLAYERS: list(players), CONF_RINGTONE: ringtone},
            )
        ]
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")
    caller.dial("2002")
    player = next(iter(players.values()))
    await until(lambda: bool(player.played()), "the ringtone")
    assert player.played() == [ringtone]
    caller.hangup()
    await until(lambda: player.services()[-1] == "media_stop", "the ringtone to stop")


async def test_ringtone_stops_when_answered_elsewhere(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """A CANCEL with Reason cause=200 (answered elsewhere) stops the ringtone."""
    players = await async_setup_players(hass, "Bell")
    entry = await create_entry(
        [(ExtensionRole.RING, "2002", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    (worker,) = entry.runtime_data.engine.workers()
    assert worker.sip_port is not None
    player = next(iter(players.values()))
    caller = RawCaller("2002", worker.sip_port)
    try:
        caller.invite()
        await until(lambda: bool(player.played()), "the ringtone")
        caller.cancel('SIP;cause=200;text="Call completed elsewhere"')
        await until(lambda: player.services()[-1] == "media_stop", "the stop")
        final = await hass.async_add_executor_job(caller.wait_response, "INVITE")
        assert final.code == 487
        await hass.async_add_executor_job(lambda: caller.ack(to_tag_from=final))
    finally:
        caller.close()
    await async_wait_for_state(hass, RING_STATE, "idle")
    call = state_of(hass, "event.ring_2002_call")
    assert call.attributes["event_type"] == "missed"
    assert call.attributes["cause"] == "answered_elsewhere"
