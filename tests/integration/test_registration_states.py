"""Entity states for each registration outcome, produced by real Kamailio answers."""

from collections.abc import Callable
from datetime import timedelta
import logging

from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.sip_endpoint.const import (
    CONF_KEEPALIVE,
    CONF_KEEPALIVE_INTERVAL,
    DOMAIN,
    ExtensionRole,
)
from custom_components.sip_endpoint.repairs import server_unreachable_issue_id
from tests.sipbed.kamailio import (
    Kamailio,
    KamailioFactory,
    UnknownUserPolicy,
    WrongPasswordPolicy,
)

from .helpers import async_wait_for_state, state_of

REGISTRATION = "sensor.page_2001_registration"
LAST_FAILURE = "sensor.page_2001_last_failure"
REGISTERED = "binary_sensor.page_2001_registered"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _rejected_issue_ids(hass: HomeAssistant) -> list[str]:
    return [
        issue_id
        for (domain, issue_id) in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith("rejected_credentials")
    ]


@pytest.mark.parametrize(
    ("wrong_password", "code"), [("rechallenge", 401), ("forbidden", 403)]
)
async def test_wrong_password(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    wrong_password: WrongPasswordPolicy,
    code: int,
) -> None:
    """A rejected password shows rejected_by_server, its code, and a repair issue."""
    kamailio = kamailio_factory(wrong_password=wrong_password)
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "wrong"),
            (ExtensionRole.RING, "2002", "pw-2002"),
        ],
    )
    await _setup(hass, entry)

    state = await async_wait_for_state(hass, REGISTRATION, "rejected_by_server")
    assert state.attributes["sip_code"] == code
    failure = state_of(hass, LAST_FAILURE)
    assert failure.state == "rejected_by_server"
    assert failure.attributes["sip_code"] == code
    assert state_of(hass, REGISTERED).state == "off"
    assert len(_rejected_issue_ids(hass)) == 1
    # The other extension keeps working.
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")

    # New credentials register again; the last failure stays for the record.
    subentry = next(
        sub for sub in entry.subentries.values() if sub.data["extension"] == "2001"
    )
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, CONF_PASSWORD: "pw-2001"}
    )
    await hass.async_block_till_done()
    await async_wait_for_state(hass, REGISTRATION, "successful")
    failure = state_of(hass, LAST_FAILURE)
    assert (failure.state, failure.attributes["sip_code"]) == (
        "rejected_by_server",
        code,
    )
    assert state_of(hass, REGISTERED).state == "on"
    assert _rejected_issue_ids(hass) == []


@pytest.mark.parametrize(
    ("unknown_user", "status", "code"),
    [("not_found", "not_found", 404), ("forbidden", "rejected_by_server", 403)],
)
async def test_unknown_user(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    unknown_user: UnknownUserPolicy,
    status: str,
    code: int,
) -> None:
    """An extension the server does not know shows what the server answered."""
    kamailio = kamailio_factory(unknown_user=unknown_user)
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    hass.config_entries.async_update_subentry(
        entry,
        next(iter(entry.subentries.values())),
        data={
            "role": ExtensionRole.PAGE,
            "extension": "7777",
            "auth_id": "7777",
            CONF_PASSWORD: "whatever",
        },
    )
    await _setup(hass, entry)

    state = await async_wait_for_state(hass, "sensor.page_7777_registration", status)
    assert state.attributes["sip_code"] == code
    failure = state_of(hass, "sensor.page_7777_last_failure")
    assert (failure.state, failure.attributes["sip_code"]) == (status, code)


async def test_server_down_over_tcp(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """A refused TCP connection is 'no reply from server' (the 503 is local)."""
    kamailio.stop()
    entry = make_entry(
        kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")], transport="tcp"
    )
    await _setup(hass, entry)

    state = await async_wait_for_state(hass, REGISTRATION, "no_reply_from_server")
    assert state.attributes["sip_code"] == 503
    failure = state_of(hass, LAST_FAILURE)
    assert (failure.state, failure.attributes["sip_code"]) == (
        "no_reply_from_server",
        503,
    )
    assert state_of(hass, REGISTERED).state == "off"


async def test_lost_and_back_are_logged_once(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Losing the server logs one warning; coming back logs one info line."""
    entry = make_entry(
        kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")], transport="tcp"
    )
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_KEEPALIVE: "sip_options",
            CONF_KEEPALIVE_INTERVAL: 5,
        },
    )
    await _setup(hass, entry)
    await async_wait_for_state(hass, REGISTRATION, "successful")
    caplog.set_level(logging.INFO, logger="custom_components.sip_endpoint")

    kamailio.stop()
    await async_wait_for_state(hass, REGISTRATION, "no_reply_from_server")
    # Further failed attempts while the server stays down are not logged again.
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.page_2001_register_again"},
        blocking=True,
    )
    await async_wait_for_state(hass, REGISTRATION, "no_reply_from_server")

    kamailio.restart()
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.page_2001_register_again"},
        blocking=True,
    )
    await async_wait_for_state(hass, REGISTRATION, "successful")

    lost = [r for r in caplog.records if "is not registered" in r.getMessage()]
    back = [r for r in caplog.records if "registered again" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].levelno == logging.WARNING
    assert len(back) == 1


async def test_unreachable_for_ten_minutes_raises_repair(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """No reply for more than 10 minutes raises an issue; a reply clears it."""
    kamailio.stop()
    entry = make_entry(
        kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")], transport="tcp"
    )
    await _setup(hass, entry)
    await async_wait_for_state(hass, REGISTRATION, "no_reply_from_server")
    issue_id = server_unreachable_issue_id(entry.entry_id)
    issues = ir.async_get(hass)

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=599))
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=601))
    await hass.async_block_till_done()
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert not issue.is_fixable

    kamailio.start()
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.page_2001_register_again"},
        blocking=True,
    )
    await async_wait_for_state(hass, REGISTRATION, "successful")
    assert issues.async_get_issue(DOMAIN, issue_id) is None
