"""A ringtone or alert audio given as a media source ID is looked up by the form.

Found by trying the product as a user: a typo in the media source ID was stored, and
the speaker stayed silent when a call came in (a warning in the log). The extension
step registers through a real Kamailio with a real worker; the options step looks
the media up in Home Assistant's media sources.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import (
    CONF_ALERT_DURATION,
    CONF_ALERT_MEDIA,
    CONF_ANSWER_INBOUND_CALL,
    CONF_EXTENSION,
    CONF_MEDIA_PLAYERS,
    CONF_RINGTONE,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from tests.sipbed.kamailio import Kamailio
from tests.sipbed.users import password_for

from .flow_helpers import flow_translations_checked


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


@pytest.fixture
async def media_folder(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Give Home Assistant a local media folder with one sound in it."""
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "doorbell.mp3").write_bytes(b"ID3")
    hass.config.media_dirs = {"local": str(folder)}
    assert await async_setup_component(hass, "media_source", {})
    return folder


async def options_step(
    hass: HomeAssistant, entry: MockConfigEntry, role: ExtensionRole, extension: str
) -> str:
    """Add an extension of `role` up to its options step; return the flow's id."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TYPE_EXTENSION), context={"source": SOURCE_USER}
    )
    flow_id = str(result["flow_id"])
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {"next_step_id": f"add_{role.value}"}
    )
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {CONF_EXTENSION: extension, "password": password_for(extension)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == role.value
    return flow_id


@pytest.mark.usefixtures("media_folder")
@pytest.mark.parametrize(
    "ringtone",
    [
        "media-source://no_such_source/doorbell.mp3",
        "media-source://media_source/local/doorbel.mp3",
        "media-source://media_source/elsewhere/doorbell.mp3",
    ],
)
async def test_ringtone_that_is_not_found_is_refused(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    ringtone: str,
) -> None:
    """An unknown source, a missing file or folder: the field says so, nothing is added."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", password_for("2001"))])
    flow_id = await options_step(hass, entry, ExtensionRole.RING, "2002")
    options: dict[str, Any] = {
        CONF_MEDIA_PLAYERS: ["media_player.hall"],
        CONF_RINGTONE: ringtone,
    }
    result = await hass.config_entries.subentries.async_configure(flow_id, options)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_RINGTONE: "media_not_found"}
    assert [s.unique_id for s in entry.subentries.values()] == ["2001"]

    options[CONF_RINGTONE] = "media-source://media_source/local/doorbell.mp3"
    result = await hass.config_entries.subentries.async_configure(flow_id, options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (ring,) = [s for s in entry.subentries.values() if s.unique_id == "2002"]
    assert ring.data[CONF_RINGTONE] == "media-source://media_source/local/doorbell.mp3"


@pytest.mark.usefixtures("media_folder")
@pytest.mark.parametrize(
    ("alert_media", "error"),
    [
        (
            "media-source://media_source/local/alarm.mp3",
            {CONF_ALERT_MEDIA: "media_not_found"},
        ),
        ("media-source://media_source/local/doorbell.mp3", None),
        ("https://example.com/alarm.mp3", None),  # played as given
    ],
)
async def test_alert_media_is_looked_up(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    alert_media: str,
    error: dict[str, str] | None,
) -> None:
    """An emergency alert's audio that does not exist is refused before it is needed."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", password_for("2001"))])
    flow_id = await options_step(hass, entry, ExtensionRole.EMERGENCY_ALERT, "2010")
    result = await hass.config_entries.subentries.async_configure(
        flow_id,
        {
            CONF_MEDIA_PLAYERS: ["media_player.hall"],
            CONF_ALERT_MEDIA: alert_media,
            CONF_ALERT_DURATION: 30,
            CONF_ANSWER_INBOUND_CALL: False,
        },
    )
    if error is None:
        assert result["type"] is FlowResultType.CREATE_ENTRY
    else:
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == error
