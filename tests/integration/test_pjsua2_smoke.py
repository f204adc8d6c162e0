"""The pjsua2 engine through Home Assistant: a smoke run of the integration suite.

The integration suite runs on the built-in engine. These tests are the suite's own,
imported unchanged (same assertions), and run here once more with the entry's engine
option set to pjsua2 and its worker interpreter.
"""

from pathlib import Path

from homeassistant.core import HomeAssistant
import pytest

from custom_components.sip_endpoint.const import CONF_ENGINE, CONF_WORKER_PYTHON, DOMAIN
from tests.sipbed.kamailio import Kamailio

from .test_alert import test_call_starts_and_call_to_cancel_stops_the_alert
from .test_page import test_live_page_streams_the_callers_voice
from .test_ring import test_ringtone_plays_until_the_caller_cancels

__all__ = [
    "test_call_starts_and_call_to_cancel_stops_the_alert",
    "test_live_page_streams_the_callers_voice",
    "test_ringtone_plays_until_the_caller_cancels",
]


@pytest.fixture
def entry_options(
    entry_options: dict[str, object], worker_python: Path
) -> dict[str, object]:
    """Return the suite's options on the pjsua2 engine."""
    return {
        **entry_options,
        CONF_ENGINE: "pjsua2",
        CONF_WORKER_PYTHON: str(worker_python),
    }


async def test_the_workers_run_pjsua2(
    hass: HomeAssistant, loaded_entry: object, kamailio: Kamailio
) -> None:
    """The entry's workers really are pjsua2 workers (not the built-in engine)."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    workers = entry.runtime_data.engine.workers()
    assert workers
    assert {worker.engine for worker in workers} == {"pjsua2"}
