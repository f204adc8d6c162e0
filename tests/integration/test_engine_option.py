"""The engine option and the TLS options, from the options flow to a running entry."""

from collections.abc import Callable, Iterator
import contextlib
import json
import logging
from pathlib import Path
import sys
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_ENGINE,
    CONF_EXPIRY,
    CONF_EXTENSION,
    CONF_KEEPALIVE,
    CONF_KEEPALIVE_INTERVAL,
    CONF_PORT,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_RESTRICT_SOURCES,
    CONF_SERVER,
    CONF_TLS_CA_FILE,
    CONF_TLS_VERIFY,
    CONF_TRANSPORT,
    CONF_WORKER_PYTHON,
    DOMAIN,
    ExtensionRole,
)
from custom_components.sip_endpoint.engine.models import EngineOptions
from custom_components.sip_endpoint.flow_schemas import ADVANCED_SECTION
from custom_components.sip_endpoint.settings import async_warn_unverified_tls
from tests.sipbed.kamailio import Kamailio, KamailioFactory
from tests.sipbed.tls import CertificateSet, make_certificates

from .flow_helpers import (
    TRANSLATIONS_PATH,
    flow_translations_checked,
    placeholders,
    placeholders_used,
)
from .helpers import async_wait_for_state, state_of

PAGE_REGISTRATION = "sensor.page_2001_registration"
FAKE_WORKER = Path(__file__).resolve().parents[1] / "engine" / "fake_worker.py"
UNVERIFIED_WARNING = "TLS certificate verification is off for Test PBX"


@pytest.fixture(autouse=True)
def check_flow_translations() -> Iterator[None]:
    """Fail a test whose flows show a text or placeholder en.json lacks."""
    with flow_translations_checked():
        yield


@pytest.fixture
def options_entry(hass: HomeAssistant) -> MockConfigEntry:
    """Return an entry without options, not set up (for the options flow)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="pbx.example.com:5060",
        title="pbx.example.com",
        data={CONF_SERVER: "pbx.example.com"},
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def certificates(hass: HomeAssistant, tmp_path: Path) -> CertificateSet:
    """Make the test bed's CA and server certificates (openssl, off the loop)."""
    return await hass.async_add_executor_job(make_certificates, tmp_path / "certs")


@contextlib.contextmanager
def without_pjsua2(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Iterator[None]:
    """Hide every interpreter with pjsua2 from the search (PATH, env var) for a while."""
    folder.mkdir(exist_ok=True)
    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(folder))
        patch.delenv("SIP_ENDPOINT_WORKER_PYTHON", raising=False)
        yield


def options_input(**changes: Any) -> dict[str, Any]:
    """Return a complete options form input."""
    return {
        CONF_ENGINE: "auto",
        CONF_KEEPALIVE: "double_crlf",
        CONF_KEEPALIVE_INTERVAL: 30,
        CONF_EXPIRY: 300,
        CONF_PORT_MIN: 5070,
        CONF_PORT_MAX: 5080,
        CONF_BIND_HOST: "127.0.0.1",
        CONF_RESTRICT_SOURCES: True,
        CONF_TLS_VERIFY: True,
    } | changes


