"""The options flow: keep-alive, expiry, worker interpreter, ports, sources."""

from collections.abc import Iterator
from pathlib import Path
import sys
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import (
    CONF_BIND_HOST,
    CONF_ENGINE,
    CONF_EXPIRY,
    CONF_KEEPALIVE,
    CONF_KEEPALIVE_INTERVAL,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_RESTRICT_SOURCES,
    CONF_SERVER,
    CONF_TLS_VERIFY,
    CONF_WORKER_PYTHON,
    DOMAIN,
)

from .flow_helpers import (
    flow_translations_checked,
    form_fields,
    placeholders,
    suggested_values,
)


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


@pytest.fixture
def entry(hass: HomeAssistant) -> MockConfigEntry:
    """Return an entry without options (engine defaults apply)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="pbx.example.com:5060",
        title="pbx.example.com",
        data={CONF_SERVER: "pbx.example.com"},
    )
    entry.add_to_hass(hass)
    return entry


def options_input(**changes: Any) -> dict[str, Any]:
    """Return a complete options form input."""
    return {
        CONF_ENGINE: "auto",
        CONF_KEEPALIVE: "sip_options",
        CONF_KEEPALIVE_INTERVAL: 20,
        CONF_EXPIRY: 600,
        CONF_PORT_MIN: 5070,
        CONF_PORT_MAX: 5080,
        CONF_BIND_HOST: "127.0.0.1",
        CONF_RESTRICT_SOURCES: False,
        CONF_TLS_VERIFY: True,
    } | changes


async def test_options_form_shows_engine_defaults(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Without options the form offers the engine's defaults."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    defaults = {
        str(key): key.default() for key in form_fields(result) if callable(key.default)
    }
    assert defaults == {
        CONF_ENGINE: "auto",
        CONF_KEEPALIVE: "double_crlf",
        CONF_KEEPALIVE_INTERVAL: 30,
        CONF_EXPIRY: 300,
        CONF_PORT_MIN: 5062,
        CONF_PORT_MAX: 5199,
        CONF_BIND_HOST: "0.0.0.0",
        CONF_RESTRICT_SOURCES: True,
        CONF_TLS_VERIFY: True,
    }
    assert placeholders(result)["venv"] == hass.config.path("sip_endpoint_worker")


async def test_options_saved(
    hass: HomeAssistant, entry: MockConfigEntry, worker_python: Path
) -> None:
    """Valid options are stored; a real worker interpreter is accepted."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    user_input = options_input(**{CONF_WORKER_PYTHON: str(worker_python)})
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == user_input

    result = await hass.config_entries.options.async_init(entry.entry_id)
    suggested = suggested_values(result)
    assert suggested == user_input


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {CONF_PORT_MIN: 6000, CONF_PORT_MAX: 5999},
            {CONF_PORT_MAX: "invalid_port_range"},
        ),
        ({CONF_BIND_HOST: "my-host"}, {CONF_BIND_HOST: "invalid_bind_host"}),
        (
            {CONF_WORKER_PYTHON: "/nonexistent/bin/python"},
            {CONF_WORKER_PYTHON: "invalid_worker_python"},
        ),
    ],
)
async def test_options_invalid(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """Bad ranges, addresses and interpreters keep the form open; nothing is saved."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(**changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert entry.options == {}


async def test_options_refuse_python_without_pjsua2(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """An interpreter that runs but cannot import pjsua2 is refused."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(**{CONF_WORKER_PYTHON: sys.executable})
    )
    assert result["errors"] == {CONF_WORKER_PYTHON: "invalid_worker_python"}


async def test_options_change_reloads_a_loaded_entry(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_options: dict[str, Any],
) -> None:
    """Saved options reach the running entry through its update listener."""
    engine_before = loaded_entry.runtime_data.engine
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_KEEPALIVE: "off",
            CONF_KEEPALIVE_INTERVAL: 30,
            CONF_EXPIRY: 120,
            CONF_PORT_MIN: entry_options[CONF_PORT_MIN],
            CONF_PORT_MAX: entry_options[CONF_PORT_MAX],
            CONF_BIND_HOST: "127.0.0.1",
            CONF_RESTRICT_SOURCES: True,
            CONF_WORKER_PYTHON: entry_options[CONF_WORKER_PYTHON],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options[CONF_EXPIRY] == 120
    assert loaded_entry.runtime_data.engine is not engine_before
