"""The config flow, reconfigure and reauth, through real Kamailio and real workers."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_DURATION,
    CONF_ANSWER_INBOUND_CALL,
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_CANCELS,
    CONF_CHIME,
    CONF_EXTENSION,
    CONF_MAX_DURATION,
    CONF_MEDIA_PLAYERS,
    CONF_OUTBOUND_PROXY,
    CONF_PAGE_MODE,
    CONF_PORT,
    CONF_RINGTONE,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TLS_VERIFY,
    CONF_TRANSPORT,
    CONF_VOLUME,
    CONF_WORKER_PYTHON,
    DOMAIN,
    REAUTH_SUBENTRY_ID,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from custom_components.sip_endpoint.flow_schemas import (
    ADVANCED_SECTION,
    ADVANCED_SETUP_FIELDS,
)
from tests.sipbed.kamailio import Kamailio, KamailioFactory
from tests.sipbed.netutil import free_tcp_port

from .flow_helpers import flow_translations_checked, form_fields, placeholders
from .helpers import async_wait_for_state


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


MEDIA_PLAYERS = ["media_player.hall", "media_player.kitchen"]
PAGE_REGISTRATION = "sensor.page_2001_registration"

ROLE_OPTIONS: dict[ExtensionRole, dict[str, Any]] = {
    ExtensionRole.PAGE: {
        CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
        CONF_PAGE_MODE: "record_then_play",
        CONF_MAX_DURATION: 120,
        CONF_VOLUME: 70,
        CONF_CHIME: False,
    },
    ExtensionRole.RING: {
        CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
        CONF_RINGTONE: "media-source://media_source/local/bell.mp3",
    },
    ExtensionRole.EMERGENCY_ALERT: {
        CONF_MEDIA_PLAYERS: MEDIA_PLAYERS,
        CONF_ALERT_DURATION: 0,
        CONF_ANSWER_INBOUND_CALL: True,
        CONF_ACCESS_CODE: "1234",
    },
    ExtensionRole.CALL_TO_CANCEL: {CONF_CANCELS: []},
}


def server_input(host: str, port: int | None, transport: str = "udp") -> dict[str, Any]:
    """Return the server fields of the user and reconfigure steps."""
    fields: dict[str, Any] = {CONF_SERVER: host, CONF_TRANSPORT: transport}
    if port is not None:
        fields[CONF_PORT] = port
    return fields


def user_input(
    kamailio: Kamailio | None,
    worker_python: Path,
    *,
    role: ExtensionRole = ExtensionRole.PAGE,
    extension: str = "2001",
    password: str | None = None,
    auth_id: str | None = None,
    transport: str = "udp",
    host: str = "127.0.0.1",
    port: int | None = None,
) -> dict[str, Any]:
    """Return a user step input registering `extension` at a test Kamailio."""
    fields = server_input(
        host, port if kamailio is None else kamailio.port, transport
    ) | {
        CONF_ROLE: role,
        CONF_EXTENSION: extension,
        CONF_PASSWORD: password if password is not None else f"pw-{extension}",
        ADVANCED_SECTION: {
            CONF_BIND_HOST: "127.0.0.1",
            CONF_WORKER_PYTHON: str(worker_python),
        },
    }
    if auth_id is not None:
        fields[CONF_AUTH_ID] = auth_id
    return fields


def changed(fields: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return user step input with `changes`, advanced fields inside their section."""
    advanced = {
        key: value for key, value in changes.items() if key in ADVANCED_SETUP_FIELDS
    }
    others = {
        key: value for key, value in changes.items() if key not in ADVANCED_SETUP_FIELDS
    }
    return fields | others | {ADVANCED_SECTION: fields[ADVANCED_SECTION] | advanced}


async def start_user_flow(hass: HomeAssistant) -> str:
    """Start the user flow."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return result["flow_id"]


class Sip500Responder(asyncio.DatagramProtocol):
    """A SIP server that answers every request with 500 Server Internal Error."""

    def __init__(self) -> None:
        """Start without a transport."""
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Answer a request with 500, copying the headers a response must carry."""
        lines = data.decode(errors="replace").split("\r\n")
        if not lines[0].endswith("SIP/2.0"):
            return
        self.requests += 1
        copied = [
            line
            for line in lines[1:]
            if line.split(":", 1)[0].strip().lower()
            in {"via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"}
        ]
        response = "\r\n".join(
            ["SIP/2.0 500 Server Internal Error", *copied, "Content-Length: 0", "", ""]
        )
        assert self.transport is not None
        self.transport.sendto(response.encode(), addr)


