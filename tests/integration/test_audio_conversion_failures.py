"""An ffmpeg that cannot start or never finishes fails the page cleanly."""

from collections.abc import Callable
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.calls import call_audio
from custom_components.sip_endpoint.calls.sounds import audio_dir
from custom_components.sip_endpoint.const import DOMAIN, ExtensionRole
from tests.sipbed.audio import write_tone
from tests.sipbed.kamailio import Kamailio

from .devices import entry_device
from .roles import until


async def _page_with(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    tmp_path: Path,
    ffmpeg_bin: Path,
) -> HomeAssistantError:
    """Set up with `ffmpeg_bin` as ffmpeg, page a local file, return the error."""
    assert await async_setup_component(
        hass, "ffmpeg", {"ffmpeg": {"ffmpeg_bin": str(ffmpeg_bin)}}
    )
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    media = await hass.async_add_executor_job(
        write_tone, tmp_path / "announce.wav", 700.0, 0.5
    )
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
    leftovers = await hass.async_add_executor_job(
        lambda: list(audio_dir(hass).glob("call-*.wav"))
    )
    assert leftovers == []
    await hass.config_entries.async_unload(entry.entry_id)
    return caught.value


async def test_missing_ffmpeg(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    tmp_path: Path,
) -> None:
    """An ffmpeg binary that does not exist is a translated conversion error."""
    error = await _page_with(
        hass, kamailio, make_entry, tmp_path, tmp_path / "no-such-ffmpeg"
    )
    assert error.translation_key == "audio_conversion_failed"


async def test_ffmpeg_that_never_finishes_is_killed(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A conversion past its time limit fails, and the ffmpeg process is ended."""
    monkeypatch.setattr(call_audio, "FFMPEG_TIMEOUT", 0.5)
    pid_file = tmp_path / "ffmpeg.pid"
    stuck = tmp_path / "stuck-ffmpeg"
    stuck.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "-version" ] && echo "ffmpeg version 6.0" && exit 0\n'
        f'echo $$ > "{pid_file}"\nexec sleep 60\n'
    )
    stuck.chmod(0o755)
    error = await _page_with(hass, kamailio, make_entry, tmp_path, stuck)
    assert error.translation_key == "audio_conversion_failed"
    pid = int(pid_file.read_text())
    await until(lambda: not Path(f"/proc/{pid}").exists(), "ffmpeg to be gone")
