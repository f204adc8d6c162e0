"""Diagnostics: configuration without secrets, the engine, statuses and workers."""

import json
import time

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from .const import SECRETS, WORKER_STARTED_AT


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """The diagnostics read as the snapshot; no password or access code shows."""
    before = time.time()
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    after = time.time()

    assert diagnostics == snapshot(exclude=props("uptime"))
    text = json.dumps(diagnostics)
    assert [secret for secret in SECRETS if secret in text] == []
    # The worker's uptime counts from its start to the moment of the request.
    (worker,) = diagnostics["workers"]
    uptime = worker["uptime"]
    assert round(before - WORKER_STARTED_AT, 1) <= uptime
    assert uptime <= round(after - WORKER_STARTED_AT, 1)
