"""An emergency alert sounds even when its own media cannot be had.

Alert media stored before the flows checked it, or a media source or TTS engine
removed later, must not silence an alert: the players get the built-in alert sound,
one warning names the extension and the media, and a repair issue stays until the
media resolves again. Media an action asks for must still resolve (the action fails).
"""

import asyncio
import io
import logging
import wave

from homeassistant.components.media_source import (
    MediaSource,
    MediaSourceItem,
    PlayMedia,
)
from homeassistant.components.siren.const import DOMAIN as SIREN_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_integration,
    mock_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.sip_endpoint.calls import players as players_module
from custom_components.sip_endpoint.calls.audio_views import file_path
from custom_components.sip_endpoint.calls.players import media_label, redact_media
from custom_components.sip_endpoint.calls.sounds import Sound
from custom_components.sip_endpoint.const import (
    CONF_ALERT_MEDIA,
    CONF_ALERT_TTS_MESSAGE,
    CONF_MEDIA_PLAYERS,
    DOMAIN,
    ExtensionRole,
)
from tests.sipbed.audio import dominant_frequency, rms
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .devices import entry_device
from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import RecordingMediaPlayer, async_setup_players, async_setup_tone_tts
from .roles import RoleEntryFactory, until

SIREN = "siren.emergency_alert_2003_alert"
ISSUE = "alert_media_unavailable_subentry_2003"
# A media source that does not exist; the query stands for a secret a URL may carry.
MISSING_MEDIA = "media-source://nope/alarm.mp3?token=s3cret-token"
MISSING_LABEL = "media-source://nope/alarm.mp3"
FIXED_MEDIA = "http://media.example/evacuate.mp3"
MESSAGE = "Please leave the building"
WARBLE_FIRST_HZ = 800.0  # calls/sounds.py: Sound.ALERT starts with 0.5 s of 800 Hz


async def _alert_entry(
    hass: HomeAssistant, create_entry: RoleEntryFactory, **options: object
) -> tuple[MockConfigEntry, RecordingMediaPlayer]:
    players = await async_setup_players(hass, "Horn")
    entry = await create_entry(
        [
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {CONF_MEDIA_PLAYERS: list(players), **options},
            )
        ]
    )
    return entry, next(iter(players.values()))


async def _set_options(
    hass: HomeAssistant, entry: MockConfigEntry, **options: object
) -> None:
    """Change extension 2003's role options, as its options flow would."""
    subentry = entry.subentries["subentry_2003"]
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, **options}
    )
    await hass.async_block_till_done()


async def _siren(hass: HomeAssistant, service: str) -> None:
    await hass.services.async_call(
        SIREN_DOMAIN, service, {ATTR_ENTITY_ID: SIREN}, blocking=True
    )


def _our_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.sip_endpoint")
        and record.levelno >= logging.WARNING
    ]


def _issue(hass: HomeAssistant) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, ISSUE)


def _assert_builtin_alert(url: str) -> None:
    assert URL(url).path == file_path(f"{Sound.ALERT.value}.wav")


