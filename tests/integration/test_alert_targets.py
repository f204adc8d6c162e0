"""Call-to-cancel targets: the alerts it names, or every alert by default."""

from typing import Any

from homeassistant.core import Event, HomeAssistant, callback

from custom_components.sip_endpoint.const import (
    CONF_ALERT_MEDIA,
    CONF_CANCELS,
    CONF_MEDIA_PLAYERS,
    EVENT_ALERT,
    ExtensionRole,
)
from tests.sipbed.baresip import Baresip, BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .helpers import async_registered_phone, async_wait_for_state, state_of
from .media_fakes import RecordingMediaPlayer, async_setup_players
from .roles import RoleEntryFactory

MEDIA = {
    "2003": "http://media.example/fire.mp3",
    "2005": "http://media.example/flood.mp3",
}


def _siren(extension: str) -> str:
    return f"siren.emergency_alert_{extension}_alert"


def _alert_events(hass: HomeAssistant) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    @callback
    def fired(event: Event) -> None:
        events.append(dict(event.data))

    hass.bus.async_listen(EVENT_ALERT, fired)
    return events


async def _start_alert(hass: HomeAssistant, caller: Baresip, extension: str) -> None:
    """Call an alert extension: its alert starts on the INVITE; hang up after."""
    caller.dial(extension)
    await hass.async_add_executor_job(caller.wait_ringing)
    await async_wait_for_state(hass, _siren(extension), "on")
    caller.hangup()
    await hass.async_add_executor_job(caller.wait_closed)


async def _cancel(hass: HomeAssistant, caller: Baresip, extension: str) -> None:
    """Call a call-to-cancel extension until it has confirmed and hung up."""
    caller.dial(extension)
    await hass.async_add_executor_job(caller.wait_established)
    await hass.async_add_executor_job(caller.wait_closed)


async def test_call_to_cancel_stops_its_alerts_and_the_default_stops_all(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """2004 cancels only 2003 (2005 plays on); 2006, with no list, cancels every alert."""
    players = await async_setup_players(hass, "Horn A", "Horn B")
    horn_a, horn_b = players
    await create_entry(
        [
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2003",
                {CONF_MEDIA_PLAYERS: [horn_a], CONF_ALERT_MEDIA: MEDIA["2003"]},
            ),
            (
                ExtensionRole.EMERGENCY_ALERT,
                "2005",
                {CONF_MEDIA_PLAYERS: [horn_b], CONF_ALERT_MEDIA: MEDIA["2005"]},
            ),
            (ExtensionRole.CALL_TO_CANCEL, "2004", {CONF_CANCELS: ["subentry_2003"]}),
            (ExtensionRole.CALL_TO_CANCEL, "2006", {}),  # the default: all alerts
        ]
    )
    player: dict[str, RecordingMediaPlayer] = {
        "2003": players[horn_a],
        "2005": players[horn_b],
    }
    events = _alert_events(hass)
    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9003")

    await _start_alert(hass, caller, "2003")
    await _start_alert(hass, caller, "2005")
    for extension, media in MEDIA.items():
        assert player[extension].played() == [media]

    await _cancel(hass, caller, "2004")
    await async_wait_for_state(hass, _siren("2003"), "off")
    assert player["2003"].services()[-1] == "media_stop"
    # The other alert plays on: its siren is on, its player was never stopped.
    assert state_of(hass, _siren("2005")).state == "on"
    assert "media_stop" not in player["2005"].services()
    assert state_of(hass, "sensor.emergency_alert_2005_call_state").state == (
        "alerting"
    )

    await _cancel(hass, caller, "2006")
    await async_wait_for_state(hass, _siren("2005"), "off")
    assert player["2005"].services()[-1] == "media_stop"
    assert player["2003"].services().count("media_stop") == 1  # not stopped twice

    assert [(e["type"], e["extension"]) for e in events] == [
        ("started", "2003"),
        ("started", "2005"),
        ("stopped", "2003"),
        ("stopped", "2005"),
    ]
    assert [e["reason"] for e in events if e["type"] == "stopped"] == [
        "cancelled",
        "cancelled",
    ]