async def _configure_options(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    return dict(result)


def _our_issues(hass: HomeAssistant) -> dict[str, ir.IssueEntry]:
    return {
        issue_id: issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    }


def _entry_options(entry: MockConfigEntry, **changes: Any) -> dict[str, Any]:
    """Return the entry's options without the pjsua2 interpreter, with `changes`."""
    options = {
        key: value for key, value in entry.options.items() if key != CONF_WORKER_PYTHON
    }
    return options | changes


# --- the options flow ------------------------------------------------------------------


async def test_options_flow_sets_engine_and_tls(
    hass: HomeAssistant, options_entry: MockConfigEntry, certificates: CertificateSet
) -> None:
    """The engine, verification and a real CA file are stored as given."""
    user_input = options_input(
        **{
            CONF_ENGINE: "builtin",
            CONF_TLS_VERIFY: False,
            CONF_TLS_CA_FILE: str(certificates.ca_path),
        }
    )
    result = await _configure_options(hass, options_entry, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert options_entry.options == user_input


async def test_builtin_engine_does_not_check_the_interpreter(
    hass: HomeAssistant, options_entry: MockConfigEntry
) -> None:
    """The built-in engine does not use the pjsua2 interpreter, so it is not probed."""
    user_input = options_input(
        **{CONF_ENGINE: "builtin", CONF_WORKER_PYTHON: "/nonexistent/python3.12"}
    )
    result = await _configure_options(hass, options_entry, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("engine", ["auto", "pjsua2"])
async def test_interpreter_checked_for_pjsua2_engines(
    hass: HomeAssistant, options_entry: MockConfigEntry, engine: str
) -> None:
    """With auto or pjsua2, a configured interpreter must import pjsua2."""
    result = await _configure_options(
        hass,
        options_entry,
        options_input(**{CONF_ENGINE: engine, CONF_WORKER_PYTHON: sys.executable}),
    )
    assert result["errors"] == {CONF_WORKER_PYTHON: "invalid_worker_python"}
    assert options_entry.options == {}


async def test_pjsua2_engine_needs_an_interpreter(
    hass: HomeAssistant,
    options_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Choosing pjsua2 when no interpreter has it is refused; auto is accepted."""
    with without_pjsua2(monkeypatch, tmp_path / "empty-path"):
        refused = await _configure_options(
            hass, options_entry, options_input(**{CONF_ENGINE: "pjsua2"})
        )
        assert refused["errors"] == {CONF_ENGINE: "pjsua2_not_found"}
        accepted = await _configure_options(
            hass, options_entry, options_input(**{CONF_ENGINE: "auto"})
        )
    assert accepted["type"] is FlowResultType.CREATE_ENTRY
    assert options_entry.options[CONF_ENGINE] == "auto"


async def test_pjsua2_engine_with_a_real_interpreter(
    hass: HomeAssistant, options_entry: MockConfigEntry, worker_python: Path
) -> None:
    """The pjsua2 engine with an interpreter that has it is accepted."""
    user_input = options_input(
        **{CONF_ENGINE: "pjsua2", CONF_WORKER_PYTHON: str(worker_python)}
    )
    result = await _configure_options(hass, options_entry, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("kind", ["missing", "relative", "not_pem", "folder"])
async def test_bad_ca_file_is_refused(
    hass: HomeAssistant, options_entry: MockConfigEntry, tmp_path: Path, kind: str
) -> None:
    """The CA file must be an absolute path to a file with certificates."""
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    path = {
        "missing": str(tmp_path / "nope.pem"),
        "relative": "pbx-ca.pem",
        "not_pem": str(not_pem),
        "folder": str(tmp_path),
    }[kind]
    result = await _configure_options(
        hass, options_entry, options_input(**{CONF_TLS_CA_FILE: path})
    )
    assert result["errors"] == {CONF_TLS_CA_FILE: "invalid_tls_ca_file"}
    assert options_entry.options == {}


async def test_setup_with_a_pbx_of_its_own_ca(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    certificates: CertificateSet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The first registration says the certificate was refused; its CA file fixes it."""
    pbx = kamailio_factory(tls_certificate=certificates.server("valid"))
    user_input: dict[str, Any] = {
        CONF_SERVER: pbx.host,
        CONF_PORT: pbx.tls_port,
        CONF_TRANSPORT: "tls",
        ADVANCED_SECTION: {CONF_BIND_HOST: "127.0.0.1", CONF_TLS_VERIFY: True},
    }
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    with without_pjsua2(monkeypatch, tmp_path / "empty-path"):
        # Server step, role menu, then the extension registers: the certificate
        # error brings back the server form, whose advanced section has the fix.
        flow_id = result["flow_id"]
        await hass.config_entries.flow.async_configure(flow_id, user_input)
        await hass.config_entries.flow.async_configure(
            flow_id, {"next_step_id": f"add_{ExtensionRole.PAGE.value}"}
        )
        refused = await hass.config_entries.flow.async_configure(
            flow_id,
            {CONF_EXTENSION: "2001", CONF_AUTH_ID: "2001", CONF_PASSWORD: "pw-2001"},
        )
        assert refused["step_id"] == "user"
        assert refused["errors"] == {"base": "tls_certificate_invalid"}
        reason = placeholders(refused)["reason"]
        assert "unable to get local issuer certificate" in reason
        user_input[ADVANCED_SECTION] |= {CONF_TLS_CA_FILE: str(certificates.ca_path)}
        accepted = await hass.config_entries.flow.async_configure(
            result["flow_id"], user_input
        )
    assert accepted["type"] is FlowResultType.FORM
    assert accepted["step_id"] == "page"
    hass.config_entries.flow.async_abort(result["flow_id"])


# --- a running entry -------------------------------------------------------------------


async def test_auto_without_pjsua2_runs_the_builtin_engine(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """No pjsua2 anywhere: auto registers through the built-in engine, no repair."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    hass.config_entries.async_update_entry(entry, options=_entry_options(entry))
    with without_pjsua2(monkeypatch, tmp_path / "empty-path"):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    assert _our_issues(hass) == {}

    (worker,) = entry.runtime_data.engine.workers()
    assert (worker.engine, worker.max_accounts) == ("builtin", 100)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["engine"]["name"] == "builtin"
    assert diagnostics["engine"]["python"] == sys.executable
    assert diagnostics["workers"][0]["engine"] == "builtin"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_tls_certificate_issue_follows_the_status(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
    tmp_path: Path,
) -> None:
    """The repair appears with the status, names the failure, and goes when it goes."""
    # Edge case on a fake worker: its first REGISTER fails TLS verification.
    fake = tmp_path / "fake-python"
    fake.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_WORKER}" '
        '--register tls_invalid_once -- "$@"\n'
    )
    fake.chmod(0o755)
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    hass.config_entries.async_update_entry(
        entry,
        options=_entry_options(
            entry, **{CONF_ENGINE: "pjsua2", CONF_WORKER_PYTHON: str(fake)}
        ),
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    await async_wait_for_state(hass, PAGE_REGISTRATION, "tls_certificate_invalid")
    issue = _our_issues(hass)[f"tls_certificate_invalid_{entry.entry_id}"]
    assert not issue.is_fixable
    assert issue.translation_key == "tls_certificate_invalid"
    assert issue.translation_placeholders == {
        "server": "Test PBX",
        "extension": "2001",
        "reason": "certificate verify failed: unable to get local issuer certificate",
    }
    text = json.loads(TRANSLATIONS_PATH.read_text())["issues"][issue.translation_key]
    used = placeholders_used(text["title"] + text["description"])
    assert used <= set(issue.translation_placeholders)

    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.page_2001_register_again"},
        blocking=True,
    )
    await async_wait_for_state(hass, PAGE_REGISTRATION, "successful")
    assert _our_issues(hass) == {}
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("served", "trust_ca", "verify", "expected"),
    [
        ("untrusted", True, True, "tls_certificate_invalid"),
        ("valid", True, True, "successful"),
        ("untrusted", False, False, "successful"),
    ],
)
async def test_tls_verification_against_kamailio(
    hass: HomeAssistant,
    kamailio_factory: KamailioFactory,
    make_entry: Callable[..., MockConfigEntry],
    certificates: CertificateSet,
    caplog: pytest.LogCaptureFixture,
    served: str,
    trust_ca: bool,
    verify: bool,
    expected: str,
) -> None:
    """Over real TLS: the CA file is trusted, another CA is refused, or anything goes."""
    pbx = kamailio_factory(tls_certificate=certificates.server(served))  # type: ignore[arg-type]
    entry = make_entry(pbx, [(ExtensionRole.PAGE, "2001", "pw-2001")], transport="tls")
    options = _entry_options(entry, **{CONF_ENGINE: "builtin", CONF_TLS_VERIFY: verify})
    if trust_ca:
        options[CONF_TLS_CA_FILE] = str(certificates.ca_path)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_PORT: pbx.tls_port}, options=options
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    state = await async_wait_for_state(hass, PAGE_REGISTRATION, expected)
    issue_id = f"tls_certificate_invalid_{entry.entry_id}"
    if expected == "tls_certificate_invalid":
        assert "unable to get local issuer certificate" in state.attributes["reason"]
        assert issue_id in _our_issues(hass)
    else:
        assert issue_id not in _our_issues(hass)
    assert caplog.text.count(UNVERIFIED_WARNING) == (0 if verify else 1)

    # A reload warns no second time.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await async_wait_for_state(hass, PAGE_REGISTRATION, expected)
    assert caplog.text.count(UNVERIFIED_WARNING) == (0 if verify else 1)
    assert state_of(hass, PAGE_REGISTRATION).state == expected
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert issue_id not in _our_issues(hass)  # withdrawn with the entry


async def test_unverified_tls_warning_once_until_turned_on_again(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """Turning verification off warns once; back on and off again warns again."""
    caplog.set_level(logging.WARNING)
    off, on = EngineOptions(tls_verify=False), EngineOptions(tls_verify=True)
    for options in (off, off, on, off, off):
        async_warn_unverified_tls(hass, "entry-1", "Test PBX", options)
    async_warn_unverified_tls(hass, "entry-2", "Other PBX", off)
    assert caplog.text.count(UNVERIFIED_WARNING) == 2
    assert caplog.text.count("TLS certificate verification is off for Other PBX") == 1
