"""Device triggers fire automations; bus events get logbook entries."""

from collections.abc import Callable
from typing import Any

from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.components.siren.const import DOMAIN as SIREN_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    CONF_PASSWORD,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
)
from homeassistant.core import Event, HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    async_get_device_automations,
    async_mock_service,
)

from custom_components.sip_endpoint import logbook
from custom_components.sip_endpoint.const import (
    CONF_MEDIA_PLAYERS,
    DOMAIN,
    EVENT_ALERT,
    EVENT_CALL,
    EVENT_REGISTRATION,
    ExtensionRole,
)
from custom_components.sip_endpoint.device_trigger import TRIGGERS
from tests.sipbed.baresip import BaresipFactory
from tests.sipbed.kamailio import Kamailio

from .devices import entry_device_id
from .helpers import async_registered_phone, async_wait_for_state
from .media_fakes import async_setup_players
from .roles import RoleEntryFactory, until

AUTOMATION_DOMAIN = "automation"


def _device(hass: HomeAssistant, account_id: str) -> str:
    return entry_device_id(hass, account_id)


async def _automations(
    hass: HomeAssistant, triggers: list[tuple[str, str]]
) -> list[ServiceCall]:
    """One automation per (device, trigger type); each calls test.fired."""
    calls: list[ServiceCall] = async_mock_service(hass, "test", "fired")
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        {
            AUTOMATION_DOMAIN: [
                {
                    "triggers": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": device_id,
                        "type": trigger_type,
                    },
                    "actions": {
                        "action": "test.fired",
                        "data": {"type": trigger_type},
                    },
                }
                for device_id, trigger_type in triggers
            ]
        },
    )
    await hass.async_block_till_done()
    return calls


async def test_each_trigger_fires_an_automation(
    hass: HomeAssistant,
    create_entry: RoleEntryFactory,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """Incoming, answered, DTMF, ended, missed, alert and registration triggers fire."""
    players = await async_setup_players(hass, "Horn")
    entry = await create_entry(
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
    page, ring = _device(hass, "subentry_2001"), _device(hass, "subentry_2002")
    alert = _device(hass, "subentry_2003")
    calls = await _automations(
        hass,
        [
            (page, "incoming_call"),
            (page, "answered"),
            (page, "dtmf"),
            (page, "ended"),
            (ring, "missed"),
            (alert, "alert_started"),
            (alert, "alert_stopped"),
            (ring, "registration_failed"),
        ],
    )

    def fired() -> list[str]:
        return [call.data["type"] for call in calls]

    caller = await async_registered_phone(hass, baresip_factory, kamailio, "9001")
    caller.dial("2001")
    await hass.async_add_executor_job(caller.wait_established)
    await hass.async_add_executor_job(caller.send_dtmf, "5")
    await until(lambda: "dtmf" in fired(), "the dtmf trigger")
    caller.hangup()
    await until(lambda: "ended" in fired(), "the ended trigger")
    assert fired() == ["incoming_call", "answered", "dtmf", "ended"]

    caller.dial("2002")
    await hass.async_add_executor_job(caller.wait_ringing)
    caller.hangup()
    await until(lambda: "missed" in fired(), "the missed trigger")

    siren = "siren.emergency_alert_2003_alert"
    for service in (SERVICE_TURN_ON, SERVICE_TURN_OFF):
        await hass.services.async_call(
            SIREN_DOMAIN, service, {ATTR_ENTITY_ID: siren}, blocking=True
        )
    await hass.async_block_till_done()
    assert fired()[-2:] == ["alert_started", "alert_stopped"]

    subentry = entry.subentries["subentry_2002"]
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, CONF_PASSWORD: "wrong"}
    )
    await async_wait_for_state(
        hass, "sensor.ring_2002_registration", "rejected_by_server"
    )
    await until(lambda: "registration_failed" in fired(), "the failure trigger")
    assert sorted(fired()) == sorted(
        [
            "incoming_call",
            "answered",
            "dtmf",
            "ended",
            "missed",
            "alert_started",
            "alert_stopped",
            "registration_failed",
        ]
    )


async def test_triggers_listed_per_role(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """Alert extensions list every trigger; others all but the alert ones."""
    entry = await create_entry(
        [(ExtensionRole.PAGE, "2001", {}), (ExtensionRole.EMERGENCY_ALERT, "2003", {})]
    )

    async def types(device_id: str) -> set[str]:
        triggers = await async_get_device_automations(
            hass, DeviceAutomationType.TRIGGER, device_id
        )
        return {trigger["type"] for trigger in triggers if trigger["domain"] == DOMAIN}

    assert await types(_device(hass, "subentry_2003")) == set(TRIGGERS)
    assert await types(_device(hass, "subentry_2001")) == set(TRIGGERS) - {
        "alert_started",
        "alert_stopped",
    }
    assert await types(_device(hass, entry.entry_id)) == set()


def test_logbook_describes_the_events(hass: HomeAssistant) -> None:
    """Every bus event gets a readable logbook line."""
    described: dict[str, Callable[[Event], dict[str, str]]] = {}

    def describe_event(
        domain: str, event_type: str, describe: Callable[[Event], dict[str, str]]
    ) -> None:
        assert domain == DOMAIN
        described[event_type] = describe

    logbook.async_describe_events(hass, describe_event)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            EVENT_CALL,
            {"type": "incoming", "caller": "sip:9001@pbx"},
            "from sip:9001@pbx",
        ),
        (EVENT_CALL, {"type": "dtmf", "digit": "5"}, "DTMF digit 5"),
        (
            EVENT_CALL,
            {"type": "missed", "cause": "cancel"},
            "missed a call: the caller hung up before it was answered",
        ),
        (EVENT_ALERT, {"type": "started", "source": "action"}, "started"),
        (EVENT_ALERT, {"type": "stopped", "reason": "expired"}, "duration ran out"),
        (
            EVENT_REGISTRATION,
            {"type": "failed", "status": "not_found"},
            "the server does not know it",
        ),
    ]
    for event_type, data, expected in cases:
        line = described[event_type](
            Event(event_type, {"extension": "2001", "device_id": "x", **data})
        )
        assert line["name"] == "Extension 2001"
        assert expected in line["message"]
