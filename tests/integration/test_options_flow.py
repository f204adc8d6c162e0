"""The options flow: keep-alive, expiry, worker interpreter, ports, sources."""

from collections.abc import Iterator
import json
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
    TRANSLATIONS_PATH,
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
        CONF_RESTRICT_SOURCES: True,
        CONF_TLS_VERIFY: True,
    }
    # The local address is empty (every address), as in the setup form.
    assert CONF_BIND_HOST in {str(key) for key in form_fields(result)}
    assert CONF_BIND_HOST not in suggested_values(result)
    assert placeholders(result)["venv"] == hass.config.path("sip_endpoint_worker")
    assert placeholders(result)["engine_in_use"] == (
        "nothing, as this server is not loaded"
    )


async def test_options_form_shows_every_address_as_empty(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """A stored 0.0.0.0 is shown as the empty field; another address is shown."""
    hass.config_entries.async_update_entry(entry, options={CONF_BIND_HOST: "0.0.0.0"})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert CONF_BIND_HOST not in suggested_values(result)
    hass.config_entries.async_update_entry(entry, options={CONF_BIND_HOST: "127.0.0.1"})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert suggested_values(result)[CONF_BIND_HOST] == "127.0.0.1"


async def test_options_form_names_the_engine_in_use(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """A loaded server's options say which engine and interpreter run its workers."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    in_use = placeholders(result)["engine_in_use"]
    assert in_use.startswith("the built-in engine")
    assert f"on {sys.executable} (Python " in in_use
    hass.config_entries.options.async_abort(result["flow_id"])


def test_worker_interpreter_help_names_the_search() -> None:
    """The interpreter help names the variable and says the folder is one to create."""
    tree = json.loads(TRANSLATIONS_PATH.read_text())
    texts = [
        tree["options"]["step"]["init"]["data_description"][CONF_WORKER_PYTHON],
        tree["config"]["step"]["user"]["sections"]["advanced"]["data_description"][
            CONF_WORKER_PYTHON
        ],
    ]
    for text in texts:
        assert "SIP_ENDPOINT_WORKER_PYTHON" in text
        assert "{venv}/bin/python (a virtual environment you create there)" in text
    hints = [
        tree["options"]["step"]["init"]["data_description"][CONF_BIND_HOST],
        tree["config"]["step"]["user"]["sections"]["advanced"]["data_description"][
            CONF_BIND_HOST
        ],
    ]
    assert hints[0] == hints[1]
    assert "0.0.0.0" not in hints[0]
    assert "reaches the SIP server" in hints[0]


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
            CONF_ENGINE: entry_options[CONF_ENGINE],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options[CONF_EXPIRY] == 120
    assert loaded_entry.runtime_data.engine is not engine_before
