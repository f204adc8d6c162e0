"""The extension subentry flows: add and reconfigure, through real Kamailio and workers."""

from collections.abc import Callable, Iterator
import json
from types import MappingProxyType, SimpleNamespace
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigSubentry,
)
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_DURATION,
    CONF_ALERT_MEDIA,
    CONF_ALERT_TTS_MESSAGE,
    CONF_ANSWER_INBOUND_CALL,
    CONF_AUTH_ID,
    CONF_CANCELS,
    CONF_CHIME,
    CONF_EXTENSION,
    CONF_MAX_DURATION,
    CONF_MEDIA_PLAYERS,
    CONF_PAGE_MODE,
    CONF_RINGTONE,
    CONF_ROLE,
    CONF_VOLUME,
    MAX_PAGE_EXTENSIONS,
    MAX_RING_EXTENSIONS,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from tests.sipbed.kamailio import Kamailio, KamailioFactory
from tests.sipbed.netutil import free_tcp_port

from .flow_helpers import (
    TRANSLATIONS_PATH,
    flow_translations_checked,
    form_fields,
    placeholders,
    start_subentry_reconfigure,
    suggested_values,
)


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


MEDIA_PLAYERS = ["media_player.hall"]
PAGE_OPTIONS = {
    CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
    CONF_PAGE_MODE: "live",
    CONF_MAX_DURATION: 60,
    CONF_VOLUME: 50,
    CONF_CHIME: True,
}
ALERT_OPTIONS = {
    CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
    CONF_ALERT_MEDIA: "/media/alarm.wav",
    CONF_ALERT_TTS_MESSAGE: "Please leave the building",
    CONF_ALERT_DURATION: 300,
    CONF_ANSWER_INBOUND_CALL: False,
}


def credentials(
    extension: str, *, password: str | None = None, auth_id: str | None = None
) -> dict[str, Any]:
    """Return a credentials form input."""
    fields: dict[str, Any] = {
        CONF_EXTENSION: extension,
        CONF_PASSWORD: password if password is not None else f"pw-{extension}",
    }
    if auth_id is not None:
        fields[CONF_AUTH_ID] = auth_id
    return fields


async def choose_role(
    hass: HomeAssistant, entry: MockConfigEntry, role: ExtensionRole
) -> dict[str, Any]:
    """Start the "Add extension" flow and pick `role` in its menu."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TYPE_EXTENSION), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == [f"add_{choice.value}" for choice in ExtensionRole]
    return dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"next_step_id": f"add_{role.value}"}
        )
    )


async def start_add_extension(
    hass: HomeAssistant, entry: MockConfigEntry, role: ExtensionRole
) -> str:
    """Start the "Add extension" flow, choose the role, return the flow's id."""
    result = await choose_role(hass, entry, role)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "extension"
    return str(result["flow_id"])