@pytest.fixture
async def sip_500_server(
    socket_enabled: None,
) -> AsyncIterator[tuple[int, Sip500Responder]]:
    """Run a UDP SIP server on loopback that answers 500 to everything."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        Sip500Responder, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    yield port, protocol
    transport.close()


async def test_user_form_collapses_advanced_fields(hass: HomeAssistant) -> None:
    """The bind address, interpreter and TLS fields are in a collapsed section."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {}
    fields = form_fields(result)
    names = {str(marker) for marker in fields}
    assert {CONF_SERVER, CONF_PORT, CONF_TRANSPORT, CONF_OUTBOUND_PROXY} <= names
    assert {CONF_ROLE, CONF_EXTENSION, CONF_AUTH_ID, CONF_PASSWORD} <= names
    assert not names & set(ADVANCED_SETUP_FIELDS)
    advanced = fields[ADVANCED_SECTION]
    assert isinstance(advanced, section)
    assert advanced.options == {"collapsed": True}
    assert {str(marker) for marker in advanced.schema.schema} == set(
        ADVANCED_SETUP_FIELDS
    )


@pytest.mark.parametrize("role", list(ExtensionRole))
async def test_user_flow_creates_entry_with_first_extension(
    hass: HomeAssistant,
    kamailio: Kamailio,
    worker_python: Path,
    role: ExtensionRole,
) -> None:
    """A working extension leads to its role's options, then an entry that loads."""
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(kamailio, worker_python, role=role, extension="2001")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == role.value
    assert placeholders(result) == {CONF_EXTENSION: "2001"}

    result = await hass.config_entries.flow.async_configure(flow_id, ROLE_OPTIONS[role])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "127.0.0.1"
    entry = result["result"]
    assert entry.unique_id == f"127.0.0.1:{kamailio.port}"
    assert entry.data == {
        CONF_SERVER: "127.0.0.1",
        CONF_PORT: kamailio.port,
        CONF_TRANSPORT: "udp",
    }
    assert entry.options == {
        CONF_BIND_HOST: "127.0.0.1",
        CONF_WORKER_PYTHON: str(worker_python),
        CONF_TLS_VERIFY: True,
    }
    (subentry,) = entry.subentries.values()
    assert subentry.subentry_type == SUBENTRY_TYPE_EXTENSION
    assert subentry.unique_id == "2001"
    assert subentry.title.endswith(" 2001")
    expected = {
        CONF_ROLE: role,
        CONF_EXTENSION: "2001",
        CONF_AUTH_ID: "2001",
        CONF_PASSWORD: "pw-2001",
    } | ROLE_OPTIONS[role]
    if role is ExtensionRole.PAGE:
        assert subentry.title == "Page 2001"
    assert dict(subentry.data) == expected

    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("wrong_password", ["rechallenge", "forbidden"])
async def test_user_flow_wrong_password_then_fixed(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    worker_python: Path,
    wrong_password: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """401 and 403 answers show the rejected advice; correct credentials then work."""
    caplog.set_level(logging.DEBUG)
    kamailio = kamailio_factory(wrong_password=wrong_password)  # type: ignore[arg-type]
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(kamailio, worker_python, password="Wr0ng-s3cret")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "rejected_by_server"}
    expected_code = "403" if wrong_password == "forbidden" else "401"
    assert placeholders(result)["code"] == expected_code
    assert placeholders(result)["reason"]

    result = await hass.config_entries.flow.async_configure(
        flow_id,
        user_input(kamailio, worker_python, role=ExtensionRole.RING, auth_id="2001"),
    )
    assert result["step_id"] == "ring"
    result = await hass.config_entries.flow.async_configure(
        flow_id, ROLE_OPTIONS[ExtensionRole.RING]
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(result["result"].entry_id)
    await hass.async_block_till_done()
    assert "Wr0ng-s3cret" not in caplog.text
    assert "pw-2001" not in caplog.text


async def test_user_flow_unknown_extension(
    hass: HomeAssistant, kamailio_factory: KamailioFactory, worker_python: Path
) -> None:
    """A 404 answer shows that the server does not know the extension."""
    kamailio = kamailio_factory(unknown_user="not_found")
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(kamailio, worker_python, extension="3999")
    )
    assert result["errors"] == {"base": "not_found"}
    assert placeholders(result)["code"] == "404"


