"""New credentials for a rejected extension: an empty authentication ID is the extension.

Found by trying the product as a user: the repair form said "Leave empty when it is
the same as the extension" of a field it required. The fix flow registers once
through a real Kamailio with a real worker.
"""

from collections.abc import Callable, Iterator

from homeassistant.components.repairs import RepairsFlowManager, repairs_flow_manager
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.sip_endpoint.const import CONF_AUTH_ID, DOMAIN, ExtensionRole
from custom_components.sip_endpoint.repairs import (
    async_create_rejected_credentials_issue,
)
from tests.sipbed.kamailio import KamailioFactory
from tests.sipbed.users import password_for

from .flow_helpers import flow_translations_checked


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


async def test_empty_authentication_id_is_the_extension(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The form lets the ID be left empty; the extension then registers as itself."""
    assert await async_setup_component(hass, "repairs", {})
    assert await async_setup_component(hass, DOMAIN, {})
    manager: RepairsFlowManager | None = repairs_flow_manager(hass)
    assert manager is not None
    kamailio = kamailio_factory(wrong_password="forbidden")
    entry = make_entry(kamailio, [(ExtensionRole.RING, "2002", "stale")])
    (subentry,) = entry.subentries.values()
    # A stored authentication ID the server does not know, as after a PBX change.
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, CONF_AUTH_ID: "old-id"}
    )
    async_create_rejected_credentials_issue(hass, entry, subentry.subentry_id, "2002")
    issue_id = f"rejected_credentials_{subentry.subentry_id}"

    result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"]
    assert schema is not None
    markers = {str(marker): marker for marker in schema.schema}
    assert isinstance(markers[CONF_AUTH_ID], vol.Optional)
    assert isinstance(markers[CONF_PASSWORD], vol.Required)

    result = await manager.async_configure(
        result["flow_id"], {CONF_PASSWORD: password_for("2002")}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.subentries[subentry.subentry_id].data[CONF_AUTH_ID] == "2002"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
