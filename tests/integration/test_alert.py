"""Emergency alerts: started by a call, stopped by call-to-cancel, a timer or the siren."""

from datetime import timedelta
from typing import Any

from homeassistant.components.siren.const import DOMAIN as SIREN_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    mock_restore_cache,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint.const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_DURATION,
    CONF_ALERT_MEDIA,
    CONF_ANSWER_INBOUND_CALL,
    CONF_CANCELS,
    CONF_MEDIA_PLAYERS,
    EVENT_ALERT,
    ExtensionRole,
)
from tests.sipbed.audio import dominant_frequency, read_pcm, trim_silence
from tests.sipbed.baresip import Baresip, BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import RecordingMediaPlayer, async_setup_players
from .roles import RoleEntryFactory, until

SIREN = "siren.emergency_alert_2003_alert"
ALERT_STATE = "sensor.emergency_alert_2003_call_state"
ALERT_MEDIA = "http://media.example/evacuate.mp3"


def _alert_events(hass: HomeAssistant) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    @callback
    def fired(event: Event) -> None:
        events.append(dict(event.data))

    hass.bus.async_listen(EVENT_ALERT, fired)
    return events


async def _caller(
    hass: HomeAssistant, baresip_factory: BaresipFactory, kamailio: Kamailio
) -> Baresip:
    return await async_registered_phone(hass, baresip_factory, kamailio, "9003")


async def _setup(
    hass: HomeAssistant, create_entry: RoleEntryFactory, **alert_options: Any
) -> RecordingMediaPlayer:
    players = await async_setup_players(hass, "Horn")
    await create_entry(
        [
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {
                    CONF_MEDIA_PLAYERS: list(players),
                    CONF_ALERT_MEDIA: ALERT_MEDIA,
                    **alert_options,
                },
            ),
            (
                ExtensionRole.CALL_TO_CANCEL,
                "2004",
                {CONF_CANCELS: ["subentry_2003"]},
            ),
        ]
    )
    return next(iter(players.values()))


async def test_call_starts_and_call_to_cancel_stops_the_alert(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """The INVITE starts the alert (ringing only); dialing call-to-cancel stops it."""
    player = await _setup(hass, create_entry)
    events = _alert_events(hass)
    caller = await _caller(hass, baresip_factory, kamailio)
    assert state_of(hass, SIREN).state == "off"

    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, SIREN, "on")
    assert state_of(hass, ALERT_STATE).state == "alerting"
    assert player.played() == [ALERT_MEDIA]
    assert player.services() == ["play_media", "repeat_set"]
    assert state_of(hass, SIREN).attributes["ends_at"] is None  # until cancelled

    caller.hangup()  # the alert goes on after the call
    await async_wait_for_state(
        hass,
        "event.emergency_alert_2003_call",
        lambda s: s.attributes.get("event_type") == "missed",
    )
    assert state_of(hass, SIREN).state == "on"
    assert state_of(hass, ALERT_STATE).state == "alerting"

    caller.dial("2004")
    await hass.async_add_executor_job(caller.wait_established)
    await async_wait_for_state(hass, SIREN, "off")
    assert player.services()[-1] == "media_stop"
    assert state_of(hass, ALERT_STATE).state == "idle"
    await hass.async_add_executor_job(caller.wait_closed)  # confirmed, then hung up

    assert [event["type"] for event in events] == ["started", "stopped"]
    assert "9003" in events[0]["source"]
    assert events[1]["reason"] == "cancelled"
    assert events[0]["extension"] == "2003"
    assert events[0]["device_id"]


async def test_alert_duration_expires(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """An alert with a duration stops by itself."""
    player = await _setup(hass, create_entry, **{CONF_ALERT_DURATION: 90})
    caller = await _caller(hass, baresip_factory, kamailio)
    caller.dial("2003")
    await async_wait_for_state(hass, SIREN, "on")
    assert state_of(hass, SIREN).attributes["ends_at"] is not None

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=91))
    await async_wait_for_state(hass, SIREN, "off")
    assert player.services()[-1] == "media_stop"
    caller.hangup()