async def test_user_flow_no_reply_from_server(
    hass: HomeAssistant, worker_python: Path, socket_enabled: None
) -> None:
    """A closed TCP port gives the no-reply advice (the stack's local 503)."""
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        user_input(None, worker_python, transport="tcp", port=free_tcp_port()),
    )
    assert result["errors"] == {"base": "no_reply_from_server"}


async def test_user_flow_server_error(
    hass: HomeAssistant,
    worker_python: Path,
    sip_500_server: tuple[int, Sip500Responder],
) -> None:
    """A 500 answer shows the server error advice (check address and port)."""
    port, responder = sip_500_server
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(None, worker_python, port=port)
    )
    assert result["errors"] == {"base": "server_error"}
    assert placeholders(result)["code"] == "500"
    assert responder.requests >= 1


async def test_user_flow_no_worker_python(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path, tmp_path: Path
) -> None:
    """A configured interpreter that does not exist is refused with how to create one."""
    flow_id = await start_user_flow(hass)
    missing = tmp_path / "no-venv" / "bin" / "python"
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        changed(
            user_input(kamailio, worker_python), {CONF_WORKER_PYTHON: str(missing)}
        ),
    )
    assert result["errors"] == {CONF_WORKER_PYTHON: "invalid_worker_python"}
    assert placeholders(result)["venv"] == hass.config.path("sip_endpoint_worker")
    assert placeholders(result)["requirement"] == ("pjsua2-python==2.15.1.post1")


async def test_user_flow_unexpected_error(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path
) -> None:
    """An unexpected failure of the test shows the unknown error (edge case: faked)."""
    flow_id = await start_user_flow(hass)
    with patch(
        "custom_components.sip_endpoint.flow_validation.probe_registration",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            flow_id, user_input(kamailio, worker_python)
        )
    assert result["errors"] == {"base": "unknown"}


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_SERVER: "sip:pbx.example.com"}, {CONF_SERVER: "invalid_host"}),
        ({CONF_SERVER: "pbx.example.com:5060"}, {CONF_SERVER: "invalid_host"}),
        (
            {CONF_OUTBOUND_PROXY: "proxy .example"},
            {CONF_OUTBOUND_PROXY: "invalid_outbound_proxy"},
        ),
        ({CONF_EXTENSION: "20 01"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_EXTENSION: "2001@pbx"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_EXTENSION: "Ä2001"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_AUTH_ID: "user name"}, {CONF_AUTH_ID: "invalid_sip_user"}),
        ({CONF_PASSWORD: ""}, {CONF_PASSWORD: "password_required"}),
        ({CONF_BIND_HOST: "localhost"}, {CONF_BIND_HOST: "invalid_bind_host"}),
    ],
)
async def test_user_flow_invalid_fields(
    hass: HomeAssistant,
    worker_python: Path,
    changes: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Malformed fields are refused before any SIP traffic."""
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, changed(user_input(None, worker_python, port=5060), changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


@pytest.mark.parametrize(
    ("existing", "host", "transport"),
    [
        ("pbx.example.com:5061", "PBX.example.com.", "tls"),
        ("pbx.example.com:5060", "pbx.example.com", "auto"),
        ("[::1]:5060", "::1", "udp"),
    ],
)
async def test_user_flow_server_already_configured(
    hass: HomeAssistant,
    worker_python: Path,
    existing: str,
    host: str,
    transport: str,
) -> None:
    """A server (normalised host, default port per transport) can't be added twice."""
    MockConfigEntry(
        domain=DOMAIN, unique_id=existing, data={CONF_SERVER: host}
    ).add_to_hass(hass)
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(None, worker_python, host=host, transport=transport)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_server_already_in_progress(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path
) -> None:
    """A second flow for a server another flow is setting up aborts."""
    first = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        first, user_input(kamailio, worker_python)
    )
    assert result["step_id"] == "page"
    second = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        second, user_input(kamailio, worker_python, extension="2002")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"
    hass.config_entries.flow.async_abort(first)


