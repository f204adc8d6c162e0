"""Binary sensors: each extension's registration and the server's reachability."""

from unittest.mock import MagicMock

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint.protocol.payloads import RegistrationState
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .const import ALERT_ID, PAGE_ID, REGISTERED_AT, RING_ID, SERVER

REACHABLE = "binary_sensor.pbx_example_com_reachable"
PAGE_REGISTERED = "binary_sensor.page_2001_registered"


def no_reply(account_id: str) -> RegistrationState:
    """Return the state of an extension whose REGISTER got no answer."""
    return RegistrationState(
        account_id=account_id,
        status=RegistrationStatus.NO_REPLY_FROM_SERVER,
        code=408,
        reason="Request Timeout",
        changed_at=REGISTERED_AT + 400,
        last_success=REGISTERED_AT,
        expires=0,
        registrar=f"sip:{SERVER}",
    )


@pytest.fixture
def platforms() -> list[Platform]:
    """Set up the binary sensors only."""
    return [Platform.BINARY_SENSOR]


async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Every binary sensor's registry entry and state."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_server_stops_answering(
    hass: HomeAssistant, mock_engine: MagicMock
) -> None:
    """Once no extension gets a reply, the server is unreachable; one reply is enough."""
    for account_id in (PAGE_ID, RING_ID, ALERT_ID):
        mock_engine.on_event(no_reply(account_id))
        await hass.async_block_till_done()
        assert (reachable := hass.states.get(REACHABLE))
        assert reachable.state == ("off" if account_id == ALERT_ID else "on")
    assert (registered := hass.states.get(PAGE_REGISTERED))
    assert registered.state == "off"
