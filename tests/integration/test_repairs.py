"""Repair issues and the fix flow for rejected credentials, with real SIP."""

from collections.abc import Callable, Iterator
import json
from typing import Any

from homeassistant.components.repairs import RepairsFlowManager, repairs_flow_manager
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_EXTENSION,
    DOMAIN,
    ExtensionRole,
)
from custom_components.sip_endpoint.repairs import (
    async_create_no_worker_python_issue,
    async_create_rejected_credentials_issue,
    async_create_unreachable_issue,
    async_delete_no_worker_python_issue,
    async_delete_rejected_credentials_issue,
    async_delete_unreachable_issue,
)
from tests.sipbed.kamailio import Kamailio, KamailioFactory

from .flow_helpers import (
    TRANSLATIONS_PATH,
    flow_translations_checked,
    placeholders,
    placeholders_used,
)
from .helpers import async_wait_for_state


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


@pytest.fixture
async def flow_manager(hass: HomeAssistant) -> RepairsFlowManager:
    """Set up repairs and this integration (no entries yet); return the flow manager."""
    assert await async_setup_component(hass, "repairs", {})
    assert await async_setup_component(hass, DOMAIN, {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    return manager


def _subentry_id(entry: MockConfigEntry, extension: str) -> str:
    subentry_ids: list[str] = [
        sid for sid, sub in entry.subentries.items() if sub.unique_id == extension
    ]
    return subentry_ids[0]


async def start_fix_flow(manager: RepairsFlowManager, issue_id: str) -> dict[str, Any]:
    """Start the fix flow of one of this integration's issues."""
    result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    return dict(result)


async def test_fix_flow_renews_rejected_credentials(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    flow_manager: RepairsFlowManager,
) -> None:
    """Wrong credentials are refused with the advice; right ones fix the issue."""
    kamailio = kamailio_factory(wrong_password="forbidden")
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "pw-2001"),
            (ExtensionRole.RING, "2002", "stale"),
        ],
    )
    ring_id = _subentry_id(entry, "2002")
    async_create_rejected_credentials_issue(hass, entry, ring_id, "2002")
    issue_id = f"rejected_credentials_{ring_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "rejected_credentials"
    assert issue.translation_placeholders == {
        CONF_EXTENSION: "2002",
        "server": entry.title,
    }
    title = json.loads(TRANSLATIONS_PATH.read_text())["issues"]["rejected_credentials"][
        "title"
    ]
    assert placeholders_used(title) <= set(issue.translation_placeholders)

    result = await start_fix_flow(flow_manager, issue_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "credentials"
    assert placeholders(result)[CONF_EXTENSION] == "2002"
    flow_id = result["flow_id"]

    result = dict(
        await flow_manager.async_configure(
            flow_id, {CONF_AUTH_ID: "2002", CONF_PASSWORD: "wrong-again"}
        )
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "rejected_by_server"}
    assert placeholders(result)["code"] == "403"

    result = dict(
        await flow_manager.async_configure(
            flow_id, {CONF_AUTH_ID: "2002", CONF_PASSWORD: ""}
        )
    )
    assert result["errors"] == {CONF_PASSWORD: "password_required"}

    result = dict(
        await flow_manager.async_configure(
            flow_id, {CONF_AUTH_ID: "2002", CONF_PASSWORD: "pw-2002"}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.subentries[ring_id].data[CONF_PASSWORD] == "pw-2002"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.parametrize("remove", ["subentry", "entry"])
async def test_fix_flow_for_a_removed_extension_aborts(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    flow_manager: RepairsFlowManager,
    remove: str,
) -> None:
    """An issue left over from a removed extension or server can't be fixed."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "wrong")])
    subentry_id = _subentry_id(entry, "2001")
    async_create_rejected_credentials_issue(hass, entry, subentry_id, "2001")
    if remove == "subentry":
        hass.config_entries.async_remove_subentry(entry, subentry_id)
    else:
        await hass.config_entries.async_remove(entry.entry_id)
    result = await start_fix_flow(flow_manager, f"rejected_credentials_{subentry_id}")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "extension_not_found"


async def test_issue_helpers_create_and_delete(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """The lead's helpers raise and withdraw every issue with its placeholders."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    subentry_id = _subentry_id(entry, "2001")
    registry = ir.async_get(hass)

    async_create_unreachable_issue(hass, entry)
    async_create_no_worker_python_issue(hass, entry)
    async_create_rejected_credentials_issue(hass, entry, subentry_id, "2001")
    unreachable = registry.async_get_issue(
        DOMAIN, f"server_unreachable_{entry.entry_id}"
    )
    assert unreachable is not None
    assert not unreachable.is_fixable
    assert unreachable.severity is ir.IssueSeverity.ERROR
    assert unreachable.translation_placeholders == {"server": entry.title}
    no_worker = registry.async_get_issue(DOMAIN, f"no_worker_python_{entry.entry_id}")
    assert no_worker is not None
    assert not no_worker.is_fixable
    assert no_worker.translation_placeholders == {
        "server": entry.title,
        "venv": hass.config.path("sip_endpoint_worker"),
        "requirement": "pjsua2-python==2.15.1.post1",
    }

    texts = json.loads(TRANSLATIONS_PATH.read_text())["issues"]
    for issue in (unreachable, no_worker):
        text = texts[issue.translation_key]
        used = placeholders_used(text["title"] + text["description"])
        assert used <= set(issue.translation_placeholders or {})

    async_delete_unreachable_issue(hass, entry)
    async_delete_no_worker_python_issue(hass, entry)
    async_delete_rejected_credentials_issue(hass, entry, subentry_id)
    assert [
        issue_id for (domain, issue_id) in registry.issues if domain == DOMAIN
    ] == []


async def test_repair_registers_the_running_extension_again(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    flow_manager: RepairsFlowManager,
) -> None:
    """End to end: a rejected extension gets an issue; the fix registers it again."""
    kamailio = kamailio_factory(wrong_password="forbidden")
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "pw-2001"),
            (ExtensionRole.RING, "2002", "stale"),
        ],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await async_wait_for_state(
        hass, "sensor.ring_2002_registration", "rejected_by_server"
    )
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    issue_id = f"rejected_credentials_{_subentry_id(entry, '2002')}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    result = await start_fix_flow(flow_manager, issue_id)
    result = dict(
        await flow_manager.async_configure(
            result["flow_id"], {CONF_AUTH_ID: "2002", CONF_PASSWORD: "pw-2002"}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")
    page = hass.states.get("sensor.page_2001_registration")
    assert page is not None
    assert page.state == "successful"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