@pytest.mark.parametrize(
    ("role", "options", "errors"),
    [
        (
            ExtensionRole.PAGE,
            ROLE_OPTIONS[ExtensionRole.PAGE] | {CONF_MEDIA_PLAYERS: []},
            {CONF_MEDIA_PLAYERS: "no_media_players"},
        ),
        (
            ExtensionRole.EMERGENCY_ALERT,
            ROLE_OPTIONS[ExtensionRole.EMERGENCY_ALERT] | {CONF_ACCESS_CODE: "12a"},
            {CONF_ACCESS_CODE: "invalid_access_code"},
        ),
        (
            ExtensionRole.EMERGENCY_ALERT,
            ROLE_OPTIONS[ExtensionRole.EMERGENCY_ALERT]
            | {CONF_ANSWER_INBOUND_CALL: False},
            {CONF_ACCESS_CODE: "access_code_needs_answer"},
        ),
    ],
)
async def test_user_flow_invalid_role_options(
    hass: HomeAssistant,
    *,
    kamailio: Kamailio,
    worker_python: Path,
    role: ExtensionRole,
    options: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """Role options are checked; the form comes back with the error."""
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(kamailio, worker_python, role=role)
    )
    assert result["step_id"] == role.value
    result = await hass.config_entries.flow.async_configure(flow_id, options)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == role.value
    assert result["errors"] == errors


# --- reconfigure ------------------------------------------------------------------


async def test_reconfigure_moves_to_another_server(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The new address is tested with the first extension and becomes the unique ID."""
    old = kamailio_factory()
    new = kamailio_factory()
    entry = make_entry(old, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("127.0.0.1", new.port, "tcp")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == f"127.0.0.1:{new.port}"
    assert entry.title == "127.0.0.1"
    assert dict(entry.data) == server_input("127.0.0.1", new.port, "tcp")


async def test_reconfigure_reloads_a_loaded_entry_onto_the_new_server(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    loaded_entry: MockConfigEntry,
) -> None:
    """The update listener reloads the entry; its extensions register at the new server."""
    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    new = kamailio_factory()
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("127.0.0.1", new.port, "udp")
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    state = await async_wait_for_state(
        hass,
        PAGE_REGISTRATION,
        lambda state: (
            state.state == "successful"
            and str(new.port) in str(state.attributes.get("registrar"))
        ),
    )
    assert state.attributes["sip_code"] == 200


async def test_reconfigure_rejects_unreachable_server(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """A server that does not answer keeps the old settings and shows the advice."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    old_data = dict(entry.data)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("127.0.0.1", free_tcp_port(), "tcp")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_reply_from_server"}
    assert dict(entry.data) == old_data

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("bad host", None)
    )
    assert result["errors"] == {CONF_SERVER: "invalid_host"}


async def test_reconfigure_to_a_configured_server_aborts(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """Moving an entry onto a server another entry has is refused."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    MockConfigEntry(
        domain=DOMAIN,
        unique_id="pbx.example.com:5060",
        data={CONF_SERVER: "pbx.example.com"},
    ).add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("pbx.example.com", 5060)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.unique_id == f"{kamailio.host}:{kamailio.port}"


async def test_reconfigure_without_extensions_skips_the_test(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """With no extension left there is nothing to register: the settings are saved."""
    entry = make_entry(kamailio, [])
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        server_input("127.0.0.1", kamailio.port, "udp")
        | {CONF_OUTBOUND_PROXY: "127.0.0.1:5070"},
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_OUTBOUND_PROXY] == "127.0.0.1:5070"
    assert entry.unique_id == f"127.0.0.1:{kamailio.port}"


# --- reauth -----------------------------------------------------------------------


async def test_reauth_renews_the_rejected_extension(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """Reauth names the extension, refuses wrong credentials and stores right ones."""
    kamailio = kamailio_factory(wrong_password="forbidden")
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "pw-2001"),
            (ExtensionRole.RING, "2002", "stale"),
        ],
    )
    page_id, ring_id = list(entry.subentries)
    result = await entry.start_reauth_flow(hass, data={REAUTH_SUBENTRY_ID: ring_id})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert placeholders(result)[CONF_EXTENSION] == "2002"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AUTH_ID: "2002", CONF_PASSWORD: "still-wrong"}
    )
    assert result["errors"] == {"base": "rejected_by_server"}
    assert placeholders(result)["code"] == "403"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AUTH_ID: "2002 x", CONF_PASSWORD: "pw-2002"}
    )
    assert result["errors"] == {CONF_AUTH_ID: "invalid_sip_user"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AUTH_ID: "2002", CONF_PASSWORD: "pw-2002"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.subentries[ring_id].data[CONF_PASSWORD] == "pw-2002"
    assert entry.subentries[page_id].data[CONF_PASSWORD] == "pw-2001"


@pytest.mark.parametrize("data", [{}, {REAUTH_SUBENTRY_ID: "gone"}])
async def test_reauth_for_an_unknown_extension_aborts(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    data: dict[str, str],
) -> None:
    """Reauth without the subentry id, or for a removed extension, aborts."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    result = await entry.start_reauth_flow(hass, data=data)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "extension_not_found"
