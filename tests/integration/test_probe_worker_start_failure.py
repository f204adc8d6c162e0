"""A registration test whose worker cannot start says so, instead of "unexpected error".

Found by trying the product as a user: a reconfigure after the integration's files
were updated (the old code loaded, the new worker started) showed only "Unexpected
error during the registration test; see the log". The same happens when no local
port of the options' range is free, as here: the extension step starts a real worker
against a real Kamailio, on a one-port range that the test holds.
"""

from collections.abc import Callable, Iterator
import socket

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import (
    CONF_EXTENSION,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from tests.sipbed.kamailio import Kamailio
from tests.sipbed.netutil import free_tcp_port
from tests.sipbed.users import password_for

from .flow_helpers import flow_translations_checked, placeholders


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


@pytest.fixture
def taken_port() -> Iterator[int]:
    """Hold one local port on UDP and TCP for the test."""
    port = free_tcp_port("127.0.0.1")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        udp.bind(("127.0.0.1", port))
        tcp.bind(("127.0.0.1", port))
        tcp.listen()
        yield port


async def test_no_free_port_is_said(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    entry_options: dict[str, object],
    taken_port: int,
) -> None:
    """The extension step names the worker's start failure with its reason."""
    entry_options[CONF_PORT_MIN] = entry_options[CONF_PORT_MAX] = taken_port
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", password_for("2001"))])
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TYPE_EXTENSION), context={"source": SOURCE_USER}
    )
    flow_id = result["flow_id"]
    await hass.config_entries.subentries.async_configure(
        flow_id, {"next_step_id": "add_ring"}
    )
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {CONF_EXTENSION: "2002", "password": password_for("2002")}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "extension"
    assert result["errors"] == {"base": "worker_start_failed"}
    assert (
        f"no port free for UDP and TCP in {taken_port}-{taken_port}"
        in (placeholders(dict(result))["reason"])
    )
