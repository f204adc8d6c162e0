"""Setting up, unloading and reloading entries against real Kamailio and workers."""

from collections.abc import Callable
import os
from pathlib import Path
import socket
from typing import Any

from homeassistant.config_entries import ConfigEntries, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, flush_store

from custom_components.sip_endpoint.const import (
    CONF_ENGINE,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_WORKER_PYTHON,
    DOMAIN,
    ExtensionRole,
)
from tests.sipbed.kamailio import Kamailio

from .helpers import async_wait_for_state, state_of

PAGE_REGISTRATION = "sensor.page_2001_registration"
RING_REGISTRATION = "sensor.ring_2002_registration"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_setup_registers_every_extension(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Both extensions register through the 401 challenge and show it."""
    assert loaded_entry.state is ConfigEntryState.LOADED
    page = await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    await async_wait_for_state(hass, RING_REGISTRATION, "successful")
    assert page.attributes["sip_code"] == 200
    assert page.attributes["expiry_seconds"] > 0
    assert state_of(hass, "binary_sensor.page_2001_registered").state == "on"
    assert state_of(hass, "sensor.page_2001_call_state").state == "idle"


async def test_unload_stops_every_worker(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Unloading unregisters and ends the worker processes; nothing lingers."""
    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    pids = [
        worker.pid
        for worker in loaded_entry.runtime_data.engine.workers()
        if worker.pid is not None
    ]
    assert pids
    assert all(_alive(pid) for pid in pids)

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()

    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert not any(_alive(pid) for pid in pids)
    assert state_of(hass, PAGE_REGISTRATION).state == "unavailable"


async def test_reload_registers_again_with_new_workers(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """A reload replaces the workers and the extensions register again."""
    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    old_pids = {worker.pid for worker in loaded_entry.runtime_data.engine.workers()}

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()

    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    new_pids = {worker.pid for worker in loaded_entry.runtime_data.engine.workers()}
    assert new_pids.isdisjoint(old_pids)
    assert not any(_alive(pid) for pid in old_pids if pid is not None)


async def test_missing_worker_python_retries_with_repair(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The pjsua2 engine without a usable interpreter retries; a repair explains why."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_ENGINE: "pjsua2",
            CONF_WORKER_PYTHON: "/nonexistent/python3.12",
        },
    )

    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_RETRY
    issues = [
        issue
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    ]
    assert [issue.translation_key for issue in issues] == ["no_worker_python"]
    assert all(not issue.is_fixable for issue in issues)


async def test_configuration_survives_restart(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    loaded_entry: MockConfigEntry,
) -> None:
    """What Home Assistant stores brings back the server, options and extensions."""
    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    hass.config_entries._async_schedule_save()
    await flush_store(hass.config_entries._store)

    restarted = ConfigEntries(hass, {})
    await restarted.async_initialize()
    entry = restarted.async_get_entry(loaded_entry.entry_id)

    assert entry is not None
    assert entry.domain == DOMAIN
    assert entry.data == loaded_entry.data
    assert entry.options == loaded_entry.options
    assert {
        subentry_id: (subentry.subentry_type, subentry.unique_id, dict(subentry.data))
        for subentry_id, subentry in entry.subentries.items()
    } == {
        subentry_id: (subentry.subentry_type, subentry.unique_id, dict(subentry.data))
        for subentry_id, subentry in loaded_entry.subentries.items()
    }
    assert len(entry.subentries) == 2


def _worker_children() -> list[int]:
    """Return the pids of this process's children that are SIP workers."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and b"worker/launch.py" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


async def test_sip_ports_taken_retries_and_leaves_nothing_running(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """Another program holds the SIP port range: setup retries, no worker is left."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp.bind(("127.0.0.1", port))
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_PORT_MIN: port, CONF_PORT_MAX: port}
        )

        assert not await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert entry.reason.startswith("The SIP workers could not be started: ")
    assert f"{port}" in entry.reason, entry.reason
    assert _worker_children() == []
