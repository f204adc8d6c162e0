"""Actions: play_alert, cancel_alert, page (outbound, TTS) and hangup, with their errors."""

import asyncio
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, selector
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.sip_endpoint.calls.sounds import audio_dir
from custom_components.sip_endpoint.const import (
    CONF_MEDIA_PLAYERS,
    DOMAIN,
    ExtensionRole,
)
from custom_components.sip_endpoint.engine import RequestFailedError
from tests.sipbed.audio import dominant_frequency, read_pcm, trim_silence, write_tone
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .devices import device_subentries, entry_device_id
from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import TTS_TONE_HZ, async_setup_players, async_setup_tone_tts
from .roles import RoleEntryFactory

SIREN = "siren.emergency_alert_2003_alert"
SERVICES_YAML = (
    Path(__file__).parents[2] / "custom_components/sip_endpoint/services.yaml"
)


def _device(hass: HomeAssistant, account_id: str) -> str:
    return entry_device_id(hass, account_id)


async def _call(
    hass: HomeAssistant, service: str, data: dict[str, Any], *, response: bool = False
) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=response
    )


async def _setup(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> MockConfigEntry:
    await async_setup_tone_tts(hass, tmp_path)
    players = await async_setup_players(hass, "Horn")
    return await create_entry(
        [
            (ExtensionRole.PAGE, "2001", {CONF_MEDIA_PLAYERS: list(players)}),
            (ExtensionRole.RING, "2002", {CONF_MEDIA_PLAYERS: list(players)}),
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {CONF_MEDIA_PLAYERS: list(players)},
            ),
        ]
    )


async def _expect_error(
    hass: HomeAssistant, service: str, data: dict[str, Any], key: str
) -> None:
    with pytest.raises(ServiceValidationError) as raised:
        await _call(hass, service, data)
    assert raised.value.translation_key == key
    assert raised.value.translation_domain == DOMAIN


