"""Event entity: the calls of an extension."""

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

from custom_components.sip_endpoint.protocol.payloads import (
    CallDirection,
    CallEnded,
    EndCause,
    IncomingCall,
)

from .const import PAGE_ID

PAGE_CALLS = "event.page_2001_call"


@pytest.fixture
def platforms() -> list[Platform]:
    """Set up the event entities only."""
    return [Platform.EVENT]


async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Every event entity's registry entry and state."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_incoming_then_missed(
    hass: HomeAssistant, mock_engine: MagicMock
) -> None:
    """A call the caller gives up on fires `incoming`, then `missed`."""
    mock_engine.on_event(
        IncomingCall(
            account_id=PAGE_ID,
            call_id="call-1",
            remote_uri="sip:3001@pbx.example.com",
            display_name="Front door",
            source="192.0.2.10",
        )
    )
    await hass.async_block_till_done()

    assert (state := hass.states.get(PAGE_CALLS))
    assert state.attributes["event_type"] == "incoming"
    assert state.attributes["caller"] == "sip:3001@pbx.example.com"
    assert state.attributes["caller_name"] == "Front door"
    # The page extension answers at once.
    mock_engine.answer.assert_awaited_once_with("call-1")

    mock_engine.on_event(
        CallEnded(
            call_id="call-1",
            account_id=PAGE_ID,
            direction=CallDirection.INBOUND,
            cause=EndCause.CANCEL,
            code=487,
            reason="Request Terminated",
            answered=False,
            duration=2.04,
        )
    )
    await hass.async_block_till_done()

    assert (state := hass.states.get(PAGE_CALLS))
    assert state.attributes["event_type"] == "missed"
    assert (state.attributes["cause"], state.attributes["sip_code"]) == ("cancel", 487)
    assert state.attributes["duration"] == 2.0
