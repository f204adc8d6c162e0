"""Diagnostics: configuration without secrets, statuses and workers."""

import json
from pathlib import Path

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .helpers import async_wait_for_state

MANIFEST = json.loads(
    (
        Path(__file__).parents[2]
        / "custom_components"
        / "sip_endpoint"
        / "manifest.json"
    ).read_text()
)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Diagnostics show statuses and workers, and never a password."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )

    text = json.dumps(diagnostics)
    assert "pw-2001" not in text
    assert "pw-2002" not in text
    extensions = diagnostics["extensions"]
    assert len(extensions) == 2
    for extension in extensions.values():
        assert extension["data"]["password"] == "**REDACTED**"
        assert extension["status"]["registration"]["status"] == "successful"
    workers = diagnostics["workers"]
    assert len(workers) == 1
    assert workers[0]["pid"] > 0
    # The test entry chooses the built-in engine (tests/integration/conftest.py).
    assert (workers[0]["engine"], workers[0]["max_accounts"]) == ("builtin", 100)
    assert workers[0]["engine_version"] == MANIFEST["version"]
    assert diagnostics["engine"]["name"] == "builtin"
    assert diagnostics["engine"]["max_accounts_per_worker"] == 100
    assert workers[0]["uptime"] >= 0
    assert sorted(workers[0]["account_ids"]) == sorted(loaded_entry.subentries)
    # What the worker itself answers to `status`.
    status = workers[0]["status"]
    assert (status["accounts"], status["calls"]) == (2, 0)
    assert status["rss_kib"] > 0
    codes = [exchange["code"] for exchange in diagnostics["registration_exchanges"]]
    assert 200 in codes