async def test_action_errors(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> None:
    """Each action refuses what it cannot do, with a translated error."""
    entry = await _setup(hass, create_entry, tmp_path)
    page, alert = _device(hass, "subentry_2001"), _device(hass, "subentry_2003")
    server = _device(hass, entry.entry_id)

    await _expect_error(hass, "play_alert", {"device_id": "nope"}, "device_not_found")
    await _expect_error(hass, "cancel_alert", {"device_id": server}, "not_an_extension")
    await _expect_error(
        hass, "play_alert", {"device_id": page}, "not_an_alert_extension"
    )
    await _expect_error(hass, "play_alert", {"device_id": alert}, "no_alert_media")
    await _expect_error(
        hass, "page", {"device_id": page, "target": "9001"}, "no_page_media"
    )
    await _expect_error(hass, "hangup", {"device_id": page}, "no_active_call")
    with pytest.raises(vol.Invalid):
        await _call(
            hass,
            "play_alert",
            {"device_id": alert, "media": "http://x/a.mp3", "message": "both"},
        )
    with pytest.raises(vol.Invalid):
        await _call(hass, "play_alert", {"device_id": alert, "volume": 101})

    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await _expect_error(
        hass, "play_alert", {"device_id": alert, "message": "x"}, "entry_not_loaded"
    )


async def test_play_and_cancel_alert(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> None:
    """play_alert speaks a TTS message on the players; cancel_alert stops it."""
    await _setup(hass, create_entry, tmp_path)
    alert = _device(hass, "subentry_2003")
    player = hass.data["media_player"].get_entity("media_player.horn")

    await _call(
        hass,
        "play_alert",
        {"device_id": alert, "message": "Fire drill", "duration": 60, "volume": 90},
    )
    assert state_of(hass, SIREN).state == "on"
    assert state_of(hass, "sensor.emergency_alert_2003_call_state").state == "alerting"
    assert player.services() == ["volume_set", "play_media", "repeat_set"]
    assert player.calls[0].args == (0.9,)
    assert "/api/tts_proxy/" in player.played()[0]
    assert state_of(hass, SIREN).attributes["ends_at"] is not None

    await _call(hass, "cancel_alert", {"device_id": alert})
    assert state_of(hass, SIREN).state == "off"
    assert player.services()[-1] == "media_stop"
    # Resolving the TTS URL made Home Assistant generate the audio in a background
    # task; let it finish (on 2026.10 it can still be in an executor job at teardown).
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_outbound_page_with_a_tts_message(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """The page action dials, plays the spoken message (a 600 Hz tone here), hangs up, reports."""
    await _setup(hass, create_entry, tmp_path)
    phone = await async_registered_phone(hass, baresip_factory, kamailio, "9001")

    action = asyncio.ensure_future(
        _call(
            hass,
            "page",
            {
                "device_id": _device(hass, "subentry_2001"),
                "target": "9001",
                "message": "Closing in ten minutes",
            },
            response=True,
        )
    )
    await hass.async_add_executor_job(phone.wait_incoming)
    await hass.async_add_executor_job(phone.accept)
    result = await action
    await hass.async_add_executor_job(phone.wait_closed)

    assert result["answered"] is True
    assert result["cause"] == "local"
    assert result["duration"] > 1.0
    recording = phone.recording
    assert recording is not None
    samples, rate = await hass.async_add_executor_job(read_pcm, recording)
    heard = trim_silence(samples)
    assert len(heard) > rate  # most of the two seconds
    assert abs(dominant_frequency(heard, rate) - TTS_TONE_HZ) < 20


async def test_outbound_page_with_a_local_file(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """A file in an allowed folder is converted by ffmpeg and heard by the callee."""
    await _setup(hass, create_entry, tmp_path)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    media = await hass.async_add_executor_job(
        write_tone, tmp_path / "announce.wav", 700.0, 1.5, 44100
    )
    phone = await async_registered_phone(hass, baresip_factory, kamailio, "9001")
    page = _device(hass, "subentry_2001")

    action = asyncio.ensure_future(
        _call(
            hass,
            "page",
            {"device_id": page, "target": "9001", "media": str(media)},
            response=True,
        )
    )
    await hass.async_add_executor_job(phone.wait_incoming)
    await hass.async_add_executor_job(phone.accept)
    assert (await action)["answered"] is True
    await hass.async_add_executor_job(phone.wait_closed)
    assert phone.recording is not None
    samples, rate = await hass.async_add_executor_job(read_pcm, phone.recording)
    assert abs(dominant_frequency(trim_silence(samples), rate) - 700.0) < 20

    with pytest.raises(Exception, match="not in a folder"):
        await _call(
            hass,
            "page",
            {"device_id": page, "target": "9001", "media": "/etc/passwd"},
            response=True,
        )


async def test_unanswered_outbound_page(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """A page nobody answers within its timeout reports it."""
    await _setup(hass, create_entry, tmp_path)
    await async_registered_phone(hass, baresip_factory, kamailio, "9001")
    result = await _call(
        hass,
        "page",
        {
            "device_id": _device(hass, "subentry_2001"),
            "target": "9001",
            "message": "anyone?",
            "timeout": 2,
        },
        response=True,
    )
    assert result["answered"] is False


async def test_hangup_ends_a_ringing_call(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """The hangup action ends the extension's current call."""
    await _setup(hass, create_entry, tmp_path)
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")
    caller.dial("2002")
    await async_wait_for_state(hass, "sensor.ring_2002_call_state", "ringing")

    await _call(hass, "hangup", {"device_id": _device(hass, "subentry_2002")})
    reason = await hass.async_add_executor_job(caller.wait_closed)
    assert reason.startswith("603")
    await async_wait_for_state(hass, "sensor.ring_2002_call_state", "idle")


async def test_message_without_tts(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """A message needs a TTS engine."""
    players = await async_setup_players(hass, "Horn")
    await create_entry(
        [(ExtensionRole.EMERGENCY_ALERT, "2003", {CONF_MEDIA_PLAYERS: list(players)})]
    )
    with pytest.raises(HomeAssistantError) as raised:
        await _call(
            hass,
            "play_alert",
            {"device_id": _device(hass, "subentry_2003"), "message": "Fire"},
        )
    assert raised.value.translation_key == "tts_not_available"
    assert state_of(hass, SIREN).state == "off"


async def test_page_with_media_ffmpeg_cannot_read(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> None:
    """A file that is not audio fails the conversion, and nothing is left behind."""
    await _setup(hass, create_entry, tmp_path)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    not_audio = tmp_path / "notes.wav"
    await hass.async_add_executor_job(not_audio.write_text, "not a wave file")
    with pytest.raises(HomeAssistantError) as raised:
        await _call(
            hass,
            "page",
            {
                "device_id": _device(hass, "subentry_2001"),
                "target": "9001",
                "media": str(not_audio),
            },
            response=True,
        )
    assert raised.value.translation_key == "audio_conversion_failed"
    leftovers = await hass.async_add_executor_job(
        lambda: list(audio_dir(hass).glob("call-*.wav"))
    )
    assert leftovers == []


def _devices(hass: HomeAssistant, entry: MockConfigEntry) -> list[dr.DeviceEntry]:
    return dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)


def _offered(
    hass: HomeAssistant, entry: MockConfigEntry, config: dict[str, Any]
) -> set[str]:
    """Return the names of the entry's devices a device selector offers.

    The frontend's rule: a device matches a filter when every key of it matches.
    """
    filters: list[dict[str, str]] = config["device"]["filter"]
    offered: set[str] = set()
    for device in _devices(hass, entry):
        domains = {
            entry.domain
            for entry_id in device_subentries(device)
            if (entry := hass.config_entries.async_get_entry(entry_id)) is not None
        }
        for device_filter in filters:
            assert set(device_filter) == {"integration", "model_id"}
            if (
                device_filter["integration"] in domains
                and device.model_id == device_filter["model_id"]
            ):
                assert device.name is not None
                offered.add(device.name)
    return offered


async def test_device_pickers_select_by_integration_and_model_id(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> None:
    """The actions' device pickers filter on the role as model id, not on English text.

    The selectors are valid on this Home Assistant; the alert actions offer only the
    alert extension, page and hangup every extension, and none offers the server.
    """
    entry = await _setup(hass, create_entry, tmp_path)
    models = {device.name: device.model_id for device in _devices(hass, entry)}
    assert models == {
        "Test PBX": None,
        "Page 2001": "page",
        "Ring 2002": "ring",
        "Emergency alert 2003": "emergency_alert",
    }
    # Read directly: Home Assistant drops a services.yaml it finds invalid with only a
    # warning (and 2026's all-descriptions loader imports components this venv lacks).
    descriptions = await hass.async_add_executor_job(load_yaml_dict, str(SERVICES_YAML))
    offers = {}
    for service, description in descriptions.items():
        config = description["fields"]["device_id"]["selector"]
        selector.validate_selector(config)
        offers[service] = _offered(hass, entry, config)
    extensions = {"Page 2001", "Ring 2002", "Emergency alert 2003"}
    assert offers == {
        "play_alert": {"Emergency alert 2003"},
        "cancel_alert": {"Emergency alert 2003"},
        "page": extensions,
        "hangup": extensions,
    }


async def test_play_alert_with_media_that_cannot_be_found(
    hass: HomeAssistant, create_entry: RoleEntryFactory, tmp_path: Path
) -> None:
    """A media source id that resolves to nothing is a translated error; no alert."""
    await _setup(hass, create_entry, tmp_path)
    with pytest.raises(HomeAssistantError) as raised:
        await _call(
            hass,
            "play_alert",
            {
                "device_id": _device(hass, "subentry_2003"),
                "media": "media-source://media_source/nowhere/evacuate.mp3",
            },
        )
    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "media_not_found"
    assert str(raised.value).startswith("The media could not be found: ")
    assert state_of(hass, SIREN).state == "off"


async def test_hangup_the_engine_refuses(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An engine error while hanging up is the translated hangup_failed.

    The error is a fake: a real one needs the call to vanish between the check and
    the request.
    """
    entry = await _setup(hass, create_entry, tmp_path)
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9002")
    caller.dial("2002")
    await async_wait_for_state(hass, "sensor.ring_2002_call_state", "ringing")
    engine = entry.runtime_data.engine

    async def refuse(call_id: str) -> None:
        raise RequestFailedError("unknown_call", f"no call {call_id}")

    monkeypatch.setattr(engine, "hangup", refuse)
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, "hangup", {"device_id": _device(hass, "subentry_2002")})
    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "hangup_failed"
    assert raised.value.translation_placeholders == {"extension": "2002"}
    assert str(raised.value) == "The call of extension 2002 could not be hung up"
    monkeypatch.undo()
    caller.hangup()
    await async_wait_for_state(hass, "sensor.ring_2002_call_state", "idle")