async def test_add_extension(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """An extension that registers is added with its role's options."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    flow_id = await start_add_extension(hass, entry, ExtensionRole.EMERGENCY_ALERT)
    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2010", auth_id="2010")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "emergency_alert"
    result = await hass.config_entries.subentries.async_configure(
        flow_id, ALERT_OPTIONS
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Emergency alert 2010"
    (subentry,) = [s for s in entry.subentries.values() if s.unique_id == "2010"]
    assert subentry.title == "Emergency alert 2010"
    assert (
        dict(subentry.data)
        == {
            CONF_ROLE: ExtensionRole.EMERGENCY_ALERT,
            CONF_EXTENSION: "2010",
            CONF_AUTH_ID: "2010",
            CONF_PASSWORD: "pw-2010",
        }
        | ALERT_OPTIONS
    )


async def test_add_call_to_cancel_lists_alert_extensions(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """A call-to-cancel extension chooses among the server's alert extensions."""
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "pw-2001"),
            (ExtensionRole.EMERGENCY_ALERT, "2003", "pw-2003"),
        ],
    )
    alert_id = next(
        sid for sid, sub in entry.subentries.items() if sub.unique_id == "2003"
    )
    flow_id = await start_add_extension(hass, entry, ExtensionRole.CALL_TO_CANCEL)
    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2004")
    )
    assert result["step_id"] == "call_to_cancel"
    selector = form_fields(result)[CONF_CANCELS]
    assert [option["value"] for option in selector.config["options"]] == [alert_id]
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {CONF_CANCELS: [alert_id]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    added = next(s for s in entry.subentries.values() if s.unique_id == "2004")
    assert added.data[CONF_CANCELS] == [alert_id]
    assert added.title == "Call-to-cancel 2004"


@pytest.mark.parametrize(
    ("kamailio_options", "user", "errors", "code"),
    [
        (
            {"wrong_password": "forbidden"},
            credentials("2011", password="x"),
            {CONF_PASSWORD: "rejected_by_server"},
            "403",
        ),
        (
            {},
            credentials("2011", password="x"),
            {CONF_PASSWORD: "rejected_by_server"},
            "401",
        ),
        (
            {"unknown_user": "not_found"},
            credentials("3999"),
            {CONF_EXTENSION: "not_found"},
            "404",
        ),
        (
            {},
            credentials("2012", auth_id="2013", password="pw-2013"),
            {CONF_PASSWORD: "rejected_by_server"},
            "403",
        ),
    ],
)
async def test_add_extension_refused_by_server(
    hass: HomeAssistant,
    *,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    kamailio_options: dict[str, Any],
    user: dict[str, Any],
    errors: dict[str, str],
    code: str,
) -> None:
    """The server's refusal is shown next to the field to fix; nothing is added."""
    kamailio = kamailio_factory(**kamailio_options)
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    flow_id = await start_add_extension(hass, entry, ExtensionRole.PAGE)
    result = await hass.config_entries.subentries.async_configure(flow_id, user)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "extension"
    assert result["errors"] == errors
    assert placeholders(result)["code"] == code
    assert len(entry.subentries) == 1


async def test_add_extension_to_a_server_whose_port_is_closed(
    socket_enabled: None,
    hass: HomeAssistant,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """Nothing listens on the server's port: no reply, at once, without a REGISTER."""
    closed = SimpleNamespace(host="127.0.0.1", port=free_tcp_port())
    entry = make_entry(closed, [], transport="tcp")
    flow_id = await start_add_extension(hass, entry, ExtensionRole.PAGE)
    with patch(
        "custom_components.sip_endpoint.flow_validation.probe_registration"
    ) as probe:
        result = await hass.config_entries.subentries.async_configure(
            flow_id, credentials("2001")
        )
    assert result["errors"] == {"base": "no_reply_from_server"}
    assert placeholders(result)["transport"] == "TCP"
    probe.assert_not_called()


async def test_add_extension_invalid_fields(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """A malformed extension is refused before any SIP traffic."""
    entry = make_entry(kamailio, [])
    flow_id = await start_add_extension(hass, entry, ExtensionRole.PAGE)
    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("20@01")
    )
    assert result["errors"] == {CONF_EXTENSION: "invalid_sip_user"}


async def test_add_extension_twice_aborts(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """The same extension can't be added twice to a server."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    flow_id = await start_add_extension(hass, entry, ExtensionRole.RING)
    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2001")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("role", "limit", "reason"),
    [
        (ExtensionRole.PAGE, MAX_PAGE_EXTENSIONS, "max_page_extensions"),
        (ExtensionRole.RING, MAX_RING_EXTENSIONS, "max_ring_extensions"),
    ],
)
async def test_add_extension_past_the_role_limit_aborts(
    hass: HomeAssistant,
    *,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    role: ExtensionRole,
    limit: int,
    reason: str,
) -> None:
    """At most 50 page and 10 ring extensions; other roles are still accepted."""
    entry = make_entry(
        kamailio, [(role, str(2000 + index), "unused") for index in range(limit)]
    )
    # Refused as soon as the role is chosen, before any credentials are asked.
    result = await choose_role(hass, entry, role)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason

    other = ExtensionRole.RING if role is ExtensionRole.PAGE else ExtensionRole.PAGE
    flow_id = await start_add_extension(hass, entry, other)
    added = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2099")
    )
    assert added["type"] is FlowResultType.FORM
    assert added["step_id"] == other.value


# --- reconfigure ------------------------------------------------------------------


def _subentry_id(entry: MockConfigEntry, extension: str) -> str:
    subentry_ids: list[str] = [
        sid for sid, sub in entry.subentries.items() if sub.unique_id == extension
    ]
    return subentry_ids[0]


async def test_reconfigure_options_only_keeps_credentials(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """Unchanged credentials are not tested again; options and password are kept."""
    # A stopped server: any registration test would fail, so none may happen.
    kamailio = kamailio_factory()
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    kamailio.stop()
    subentry_id = _subentry_id(entry, "2001")
    result = await start_subentry_reconfigure(hass, entry, subentry_id)
    assert result["step_id"] == "reconfigure"
    # The authentication ID is the extension: left empty, as its help says.
    suggested = suggested_values(result)
    assert suggested == {CONF_EXTENSION: "2001"}
    # The form says which role the next step's options belong to.
    assert placeholders(result)["role"] == "page"
    assert placeholders(result)[CONF_EXTENSION] == "2001"

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_EXTENSION: "2001", CONF_AUTH_ID: "2001"}
    )
    assert result["step_id"] == "page"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], PAGE_OPTIONS | {CONF_VOLUME: 90}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries[subentry_id].data
    assert data[CONF_PASSWORD] == "pw-2001"
    assert data[CONF_VOLUME] == 90


async def test_reconfigure_new_credentials_are_tested(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """Changed credentials register once; a refusal keeps the old ones."""
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.RING, "2001", "stale"),
            (ExtensionRole.PAGE, "2002", "pw-2002"),
        ],
    )
    subentry_id = _subentry_id(entry, "2001")
    result = await start_subentry_reconfigure(hass, entry, subentry_id)
    flow_id = result["flow_id"]
    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2001", password="still-wrong")
    )
    assert result["errors"] == {CONF_PASSWORD: "rejected_by_server"}
    assert entry.subentries[subentry_id].data[CONF_PASSWORD] == "stale"

    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2002")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    result = await start_subentry_reconfigure(hass, entry, subentry_id)
    flow_id = result["flow_id"]
    result = await hass.config_entries.subentries.async_configure(
        flow_id, credentials("2005")
    )
    assert result["step_id"] == "ring"
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {CONF_MEDIA_PLAYERS: []}
    )
    assert result["errors"] == {CONF_MEDIA_PLAYERS: "no_media_players"}
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {CONF_MEDIA_PLAYERS: MEDIA_PLAYERS, CONF_RINGTONE: "/media/bell.wav"}
    )
    assert result["reason"] == "reconfigure_successful"
    subentry = entry.subentries[subentry_id]
    assert subentry.unique_id == "2005"
    assert subentry.title == "Ring 2005"
    assert dict(subentry.data) == {
        CONF_ROLE: ExtensionRole.RING,
        CONF_EXTENSION: "2005",
        CONF_AUTH_ID: "2005",
        CONF_PASSWORD: "pw-2005",
        CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
        CONF_RINGTONE: "/media/bell.wav",
    }


async def test_reconfigure_invalid_credentials(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """A malformed auth ID is refused without SIP traffic; the form comes back."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    result = await start_subentry_reconfigure(hass, entry, _subentry_id(entry, "2001"))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_EXTENSION: "2001", CONF_AUTH_ID: "a b"}
    )
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {CONF_AUTH_ID: "invalid_sip_user"}


def alert_subentry(extension: str) -> ConfigSubentry:
    """Return an emergency alert subentry with an access code."""
    return ConfigSubentry(
        data=MappingProxyType(
            {
                CONF_ROLE: ExtensionRole.EMERGENCY_ALERT,
                CONF_EXTENSION: extension,
                CONF_AUTH_ID: extension,
                CONF_PASSWORD: f"pw-{extension}",
            }
            | ALERT_OPTIONS
            | {CONF_ANSWER_INBOUND_CALL: True, CONF_ACCESS_CODE: "99"}
        ),
        subentry_type=SUBENTRY_TYPE_EXTENSION,
        title=f"Emergency alert {extension}",
        unique_id=extension,
    )


async def test_reconfigure_clears_optional_options(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """Options the user empties are removed, not kept from before."""
    entry = make_entry(kamailio, [])
    hass.config_entries.async_add_subentry(
        entry,
        alert_subentry("2007"),
    )
    subentry_id = _subentry_id(entry, "2007")
    result = await start_subentry_reconfigure(hass, entry, subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_EXTENSION: "2007", CONF_AUTH_ID: "2007"}
    )
    assert result["step_id"] == "emergency_alert"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
            CONF_ALERT_DURATION: 0,
            CONF_ANSWER_INBOUND_CALL: False,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries[subentry_id].data
    assert CONF_ACCESS_CODE not in data
    assert CONF_ALERT_MEDIA not in data
    assert data[CONF_ALERT_DURATION] == 0


async def test_reconfigure_shows_an_authentication_id_of_its_own(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """An authentication ID that differs from the extension is pre-filled."""
    entry = make_entry(kamailio, [])
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_ROLE: ExtensionRole.RING,
                    CONF_EXTENSION: "2008",
                    CONF_AUTH_ID: "user-2008",
                    CONF_PASSWORD: "pw-2008",
                    CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
                }
            ),
            subentry_type=SUBENTRY_TYPE_EXTENSION,
            title="Ring 2008",
            unique_id="2008",
        ),
    )
    result = await start_subentry_reconfigure(hass, entry, _subentry_id(entry, "2008"))
    assert suggested_values(result) == {
        CONF_EXTENSION: "2008",
        CONF_AUTH_ID: "user-2008",
    }
    assert placeholders(result)["role"] == "ring"


def test_configure_texts_say_what_the_flow_changes() -> None:
    """Configure is titled for the extension and says the role cannot change."""
    steps = json.loads(TRANSLATIONS_PATH.read_text())["config_subentries"]["extension"][
        "step"
    ]
    reconfigure = steps["reconfigure"]
    assert "credentials" not in reconfigure["title"].lower()
    assert "{role}" in reconfigure["description"]
    assert "role cannot be changed" in reconfigure["description"]
    assert "delete" in reconfigure["description"]
    assert "role cannot be changed" in steps["user"]["description"]
