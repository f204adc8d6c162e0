"""Bad configuration values through the real config flow: a clear error, no SIP traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest

from custom_components.sip_endpoint.const import CONF_EXTENSION, CONF_PORT, DOMAIN
from tests.integration.flow_helpers import async_configure_setup, user_input

if TYPE_CHECKING:
    from pathlib import Path

    from homeassistant.core import HomeAssistant

    from tests.sipbed.kamailio import Kamailio

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


async def _configure(
    hass: HomeAssistant,
    worker_python: Path,
    changes: dict[str, Any],
    kamailio: Kamailio | None = None,
) -> dict[str, Any]:
    # The setup flow checks the server before it asks for the extension: credential
    # errors need a server that answers.
    flow = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER, "show_advanced_options": True}
    )
    return await async_configure_setup(
        hass,
        flow["flow_id"],
        user_input(kamailio, worker_python, port=5060) | changes,
    )


@pytest.mark.parametrize("port", [0, 70000, -1])
async def test_port_out_of_range(
    hass: HomeAssistant, worker_python: Path, port: int
) -> None:
    """Ports outside 1-65535 fail the form's schema, naming the port field."""
    with pytest.raises(InvalidData) as caught:
        await _configure(hass, worker_python, {CONF_PORT: port})
    assert set(caught.value.schema_errors) == {CONF_PORT}


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_EXTENSION: "Ä2001"}, {CONF_EXTENSION: "invalid_sip_user"}),
        (
            {CONF_EXTENSION: "\uff12\uff10\uff10\uff11"},
            {CONF_EXTENSION: "invalid_sip_user"},
        ),
        ({CONF_EXTENSION: "20\u200b01"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_EXTENSION: ""}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_PASSWORD: ""}, {CONF_PASSWORD: "password_required"}),
    ],
)
async def test_bad_values_get_translated_errors(
    hass: HomeAssistant,
    kamailio: Kamailio,
    worker_python: Path,
    changes: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Non-ASCII or empty extensions and an empty password get the form's errors."""
    result = await _configure(hass, worker_python, changes, kamailio)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
