"""While the SIP worker is down and waiting to restart, requests fail cleanly."""

import os
from pathlib import Path
import signal

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.calls.sounds import audio_dir
from custom_components.sip_endpoint.const import DOMAIN
from custom_components.sip_endpoint.engine import sip_engine
from tests.sipbed.audio import write_tone

from .devices import entry_device
from .helpers import async_wait_for_state
from .roles import until

REGISTRATION = "sensor.page_2001_registration"


@pytest.fixture
def slow_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a crashed worker down for the whole test (the unload ends the wait)."""
    monkeypatch.setattr(sip_engine, "RESTART_DELAY_MIN", 600.0)


async def test_register_again_while_the_worker_restarts(
    hass: HomeAssistant, slow_restart: None, loaded_entry: MockConfigEntry
) -> None:
    """The button raises a translated error instead of failing silently."""
    await async_wait_for_state(hass, REGISTRATION, "successful")
    engine = loaded_entry.runtime_data.engine
    (worker,) = engine.workers()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    await until(lambda: engine.workers()[0].pid is None, "the worker to be down")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            "button",
            "press",
            {"entity_id": "button.page_2001_register_again"},
            blocking=True,
        )
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == "re_register_failed"
    assert caught.value.translation_placeholders == {"extension": "2001"}


async def test_page_action_while_the_worker_restarts(
    hass: HomeAssistant,
    slow_restart: None,
    loaded_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """The page action fails with a translated error and leaves no converted file."""
    await async_wait_for_state(hass, REGISTRATION, "successful")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    media = await hass.async_add_executor_job(
        write_tone, tmp_path / "announce.wav", 700.0, 0.5
    )
    engine = loaded_entry.runtime_data.engine
    (worker,) = engine.workers()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    await until(lambda: engine.workers()[0].pid is None, "the worker to be down")
    device = entry_device(hass, "subentry_2001")
    assert device is not None
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "page",
            {"device_id": device.id, "target": "9001", "media": str(media)},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "call_failed"
    assert str(caught.value) == (
        "The call to 9001 could not be made: SIP worker 0 is not running"
    )
    leftovers = await hass.async_add_executor_job(
        lambda: list(audio_dir(hass).glob("call-*.wav"))
    )
    assert leftovers == []
