"""The config flow, reconfigure and reauth, through real Kamailio and real workers."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

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
from custom_components.sip_endpoint.engine.reachability import (
    REACHABILITY_TIMEOUT,
    Reach,
    ReachabilityCheck,
)
from custom_components.sip_endpoint.flow_schemas import (
    ADVANCED_SECTION,
    ADVANCED_SETUP_FIELDS,
)
from custom_components.sip_endpoint.protocol.payloads import Transport
from tests.sipbed.kamailio import Kamailio, KamailioFactory
from tests.sipbed.netutil import free_tcp_port

from .flow_helpers import (
    TRANSLATIONS_PATH,
    flow_translations_checked,
    form_fields,
    placeholders,
    suggested_values,
)
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
        CONF_RINGTONE: "https://pbx.example/bell.mp3",  # a URL is played as given
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


def server_form(
    kamailio: Kamailio | None,
    worker_python: Path,
    *,
    transport: str = "udp",
    host: str = "127.0.0.1",
    port: int | None = None,
) -> dict[str, Any]:
    """Return a server step input for a test Kamailio (or `host` and `port`)."""
    return server_input(
        host, port if kamailio is None else kamailio.port, transport
    ) | {
        ADVANCED_SECTION: {
            CONF_BIND_HOST: "127.0.0.1",
            CONF_WORKER_PYTHON: str(worker_python),
        },
    }


def credentials(
    extension: str = "2001", *, password: str | None = None, auth_id: str | None = None
) -> dict[str, Any]:
    """Return an extension step input."""
    fields: dict[str, Any] = {
        CONF_EXTENSION: extension,
        CONF_PASSWORD: password if password is not None else f"pw-{extension}",
    }
    if auth_id is not None:
        fields[CONF_AUTH_ID] = auth_id
    return fields


def changed(fields: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return server step input with `changes`, advanced fields inside their section."""
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


async def submit_server(
    hass: HomeAssistant, flow_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Submit the server step; return the role menu it leads to (or the form back)."""
    return dict(await hass.config_entries.flow.async_configure(flow_id, fields))


async def choose_role(
    hass: HomeAssistant, flow_id: str, role: ExtensionRole
) -> dict[str, Any]:
    """Pick a role in the role menu; return the extension form."""
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"next_step_id": f"add_{role.value}"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "extension"
    return dict(result)


async def start_with_server(
    hass: HomeAssistant,
    kamailio: Kamailio,
    worker_python: Path,
    role: ExtensionRole = ExtensionRole.PAGE,
) -> str:
    """Start a flow, pass the server step and the role menu; return the flow id."""
    flow_id = await start_user_flow(hass)
    result = await submit_server(hass, flow_id, server_form(kamailio, worker_python))
    assert result["type"] is FlowResultType.MENU
    await choose_role(hass, flow_id, role)
    return flow_id


class Sip500Responder(asyncio.DatagramProtocol):
    """A SIP server that answers every request with 500 Server Internal Error."""

    def __init__(self) -> None:
        """Start without a transport."""
        self.transport: asyncio.DatagramTransport | None = None
        self.requests: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Answer a request with 500, copying the headers a response must carry."""
        lines = data.decode(errors="replace").split("\r\n")
        if not lines[0].endswith("SIP/2.0"):
            return
        self.requests.append(lines[0].split(" ", 1)[0])
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


class SilentServer(asyncio.DatagramProtocol):
    """A UDP socket that reads requests and never answers (a wrong address)."""

    def __init__(self) -> None:
        """Start with nothing received."""
        self.requests: list[str] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Note the request's method."""
        self.requests.append(data.split(b" ", 1)[0].decode(errors="replace"))


async def _udp_server[P: asyncio.DatagramProtocol](
    protocol: Callable[[], P],
) -> AsyncIterator[tuple[int, P]]:
    """Serve ``protocol`` on a free UDP port on loopback; yield the port and it."""
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        protocol, local_addr=("127.0.0.1", 0)
    )
    yield transport.get_extra_info("sockname")[1], server
    transport.close()