async def test_call_alerts_with_the_builtin_sound_while_its_media_is_missing(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call to an alert whose media source is gone: warble, warning, issue; fixed."""
    entry, player = await _alert_entry(
        hass, create_entry, **{CONF_ALERT_MEDIA: MISSING_MEDIA}
    )
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9003")
    caplog.clear()

    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, SIREN, "on")
    await until(lambda: bool(player.played()), "play_media")
    (url,) = player.played()
    _assert_builtin_alert(url)
    assert player.services() == ["play_media", "repeat_set"]
    # What the player fetches is the warble itself.
    client = await hass_client_no_auth()
    response = await client.get(URL(url).path_qs)
    assert response.status == 200
    with wave.open(io.BytesIO(await response.read()), "rb") as wav:
        rate = wav.getframerate()
        frames = wav.readframes(rate // 2)
    samples = [
        int.from_bytes(frames[i : i + 2], "little", signed=True)
        for i in range(0, len(frames), 2)
    ]
    steady = samples[rate // 10 : rate * 4 // 10]
    assert rms(steady) > 0.1
    assert abs(dominant_frequency(steady, rate) - WARBLE_FIRST_HZ) < 15

    (warning,) = _our_warnings(caplog)
    assert "2003" in warning
    assert MISSING_LABEL in warning
    assert "s3cret" not in caplog.text
    issue = _issue(hass)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "alert_media_unavailable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["extension"] == "2003"
    assert issue.translation_placeholders["media"] == MISSING_LABEL
    assert "s3cret" not in str(issue.translation_placeholders)

    caller.hangup()
    await hass.async_add_executor_job(caller.wait_closed)
    await _siren(hass, SERVICE_TURN_OFF)
    assert state_of(hass, SIREN).state == "off"

    # The user picks media that exists: the next alert plays it, the issue goes.
    await _set_options(hass, entry, **{CONF_ALERT_MEDIA: FIXED_MEDIA})
    assert _issue(hass) is not None  # until an alert plays the media
    caplog.clear()
    caller.dial("2003")
    await async_wait_for_state(hass, SIREN, "on")
    await until(lambda: len(player.played()) == 2, "the second play_media")
    assert player.played()[-1] == FIXED_MEDIA
    assert _issue(hass) is None
    assert _our_warnings(caplog) == []
    caller.hangup()
    await hass.async_add_executor_job(caller.wait_closed)
    await _siren(hass, SERVICE_TURN_OFF)


async def test_siren_alerts_with_the_builtin_sound_while_tts_is_unavailable(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    tmp_path: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The siren's turn_on with a TTS message but no TTS engine: warble and issue."""
    assert "tts" not in hass.config.components
    _entry, player = await _alert_entry(
        hass, create_entry, **{CONF_ALERT_TTS_MESSAGE: MESSAGE}
    )
    caplog.clear()
    await _siren(hass, SERVICE_TURN_ON)
    assert state_of(hass, SIREN).state == "on"
    (url,) = player.played()
    _assert_builtin_alert(url)
    (warning,) = _our_warnings(caplog)
    assert "2003" in warning
    assert MESSAGE in warning
    issue = _issue(hass)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["media"] == f'TTS "{MESSAGE}"'
    await _siren(hass, SERVICE_TURN_OFF)

    # A TTS engine comes (back): the message is spoken and the issue goes.
    await async_setup_tone_tts(hass, tmp_path)
    await _siren(hass, SERVICE_TURN_ON)
    assert URL(player.played()[-1]).path.startswith("/api/tts_proxy/")
    assert _issue(hass) is None
    await _siren(hass, SERVICE_TURN_OFF)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_issue_goes_when_the_media_is_cleared_or_the_extension_removed(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No configured media is nothing broken; a removed extension has no issue."""
    entry, player = await _alert_entry(
        hass, create_entry, **{CONF_ALERT_MEDIA: MISSING_MEDIA}
    )
    await _siren(hass, SERVICE_TURN_ON)
    _assert_builtin_alert(player.played()[-1])
    assert _issue(hass) is not None
    await _siren(hass, SERVICE_TURN_OFF)

    await _set_options(hass, entry, **{CONF_ALERT_MEDIA: ""})
    await _siren(hass, SERVICE_TURN_ON)
    _assert_builtin_alert(player.played()[-1])
    assert _issue(hass) is None
    await _siren(hass, SERVICE_TURN_OFF)

    await _set_options(hass, entry, **{CONF_ALERT_MEDIA: MISSING_MEDIA})
    await _siren(hass, SERVICE_TURN_ON)
    assert _issue(hass) is not None
    caplog.clear()
    assert hass.config_entries.async_remove_subentry(entry, "subentry_2003")
    await hass.async_block_till_done()
    assert _issue(hass) is None
    # Removed while alerting: the alert stops without errors.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


class _HangingSource(MediaSource):
    """A media source that never answers (a cloud that does not reply)."""

    name = "Hanging"

    def __init__(self) -> None:
        """Register as domain `hanging`."""
        super().__init__("hanging")

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """Wait forever."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _setup_hanging_source(hass: HomeAssistant) -> None:
    source = _HangingSource()

    async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
        return source

    platform = MockPlatform()
    platform.async_get_media_source = async_get_media_source
    mock_integration(hass, MockModule("hanging"))
    mock_platform(hass, "hanging.media_source", platform)
    assert await async_setup_component(hass, "hanging", {})
    await hass.async_block_till_done()


async def test_media_that_does_not_answer_gives_way_to_the_builtin_alert(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A media source that never answers: after the timeout the built-in alert plays."""
    monkeypatch.setattr(players_module, "MEDIA_RESOLVE_TIMEOUT", 0.2)
    _entry, player = await _alert_entry(
        hass, create_entry, **{CONF_ALERT_MEDIA: "media-source://hanging/alarm.mp3"}
    )
    await _setup_hanging_source(hass)
    await _siren(hass, SERVICE_TURN_ON)
    assert state_of(hass, SIREN).state == "on"
    (url,) = player.played()
    _assert_builtin_alert(url)
    issue = _issue(hass)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["error"] == "no answer within 0.2 s"
    await _siren(hass, SERVICE_TURN_OFF)


async def test_play_alert_with_missing_media_still_fails(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """Media the action asks for is the user's request: not found fails the action."""
    _entry, player = await _alert_entry(hass, create_entry)
    device = entry_device(hass, "subentry_2003")
    assert device is not None
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "play_alert",
            {"device_id": device.id, "media": MISSING_MEDIA},
            blocking=True,
        )
    assert caught.value.translation_key == "media_not_found"
    assert state_of(hass, SIREN).state == "off"
    assert player.calls == []
    assert _issue(hass) is None


@pytest.mark.parametrize(
    ("media", "label"),
    [
        ("media-source://nope/alarm.mp3", "media-source://nope/alarm.mp3"),
        (
            "http://user:pa55word@media.example/a.mp3?authSig=xyz#t",
            "http://media.example/a.mp3",
        ),
        ("/local/alarm.mp3?authSig=xyz", "/local/alarm.mp3"),
    ],
)
def test_media_label_drops_credentials_and_queries(media: str, label: str) -> None:
    """Warnings and issues name the media without user, password or query."""
    assert media_label(media) == label


def test_errors_are_redacted_too() -> None:
    """An error that quotes the media (Home Assistant 2026 does) loses its query."""
    text = "Unknown media source media-source://nope/a.mp3?token=s3cret: nope"
    assert redact_media(text) == "Unknown media source media-source://nope/a.mp3: nope"
