"""The local address option must be one of this host's addresses.

Found by trying the product as a user: the options form took 192.0.2.1 (no address
of this host); every worker then failed to bind and the server stayed in "setup
retry" with the misleading reason "no port free for UDP and TCP in 5062-5199". The
entry is loaded against a real Kamailio with a real worker, and registers again
after a valid change.
"""

from collections.abc import Iterator
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import CONF_BIND_HOST

from .flow_helpers import flow_translations_checked
from .helpers import async_wait_for_state

REGISTRATION = "sensor.page_2001_registration"


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


async def test_an_address_this_host_lacks_is_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """192.0.2.1 (TEST-NET-1) is refused at its field; 127.0.0.1 is kept and used."""
    await async_wait_for_state(hass, REGISTRATION, "successful")
    options: dict[str, Any] = dict(loaded_entry.options)
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    flow_id = result["flow_id"]

    result = await hass.config_entries.options.async_configure(
        flow_id, options | {CONF_BIND_HOST: "192.0.2.1"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BIND_HOST: "invalid_bind_host"}
    assert loaded_entry.options[CONF_BIND_HOST] == "127.0.0.1"

    result = await hass.config_entries.options.async_configure(
        flow_id, options | {CONF_BIND_HOST: "127.0.0.1"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await async_wait_for_state(hass, REGISTRATION, "successful")
