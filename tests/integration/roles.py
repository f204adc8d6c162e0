"""Config entries whose extensions carry role options, set up for one test."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
import contextlib
from pathlib import Path
import shutil
import tempfile
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.calls.sounds import AUDIO_DIR
from custom_components.sip_endpoint.const import ExtensionRole
from tests.sipbed.kamailio import Kamailio
from tests.sipbed.users import password_for

from .helpers import async_wait_for_state

# role, extension, role options
type RoleSpec = tuple[ExtensionRole, str, Mapping[str, Any]]
type RoleEntryFactory = Callable[[list[RoleSpec]], Awaitable[MockConfigEntry]]

INTERNAL_URL = "http://127.0.0.1:8123"


def entity_prefix(role: ExtensionRole, extension: str) -> str:
    """Return the object id prefix of an extension's entities, e.g. `page_2001`."""
    return {
        ExtensionRole.PAGE: "page",
        ExtensionRole.RING: "ring",
        ExtensionRole.EMERGENCY_ALERT: "emergency_alert",
        ExtensionRole.CALL_TO_CANCEL: "call_to_cancel",
    }[role] + f"_{extension}"


@contextlib.asynccontextmanager
async def role_entries(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> AsyncIterator[RoleEntryFactory]:
    """Yield a factory of loaded entries (registered extensions); unload them after."""
    hass.config.internal_url = INTERNAL_URL
    # Each test gets its own folder of sounds and recordings (pytest-xdist runs in
    # parallel, with the same Home Assistant config folder).
    folder = Path(await hass.async_add_executor_job(tempfile.mkdtemp))
    hass.data[AUDIO_DIR] = folder
    entries: list[MockConfigEntry] = []

    async def create(specs: list[RoleSpec]) -> MockConfigEntry:
        entry = make_entry(
            kamailio, [(role, ext, password_for(ext)) for role, ext, _ in specs]
        )
        for (_role, ext, options), subentry in zip(
            specs, list(entry.subentries.values()), strict=True
        ):
            assert subentry.unique_id == ext
            hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, **options}
            )
        entries.append(entry)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        for role, ext, _ in specs:
            await async_wait_for_state(
                hass, f"sensor.{entity_prefix(role, ext)}_registration", "successful"
            )
        return entry

    try:
        yield create
    finally:
        for entry in entries:
            if entry.state is ConfigEntryState.LOADED:
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_block_till_done()
        await hass.async_add_executor_job(shutil.rmtree, folder)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition that real SIP traffic makes true, for at most 15 s."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
