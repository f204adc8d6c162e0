"""A worker that dies and restarts is logged once, not once per extension.

Found by trying the product as a user: killing the worker logged the engine's
"went away; restarting it" and then "Extension N is not registered: unregistered
(None SIP worker restarting)" for every extension, a burst of warnings (one per
extension, up to a hundred per worker) with a "None" in each. The worker is real,
its extensions register with a real Kamailio.
"""

import logging
import os
import signal

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .helpers import async_wait_for_state
from .roles import until

REGISTRATIONS = ("sensor.page_2001_registration", "sensor.ring_2002_registration")


async def test_worker_restart_is_one_warning(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """The extensions go unregistered and back without a warning of their own."""
    for entity_id in REGISTRATIONS:
        await async_wait_for_state(hass, entity_id, "successful")
    engine = loaded_entry.runtime_data.engine
    (worker,) = engine.workers()
    assert worker.pid is not None
    caplog.clear()
    caplog.set_level(logging.INFO, logger="custom_components.sip_endpoint")

    os.kill(worker.pid, signal.SIGKILL)
    await until(lambda: engine.workers()[0].pid not in (None, worker.pid), "a restart")
    for entity_id in REGISTRATIONS:
        await async_wait_for_state(hass, entity_id, "successful")

    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.sip_endpoint")
        and record.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1
    assert "went away" in warnings[0]
    assert not any("None" in record.getMessage() for record in caplog.records)