@pytest.fixture
async def sip_500_server(
    socket_enabled: None,
) -> AsyncIterator[tuple[int, Sip500Responder]]:
    """Run a UDP SIP server on loopback that answers 500 to everything."""
    async for served in _udp_server(Sip500Responder):
        yield served


@pytest.fixture
async def silent_server(
    socket_enabled: None,
) -> AsyncIterator[tuple[int, SilentServer]]:
    """Bind a UDP port on loopback that swallows every request."""
    async for served in _udp_server(SilentServer):
        yield served


async def test_server_form_asks_only_for_the_server(hass: HomeAssistant) -> None:
    """The first form: the server, the port pre-filled, advanced fields collapsed."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {}
    fields = form_fields(result)
    names = [str(marker) for marker in fields]
    assert names == [
        CONF_SERVER,
        CONF_TRANSPORT,
        CONF_PORT,
        CONF_OUTBOUND_PROXY,
        ADVANCED_SECTION,
    ]
    assert suggested_values(result) == {CONF_PORT: 5060}
    advanced = fields[ADVANCED_SECTION]
    assert isinstance(advanced, section)
    assert advanced.options == {"collapsed": True}
    assert {str(marker) for marker in advanced.schema.schema} == set(
        ADVANCED_SETUP_FIELDS
    )
    # The local address is empty (every address), as in the options form.
    (bind_host,) = [m for m in advanced.schema.schema if str(m) == CONF_BIND_HOST]
    assert bind_host.default is vol.UNDEFINED


async def test_role_is_chosen_in_a_menu(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path
) -> None:
    """After the server, a menu offers every role; nothing is chosen for the user."""
    flow_id = await start_user_flow(hass)
    result = await submit_server(hass, flow_id, server_form(kamailio, worker_python))
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "role"
    assert result["menu_options"] == [f"add_{role.value}" for role in ExtensionRole]
    assert placeholders(result)[CONF_SERVER] == "127.0.0.1"
    result = await choose_role(hass, flow_id, ExtensionRole.RING)
    assert [str(marker) for marker in form_fields(result)] == [
        CONF_EXTENSION,
        CONF_AUTH_ID,
        CONF_PASSWORD,
    ]
    assert placeholders(result)["role"] == "Ring"
    hass.config_entries.flow.async_abort(flow_id)


@pytest.mark.parametrize("role", list(ExtensionRole))
async def test_user_flow_creates_entry_with_first_extension(
    hass: HomeAssistant,
    kamailio: Kamailio,
    worker_python: Path,
    role: ExtensionRole,
) -> None:
    """A working extension leads to its role's options, then an entry that loads."""
    flow_id = await start_with_server(hass, kamailio, worker_python, role)
    result = await hass.config_entries.flow.async_configure(
        flow_id, credentials("2001")
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
    flow_id = await start_with_server(hass, kamailio, worker_python)
    result = await hass.config_entries.flow.async_configure(
        flow_id, credentials(password="Wr0ng-s3cret")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "extension"
    # Next to the field that most likely needs a change.
    assert result["errors"] == {CONF_PASSWORD: "rejected_by_server"}
    expected_code = "403" if wrong_password == "forbidden" else "401"
    assert placeholders(result)["code"] == expected_code
    assert placeholders(result)["reason"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, credentials(auth_id="2001")
    )
    assert result["step_id"] == "page"
    result = await hass.config_entries.flow.async_configure(
        flow_id, ROLE_OPTIONS[ExtensionRole.PAGE]
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
    """A 404 answer shows, next to the extension, that the server does not know it."""
    kamailio = kamailio_factory(unknown_user="not_found")
    flow_id = await start_with_server(hass, kamailio, worker_python)
    result = await hass.config_entries.flow.async_configure(
        flow_id, credentials("3999")
    )
    assert result["errors"] == {CONF_EXTENSION: "not_found"}
    assert placeholders(result)["code"] == "404"


async def _submit_unprobed(
    hass: HomeAssistant, worker_python: Path, transport: str, port: int
) -> tuple[str, dict[str, Any], MagicMock]:
    """Submit a server form for 127.0.0.1:``port``; the REGISTER probe is a mock.

    Return the flow id, the result and the mock (to check no REGISTER was tried).
    """
    flow_id = await start_user_flow(hass)
    with patch(
        "custom_components.sip_endpoint.flow_validation.probe_registration"
    ) as probe:
        result = await submit_server(
            hass,
            flow_id,
            server_form(None, worker_python, transport=transport, port=port),
        )
    return flow_id, result, probe


@pytest.mark.parametrize(
    ("transport", "shown"), [("tcp", "TCP"), ("udp", "UDP"), ("auto", "UDP")]
)
async def test_closed_port_is_reported_by_the_server_step(
    hass: HomeAssistant,
    worker_python: Path,
    socket_enabled: None,
    transport: str,
    shown: str,
) -> None:
    """A port nothing listens on is named at the port field, before any REGISTER."""
    port = free_tcp_port()
    _, result, probe = await _submit_unprobed(hass, worker_python, transport, port)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_PORT: "port_refused"}
    assert placeholders(result)["target"] == f"127.0.0.1:{port}"
    assert placeholders(result)["transport"] == shown
    probe.assert_not_called()


@pytest.mark.parametrize(
    ("transport", "error"), [("udp", "no_answer"), ("auto", "no_answer_auto")]
)
async def test_silent_address_is_reported_without_the_register_timeout(
    hass: HomeAssistant,
    worker_python: Path,
    silent_server: tuple[int, SilentServer],
    transport: str,
    error: str,
) -> None:
    """No answer on UDP: a few OPTIONS, then the address error; no 32 s REGISTER.

    The advice fits the transport: only Auto is told to choose another one.
    """
    port, server = silent_server
    flow_id, result, probe = await _submit_unprobed(
        hass, worker_python, transport, port
    )
    assert result["errors"] == {CONF_SERVER: error}
    assert placeholders(result)["transport"] == "UDP"
    assert placeholders(result)["target"] == f"127.0.0.1:{port}"
    # Retransmitted like a SIP client (T1 doubling) within the check's short limit.
    assert REACHABILITY_TIMEOUT < 10
    assert 2 <= len(server.requests) <= 4
    assert set(server.requests) == {"OPTIONS"}
    probe.assert_not_called()

    # Some servers answer only REGISTER: the same server submitted again goes on.
    result = await submit_server(
        hass, flow_id, server_form(None, worker_python, transport=transport, port=port)
    )
    assert result["type"] is FlowResultType.MENU
    hass.config_entries.flow.async_abort(flow_id)


def test_no_reply_advice_fits_the_transport() -> None:
    """Only the Auto texts advise choosing another transport instead of Auto."""
    errors = json.loads(TRANSLATIONS_PATH.read_text())["config"]["error"]
    for key in ("no_reply_from_server", "no_answer", "port_refused"):
        assert "instead of Auto" not in errors[key]
        assert "Auto" not in errors[key]
    for key in ("no_reply_from_server_auto", "no_answer_auto"):
        assert "Auto" in errors[key]
    # The repair issue is raised whatever the transport: it must not assume Auto.
    issues = json.loads(TRANSLATIONS_PATH.read_text())["issues"]
    assert "instead of Auto" not in issues["server_unreachable"]["description"]


async def test_server_error_returns_to_the_server_form(
    hass: HomeAssistant,
    kamailio: Kamailio,
    worker_python: Path,
    sip_500_server: tuple[int, Sip500Responder],
) -> None:
    """A 500 shows the server error advice on the server form; the fix goes on.

    The credentials are kept: after the corrected server the extension registers
    without being asked again.
    """
    port, responder = sip_500_server
    flow_id = await start_user_flow(hass)
    result = await submit_server(
        hass, flow_id, server_form(None, worker_python, port=port)
    )
    assert result["type"] is FlowResultType.MENU  # OPTIONS got an answer (500)
    await choose_role(hass, flow_id, ExtensionRole.PAGE)
    result = dict(
        await hass.config_entries.flow.async_configure(flow_id, credentials("2001"))
    )
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "server_error"}
    assert placeholders(result)["code"] == "500"
    assert responder.requests[0] == "OPTIONS"
    assert "REGISTER" in responder.requests
    assert suggested_values(result)[CONF_PORT] == port

    result = await submit_server(hass, flow_id, server_form(kamailio, worker_python))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "page"


async def test_user_flow_no_worker_python(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path, tmp_path: Path
) -> None:
    """A configured interpreter that does not exist is refused with how to create one."""
    flow_id = await start_user_flow(hass)
    missing = tmp_path / "no-venv" / "bin" / "python"
    result = await submit_server(
        hass,
        flow_id,
        changed(
            server_form(kamailio, worker_python), {CONF_WORKER_PYTHON: str(missing)}
        ),
    )
    assert result["errors"] == {CONF_WORKER_PYTHON: "invalid_worker_python"}
    assert placeholders(result)["venv"] == hass.config.path("sip_endpoint_worker")
    assert placeholders(result)["requirement"] == ("pjsua2-python==2.15.1.post1")


async def test_user_flow_unexpected_error(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path
) -> None:
    """An unexpected failure of the test shows the unknown error (edge case: faked)."""
    flow_id = await start_with_server(hass, kamailio, worker_python)
    with patch(
        "custom_components.sip_endpoint.flow_validation.probe_registration",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(flow_id, credentials())
    assert result["step_id"] == "extension"
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
        ({CONF_BIND_HOST: "localhost"}, {CONF_BIND_HOST: "invalid_bind_host"}),
    ],
)
async def test_user_flow_invalid_server_fields(
    hass: HomeAssistant,
    worker_python: Path,
    changes: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Malformed server fields are refused before any SIP traffic."""
    flow_id = await start_user_flow(hass)
    result = await submit_server(
        hass, flow_id, changed(server_form(None, worker_python, port=5060), changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_EXTENSION: "20 01"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_EXTENSION: "2001@pbx"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_EXTENSION: "Ä2001"}, {CONF_EXTENSION: "invalid_sip_user"}),
        ({CONF_AUTH_ID: "user name"}, {CONF_AUTH_ID: "invalid_sip_user"}),
        ({CONF_PASSWORD: ""}, {CONF_PASSWORD: "password_required"}),
    ],
)
async def test_user_flow_invalid_credentials(
    hass: HomeAssistant,
    kamailio: Kamailio,
    worker_python: Path,
    changes: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Malformed credentials are refused before any REGISTER."""
    flow_id = await start_with_server(hass, kamailio, worker_python)
    with patch(
        "custom_components.sip_endpoint.flow_validation.probe_registration"
    ) as probe:
        result = await hass.config_entries.flow.async_configure(
            flow_id, credentials() | changes
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "extension"
    assert result["errors"] == errors
    probe.assert_not_called()


@pytest.mark.parametrize(("transport", "port"), [("tls", 5060), ("udp", 5061)])
async def test_port_of_another_transport_is_questioned_once(
    hass: HomeAssistant, worker_python: Path, transport: str, port: int
) -> None:
    """TLS left on the pre-filled 5060 (or 5061 on UDP) is asked about once."""
    flow_id = await start_user_flow(hass)
    fields = server_form(None, worker_python, transport=transport, port=port)
    answered = ReachabilityCheck(
        Reach.ANSWERED, "127.0.0.1", port, Transport(transport), False, "answered"
    )
    with patch(
        "custom_components.sip_endpoint.flow_validation.check_reachable",
        return_value=answered,
    ) as check:
        result = await submit_server(hass, flow_id, fields)
        assert result["errors"] == {CONF_PORT: "port_transport_mismatch"}
        check.assert_not_called()
        # Submitted again unchanged: kept, and the server is checked.
        result = await submit_server(hass, flow_id, fields)
        assert result["type"] is FlowResultType.MENU
        check.assert_called_once()
    hass.config_entries.flow.async_abort(flow_id)


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
    result = await submit_server(
        hass, flow_id, server_form(None, worker_python, host=host, transport=transport)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_server_already_in_progress(
    hass: HomeAssistant, kamailio: Kamailio, worker_python: Path
) -> None:
    """A second flow for a server another flow is setting up aborts."""
    first = await start_with_server(hass, kamailio, worker_python)
    second = await start_user_flow(hass)
    result = await submit_server(hass, second, server_form(kamailio, worker_python))
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
    flow_id = await start_with_server(hass, kamailio, worker_python, role)
    result = await hass.config_entries.flow.async_configure(flow_id, credentials())
    assert result["step_id"] == role.value
    result = await hass.config_entries.flow.async_configure(flow_id, options)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == role.value
    assert result["errors"] == errors


def test_access_code_error_names_the_toggle() -> None:
    """The access code error names the switch to turn on, as the form labels it."""
    tree = json.loads(TRANSLATIONS_PATH.read_text())
    for flow in (tree["config"], tree["config_subentries"]["extension"]):
        label = flow["step"]["emergency_alert"]["data"][CONF_ANSWER_INBOUND_CALL]
        assert f"'{label}'" in flow["error"]["access_code_needs_answer"]


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
    assert entry.title == "Test PBX"  # a title the user gave is kept
    assert dict(entry.data) == server_input("127.0.0.1", new.port, "tcp")


async def test_reconfigure_unchanged_keeps_a_renamed_title(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """The issue's case: renamed "Office PBX", Reconfigure submitted unchanged."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    hass.config_entries.async_update_entry(entry, title="Office PBX")
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], dict(entry.data)
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.title == "Office PBX"


async def test_reconfigure_title_follows_the_address_it_was(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """A title that still is the old address becomes the new address."""
    entry = make_entry(kamailio, [])
    hass.config_entries.async_update_entry(entry, title=kamailio.host)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("localhost", kamailio.port, "udp")
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.title == "localhost"


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
    assert result["errors"] == {CONF_PORT: "port_refused"}
    assert placeholders(result)["transport"] == "TCP"
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
    """With no extension left there is nothing to register: the settings are saved.

    The quick check still asks the next hop (here the outbound proxy) to answer.
    """
    entry = make_entry(kamailio, [])
    proxy = f"127.0.0.1:{kamailio.port}"
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        server_input("127.0.0.1", kamailio.port, "udp") | {CONF_OUTBOUND_PROXY: proxy},
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_OUTBOUND_PROXY] == proxy
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
    assert result["errors"] == {CONF_PASSWORD: "rejected_by_server"}
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


async def test_reconfigure_names_an_outbound_proxy_that_refuses(
    hass: HomeAssistant, kamailio: Kamailio, make_entry: Callable[..., MockConfigEntry]
) -> None:
    """With an outbound proxy the proxy is checked; its field shows the error."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    proxy = f"127.0.0.1:{free_tcp_port()}"
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        server_input("127.0.0.1", kamailio.port, "tcp") | {CONF_OUTBOUND_PROXY: proxy},
    )
    assert result["errors"] == {CONF_OUTBOUND_PROXY: "port_refused"}
    assert placeholders(result)["target"] == proxy
    assert CONF_OUTBOUND_PROXY not in entry.data


def test_every_form_field_has_a_help_text() -> None:
    """Each field of the config and extension forms says what it is for."""
    tree = json.loads(TRANSLATIONS_PATH.read_text())
    missing = []
    for where, flow in (
        ("config", tree["config"]),
        ("config_subentries", tree["config_subentries"]["extension"]),
        ("options", tree["options"]),
    ):
        for step_id, step in flow["step"].items():
            forms = [step, *step.get("sections", {}).values()]
            for form in forms:
                hints = form.get("data_description", {})
                missing += [
                    f"{where}.{step_id}.{field}"
                    for field in form.get("data", {})
                    if field not in hints
                ]
    assert missing == []
