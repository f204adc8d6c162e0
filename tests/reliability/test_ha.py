"""Home Assistant under faults: a worker killed mid-page, secrets under captured logs."""

from __future__ import annotations

import json
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_state_change_event
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.sip_endpoint.const import DOMAIN, ExtensionRole
from tests.integration.flow_helpers import async_configure_setup, user_input
from tests.integration.helpers import async_wait_for_state
from tests.sipbed.users import password_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio, KamailioFactory

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

PAGE = "page_2001"
MARKER = "MARKER-pw-7f3a9c"  # a password that must never be seen anywhere


def _record_events(hass: HomeAssistant, entity_id: str) -> list[dict[str, Any]]:
    fired: list[dict[str, Any]] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None and new.attributes.get(
            "event_type"
        ):
            fired.append(dict(new.attributes))

    async_track_state_change_event(hass, [entity_id], changed)
    return fired


async def test_worker_killed_during_a_page_call(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
) -> None:
    """SIGKILL mid-page: the call ends as failed, the worker returns, all re-register."""
    await async_wait_for_state(hass, f"sensor.{PAGE}_registration", "successful")
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")
    events = _record_events(hass, f"event.{PAGE}_call")
    caller = baresip_factory(
        user="9001", password=password_for("9001"), registrar=kamailio
    )
    await hass.async_add_executor_job(caller.wait_registered)
    caller.dial("2001")
    await hass.async_add_executor_job(caller.wait_established)
    await async_wait_for_state(hass, f"sensor.{PAGE}_call_state", "paging")

    before = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    (worker,) = before["workers"]
    os.kill(worker["pid"], signal.SIGKILL)

    await async_wait_for_state(hass, f"sensor.{PAGE}_call_state", "idle")
    ended = [event for event in events if event["event_type"] == "ended"]
    assert len(ended) == 1
    assert ended[0]["cause"] == "failed"
    for name in (PAGE, "ring_2002"):
        await async_wait_for_state(hass, f"sensor.{name}_registration", "successful")
    after = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    (restarted,) = after["workers"]
    assert restarted["pid"] not in (None, worker["pid"])
    assert restarted["restarts"] == 1
    # The page extension takes calls again.
    caller.hangup()
    second = baresip_factory(
        user="9002", password=password_for("9002"), registrar=kamailio
    )
    await hass.async_add_executor_job(second.wait_registered)
    second.dial("2001")
    await hass.async_add_executor_job(second.wait_established)
    await async_wait_for_state(hass, f"sensor.{PAGE}_call_state", "paging")
    second.hangup()
    await async_wait_for_state(hass, f"sensor.{PAGE}_call_state", "idle")


async def test_marker_password_never_leaks(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    kamailio: Kamailio,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    worker_python: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rejected marker password: not in logs, worker stderr, diagnostics or errors."""
    caplog.set_level(logging.DEBUG)
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", MARKER),
            (ExtensionRole.RING, "2002", password_for("2002")),
        ],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await async_wait_for_state(
        hass, f"sensor.{PAGE}_registration", "rejected_by_server"
    )
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")
    issues = [
        issue
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    ]
    assert issues
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    engine_repr = repr(entry.runtime_data.engine)
    worker_stderr = [
        client.stderr_tail()
        for slot in entry.runtime_data.engine._slots
        if (client := slot.client) is not None
    ]

    # The config flow with the marker as a wrong password (another server).
    other = kamailio_factory()
    flow = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER, "show_advanced_options": True}
    )
    result = await async_configure_setup(
        hass,
        flow["flow_id"],
        user_input(other, worker_python, extension="2003", password=MARKER),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PASSWORD: "rejected_by_server"}

    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    assert "Registering" in caplog.text or "SIP worker" in caplog.text
    places = {
        "logs": caplog.text,
        "diagnostics": json.dumps(diagnostics),
        "worker stderr": "\n".join(worker_stderr),
        "flow errors": json.dumps(result["errors"])
        + json.dumps(result.get("description_placeholders")),
        "issues": repr(issues),
        "engine repr": engine_repr,
    }
    assert {place for place, text in places.items() if MARKER in text} == set()


async def test_runtime_repr_has_no_password(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The repr of the entry's runtime data (seen in tracebacks) has no password."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", MARKER)])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    text = repr(entry.runtime_data)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert MARKER not in text
