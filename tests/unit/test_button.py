"""Button: register an extension again."""

from unittest.mock import MagicMock

from homeassistant.components.button.const import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint.engine import RequestFailedError

from .const import RING_ID

RING_BUTTON = "button.ring_2002_register_again"


@pytest.fixture
def platforms() -> list[Platform]:
    """Set up the buttons only."""
    return [Platform.BUTTON]


async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Every button's registry entry and state."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_press_registers_again(
    hass: HomeAssistant, mock_engine: MagicMock
) -> None:
    """Pressing an extension's button asks the engine to register that extension."""
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: RING_BUTTON}, blocking=True
    )

    mock_engine.reregister.assert_awaited_once_with(RING_ID)


@pytest.mark.usefixtures("init_integration")
async def test_press_fails(hass: HomeAssistant, mock_engine: MagicMock) -> None:
    """An engine error becomes a translated error naming the extension."""
    mock_engine.reregister.side_effect = RequestFailedError("worker_down", "gone")

    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: RING_BUTTON}, blocking=True
        )

    assert raised.value.translation_key == "re_register_failed"
    assert raised.value.translation_placeholders == {"extension": "2002"}
