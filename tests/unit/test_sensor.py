"""Sensors: registration, call state and last failure per extension; the server's."""

from unittest.mock import MagicMock

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint.const import DOMAIN, EVENT_REGISTRATION
from custom_components.sip_endpoint.protocol.payloads import RegistrationState
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.repairs import rejected_credentials_issue_id

from .const import PAGE_ID, REGISTERED_AT, SERVER

REGISTRATION = "sensor.page_2001_registration"
LAST_FAILURE = "sensor.page_2001_last_failure"
REGISTERED = "sensor.pbx_example_com_registered_extensions"
REJECTED_AT = REGISTERED_AT + 300


@pytest.fixture
def platforms() -> list[Platform]:
    """Set up the sensors only."""
    return [Platform.SENSOR]


async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Every sensor's registry entry and state."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_registration_rejected(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    mock_engine: MagicMock,
) -> None:
    """The engine reports rejected credentials: the sensors follow, a repair appears."""
    failures = async_capture_events(hass, EVENT_REGISTRATION)
    assert (registration := hass.states.get(REGISTRATION))
    assert registration.state == "successful"
    assert (last_failure := hass.states.get(LAST_FAILURE))
    assert last_failure.state == "none"
    assert (registered := hass.states.get(REGISTERED))
    assert registered.state == "3"

    mock_engine.on_event(
        RegistrationState(
            account_id=PAGE_ID,
            status=RegistrationStatus.REJECTED_BY_SERVER,
            code=403,
            reason="Forbidden",
            changed_at=REJECTED_AT,
            last_success=REGISTERED_AT,
            expires=0,
            registrar=f"sip:{SERVER}",
        )
    )
    await hass.async_block_till_done()

    assert (registration := hass.states.get(REGISTRATION))
    assert registration.state == "rejected_by_server"
    assert registration.attributes["sip_code"] == 403
    assert registration.attributes["reason"] == "Forbidden"
    assert (last_failure := hass.states.get(LAST_FAILURE))
    assert last_failure.state == "rejected_by_server"
    assert last_failure.attributes["time"] == "2025-11-30T08:05:00+00:00"
    assert (registered := hass.states.get(REGISTERED))
    assert registered.state == "2"
    assert [(event.data["type"], event.data["extension"]) for event in failures] == [
        ("failed", "2001")
    ]
    assert issue_registry.async_get_issue(
        DOMAIN, rejected_credentials_issue_id(PAGE_ID)
    )
