"""Fixtures for the Home Assistant side: config entries against the real test bed."""

from collections.abc import AsyncIterator, Callable, Iterator
import logging
import random
import socket

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryDataWithId
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_ENGINE,
    CONF_EXTENSION,
    CONF_KEEPALIVE_INTERVAL,
    CONF_PORT,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TRANSPORT,
    DOMAIN,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from tests.sipbed.kamailio import Kamailio
from tests.snapshot_extension import VersionNeutralSnapshotExtension

from .roles import RoleEntryFactory, role_entries

type ExtensionSpec = tuple[ExtensionRole, str, str]  # role, extension, password


class _HomeAssistantWarnings(logging.Handler):
    """Collect Home Assistant's warnings about deprecated use or misuse."""

    def __init__(self) -> None:
        """Collect from WARNING up."""
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep Home Assistant's deprecation and misuse reports.

        Those come from helpers.frame or say "deprecated" or ask to report a bug to
        the integration's author; a retrying entry's warning is an expected outcome.
        """
        if not record.name.startswith("homeassistant"):
            return  # our own loggers (custom_components.sip_endpoint) may warn
        message = record.getMessage()
        lowered = message.lower()
        if (
            record.name == "homeassistant.helpers.frame"
            or "deprecat" in lowered
            or "report it to the author" in lowered
            or "create a bug report" in lowered
        ):
            self.found.append(f"{record.name}: {message}")


@pytest.fixture(autouse=True)
def no_home_assistant_warnings() -> Iterator[None]:
    """Fail a test when Home Assistant warns about this integration.

    Home Assistant reports deprecated use by custom integrations as log warnings
    (helpers.frame, deprecated functions); on a newer Home Assistant they become errors.
    """
    collector = _HomeAssistantWarnings()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.found:
        pytest.fail("Home Assistant warned:\n" + "\n".join(collector.found))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshot with Home Assistant's serializer (ids and times become ANY).

    Registry fields that differ between Home Assistant versions are left out
    (tests/snapshot_extension.py says which and why).
    """
    return snapshot.use_extension(VersionNeutralSnapshotExtension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom integrations in every test of this package."""


def free_port_range(size: int = 20) -> tuple[int, int]:
    """Pick a block of local ports that are free for UDP and TCP right now."""
    for _ in range(200):
        start = random.randrange(20000, 60000 - size)
        if all(_port_free(port) for port in range(start, start + size)):
            return start, start + size - 1
    raise RuntimeError("no free port range on 127.0.0.1")


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.fixture
def entry_options() -> dict[str, object]:
    """Options that keep workers on loopback and on free ports, on the built-in engine.

    The suite runs on the built-in engine, as most users do; test_pjsua2_smoke.py runs
    a few of its tests again on the pjsua2 engine.
    """
    port_min, port_max = free_port_range()
    return {
        CONF_BIND_HOST: "127.0.0.1",
        CONF_PORT_MIN: port_min,
        CONF_PORT_MAX: port_max,
        CONF_ENGINE: "builtin",
        CONF_KEEPALIVE_INTERVAL: 30,
    }


@pytest.fixture
def make_entry(
    hass: HomeAssistant, entry_options: dict[str, object]
) -> Callable[..., MockConfigEntry]:
    """Build (not set up) a config entry for a Kamailio and some extensions."""

    def make(
        kamailio: Kamailio,
        extensions: list[ExtensionSpec],
        *,
        transport: str = "udp",
    ) -> MockConfigEntry:
        entry = MockConfigEntry(
            domain=DOMAIN,
            entry_id="test_entry",
            title="Test PBX",
            unique_id=f"{kamailio.host}:{kamailio.port}",
            data={
                CONF_SERVER: kamailio.host,
                CONF_PORT: kamailio.port,
                CONF_TRANSPORT: transport,
            },
            options=dict(entry_options),
            subentries_data=[
                ConfigSubentryDataWithId(
                    subentry_id=f"subentry_{extension}",
                    data={
                        CONF_ROLE: role,
                        CONF_EXTENSION: extension,
                        CONF_AUTH_ID: extension,
                        CONF_PASSWORD: password,
                    },
                    subentry_type=SUBENTRY_TYPE_EXTENSION,
                    title=f"{role} {extension}",
                    unique_id=extension,
                )
                for role, extension, password in extensions
            ],
        )
        entry.add_to_hass(hass)
        return entry

    return make


@pytest.fixture
async def create_entry(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> AsyncIterator[RoleEntryFactory]:
    """Create loaded entries with role options (removed at the end of the test)."""
    async with role_entries(hass, kamailio, make_entry) as create:
        yield create


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> AsyncIterator[MockConfigEntry]:
    """Set up a page and a ring extension against the shared Kamailio."""
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "pw-2001"),
            (ExtensionRole.RING, "2002", "pw-2002"),
        ],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