async def test_access_code_entered_by_dtmf_starts_the_alert(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Answered alert calls start the alert only after the right access code."""
    player = await _setup(
        hass,
        create_entry,
        **{CONF_ANSWER_INBOUND_CALL: True, CONF_ACCESS_CODE: "1234"},
    )
    caller = await _caller(hass, baresip_factory, kamailio)
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_established)
    await async_wait_for_state(hass, ALERT_STATE, "in_call")

    await hass.async_add_executor_job(caller.send_dtmf, "99")
    await until(
        lambda: (
            state_of(hass, "event.emergency_alert_2003_call").attributes.get("digit")
            == "9"
        ),
        "the wrong digits",
    )
    assert state_of(hass, SIREN).state == "off"
    assert player.calls == []

    await hass.async_add_executor_job(caller.send_dtmf, "1234")
    await async_wait_for_state(hass, SIREN, "on")
    assert player.played() == [ALERT_MEDIA]
    await hass.async_add_executor_job(caller.wait_closed)  # we hang up
    assert state_of(hass, ALERT_STATE).state == "alerting"


async def test_siren_turns_the_alert_on_and_off(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """turn_on with duration and volume, turn_off."""
    player = await _setup(hass, create_entry)
    await hass.services.async_call(
        SIREN_DOMAIN,
        SERVICE_TURN_ON,
        {ATTR_ENTITY_ID: SIREN, "duration": 30, "volume_level": 0.8},
        blocking=True,
    )
    assert state_of(hass, SIREN).state == "on"
    assert player.services() == ["volume_set", "play_media", "repeat_set"]
    assert player.calls[0].args == (0.8,)
    assert state_of(hass, SIREN).attributes["ends_at"] is not None

    await hass.services.async_call(
        SIREN_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: SIREN}, blocking=True
    )
    assert state_of(hass, SIREN).state == "off"
    assert player.services()[-1] == "media_stop"


async def test_alert_running_before_a_restart_is_cleared(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """After a restart the alert is not resumed: the siren is off, players stopped."""
    mock_restore_cache(
        hass, [State(SIREN, "on", {"media_players": ["media_player.horn"]})]
    )
    player = await _setup(hass, create_entry)
    await until(lambda: player.services() == ["media_stop"], "the players to stop")
    assert state_of(hass, SIREN).state == "off"
    assert state_of(hass, ALERT_STATE).state == "idle"


async def test_caller_hanging_up_before_the_code_starts_nothing(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Without the whole access code no alert starts."""
    player = await _setup(
        hass,
        create_entry,
        **{CONF_ANSWER_INBOUND_CALL: True, CONF_ACCESS_CODE: "1234"},
    )
    caller = await _caller(hass, baresip_factory, kamailio)
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_established)
    await hass.async_add_executor_job(caller.send_dtmf, "12")
    await until(
        lambda: (
            state_of(hass, "event.emergency_alert_2003_call").attributes.get("digit")
            == "2"
        ),
        "the digits",
    )
    caller.hangup()
    await async_wait_for_state(hass, ALERT_STATE, "idle")
    assert state_of(hass, SIREN).state == "off"
    assert player.calls == []


async def test_answered_alert_without_code(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Answer inbound call without a code: confirm, alert, hang up."""
    player = await _setup(hass, create_entry, **{CONF_ANSWER_INBOUND_CALL: True})
    caller = await _caller(hass, baresip_factory, kamailio)
    caller.dial("2003")
    await hass.async_add_executor_job(caller.wait_established)
    await async_wait_for_state(hass, SIREN, "on")
    await hass.async_add_executor_job(caller.wait_closed)
    assert player.played() == [ALERT_MEDIA]
    recording = caller.recording
    assert recording is not None  # the caller heard the confirmation beeps
    samples, rate = await hass.async_add_executor_job(read_pcm, recording)
    beeps = trim_silence(samples)
    assert beeps
    assert abs(dominant_frequency(beeps[: rate // 10], rate) - 1000) < 30


async def test_siren_snapshot(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The siren entity and its state."""
    await _setup(hass, create_entry)
    entity = entity_registry.async_get(SIREN)
    assert entity is not None
    assert entity == snapshot(name="entity")
    assert state_of(hass, SIREN) == snapshot(name="state")


async def test_removing_the_extension_stops_its_alert(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """An alert extension removed while alerting stops its players."""
    player = await _setup(hass, create_entry)
    await hass.services.async_call(
        SIREN_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: SIREN}, blocking=True
    )
    entry = hass.config_entries.async_entries("sip_endpoint")[0]
    assert hass.config_entries.async_remove_subentry(entry, "subentry_2003")
    await until(lambda: player.services()[-1] == "media_stop", "the players to stop")
    await hass.async_block_till_done()
    assert hass.states.get(SIREN) is None
    assert "subentry_2003" not in entry.runtime_data.router.alerts


async def test_unloading_stops_a_running_alert(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """Unloading the entry stops the alert on the players."""
    player = await _setup(hass, create_entry)
    events = _alert_events(hass)
    await hass.services.async_call(
        SIREN_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: SIREN}, blocking=True
    )
    entry = hass.config_entries.async_entries("sip_endpoint")[0]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert player.services()[-1] == "media_stop"
    assert [event["type"] for event in events] == ["started", "stopped"]
    assert events[1]["reason"] == "unloaded"
