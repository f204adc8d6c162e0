"""Checks shared by the config, subentry, options and repair flows."""

from collections.abc import Mapping
from dataclasses import dataclass, field
import ipaddress
import os
from pathlib import Path
import re
import socket
import ssl
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components import media_source
from homeassistant.components.media_source.const import URI_SCHEME_REGEX
from homeassistant.config_entries import ConfigEntry, ConfigEntryState, ConfigSubentry
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_MEDIA,
    CONF_ANSWER_INBOUND_CALL,
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_ENGINE,
    CONF_EXTENSION,
    CONF_MEDIA_PLAYERS,
    CONF_OUTBOUND_PROXY,
    CONF_PORT,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_RINGTONE,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TLS_CA_FILE,
    CONF_TRANSPORT,
    CONF_WORKER_PYTHON,
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    LOGGER,
    WORKER_VENV_DIR,
    ExtensionRole,
)
from .engine import (
    EngineChoice,
    Reach,
    ReachabilityCheck,
    SipEngine,
    WorkerPythonNotFoundError,
    WorkerStartError,
    auth_id_for,
    check_reachable,
    find_worker_python,
    probe_interpreter,
    probe_registration,
)
from .protocol.engines import PJSUA2_REQUIREMENT
from .protocol.payloads import Transport
from .protocol.status import RegistrationStatus
from .settings import (
    DEFAULT_OPTIONS,
    engine_options,
    extension_settings,
    server_settings,
)

if TYPE_CHECKING:
    from .engine import SelectedEngine

# An account_id for the short-lived probe worker; never the id of a real subentry.
PROBE_EXT_ID: Final = "config_flow_probe"

_HOSTNAME_RE: Final = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?))*\.?$"
)
_DIGITS_RE: Final = re.compile(r"^[0-9*#]{1,16}$")

_FAILURE_ERRORS: Final = {
    RegistrationStatus.REJECTED_BY_SERVER: "rejected_by_server",
    RegistrationStatus.NOT_FOUND: "not_found",
    RegistrationStatus.SERVER_ERROR: "server_error",
    RegistrationStatus.TLS_CERTIFICATE_INVALID: "tls_certificate_invalid",
}


# How the options form names the engines (the option's labels).
ENGINE_LABELS: Final = {"builtin": "built-in", "pjsua2": "pjsua2"}

# Errors of a registration test that the extension's own fields can fix; the others
# concern the server (or are unexpected) and are shown for the whole form.
CREDENTIAL_ERROR_FIELDS: Final = {
    "rejected_by_server": CONF_PASSWORD,
    "not_found": CONF_EXTENSION,
}
# Errors of a registration test that the server form can fix.
SERVER_ERRORS: Final = frozenset(
    {
        "no_reply_from_server",
        "no_reply_from_server_auto",
        "server_error",
        "tls_certificate_invalid",
    }
)
# Reachability errors that only say nothing answered (the user may insist).
_SILENCE: Final = frozenset({"no_answer", "no_answer_auto"})
# The standard port of each transport (Auto sends over UDP first).
_STANDARD_PORTS: Final = {
    Transport.AUTO: DEFAULT_PORT,
    Transport.UDP: DEFAULT_PORT,
    Transport.TCP: DEFAULT_PORT,
    Transport.TLS: DEFAULT_TLS_PORT,
}


def is_valid_host(value: str) -> bool:
    """Return whether `value` is a host name or an IP address (no scheme, no port)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return bool(_HOSTNAME_RE.match(value))
    return True


def is_valid_sip_user(value: str) -> bool:
    """Return whether `value` can be a SIP user part: printable ASCII, no space or '@'."""
    return bool(value) and all("!" <= char <= "~" and char != "@" for char in value)


def is_valid_access_code(value: str) -> bool:
    """Return whether `value` is a DTMF access code (digits, * and #)."""
    return bool(_DIGITS_RE.match(value))


def is_valid_bind_host(value: str) -> bool:
    """Return whether `value` is an IP address a worker can bind to."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def validate_server(data: Mapping[str, Any]) -> dict[str, str]:
    """Return the form errors of the SIP server fields."""
    errors: dict[str, str] = {}
    if not is_valid_host(data[CONF_SERVER]):
        errors[CONF_SERVER] = "invalid_host"
    proxy = data.get(CONF_OUTBOUND_PROXY)
    if proxy and any(char.isspace() for char in proxy):
        errors[CONF_OUTBOUND_PROXY] = "invalid_outbound_proxy"
    return errors


def port_mismatch(data: Mapping[str, Any]) -> bool:
    """Return whether the port is the standard port of another transport.

    The setup form pre-fills 5060; choosing TLS without changing it (or 5061 with UDP
    or TCP) is most likely a slip, so the form asks once before it is kept.
    """
    port = data.get(CONF_PORT)
    standard = _STANDARD_PORTS[Transport(data.get(CONF_TRANSPORT, Transport.AUTO))]
    return port in _STANDARD_PORTS.values() and port != standard


def field_errors(error: str, fields: Mapping[str, str]) -> dict[str, str]:
    """Return a registration test error keyed by the form field that can fix it."""
    return {fields.get(error, "base"): error}


def validate_credentials(data: Mapping[str, Any]) -> dict[str, str]:
    """Return the form errors of an extension's credential fields."""
    errors: dict[str, str] = {}
    if not is_valid_sip_user(data[CONF_EXTENSION]):
        errors[CONF_EXTENSION] = "invalid_sip_user"
    auth_id = data.get(CONF_AUTH_ID)
    if auth_id is not None and not is_valid_sip_user(auth_id):
        errors[CONF_AUTH_ID] = "invalid_sip_user"
    if not data.get(CONF_PASSWORD):
        errors[CONF_PASSWORD] = "password_required"
    return errors


def validate_role_options(
    role: ExtensionRole, data: Mapping[str, Any]
) -> dict[str, str]:
    """Return the form errors of a role's options."""
    errors: dict[str, str] = {}
    if role is not ExtensionRole.CALL_TO_CANCEL and not data[CONF_MEDIA_PLAYERS]:
        errors[CONF_MEDIA_PLAYERS] = "no_media_players"
    if access_code := data.get(CONF_ACCESS_CODE):
        if not is_valid_access_code(access_code):
            errors[CONF_ACCESS_CODE] = "invalid_access_code"
        elif not data[CONF_ANSWER_INBOUND_CALL]:
            errors[CONF_ACCESS_CODE] = "access_code_needs_answer"
    return errors


async def async_validate_role_options(
    hass: HomeAssistant, role: ExtensionRole, data: Mapping[str, Any]
) -> dict[str, str]:
    """Return the form errors of a role's options, its media sources looked up."""
    errors = validate_role_options(role, data)
    for key in (CONF_RINGTONE, CONF_ALERT_MEDIA):
        media = data.get(key)
        if media and key not in errors and not await async_media_exists(hass, media):
            errors[key] = "media_not_found"
    return errors


async def async_media_exists(hass: HomeAssistant, media: str) -> bool:
    """Return whether a media source ID resolves (a local file: that it exists).

    Other values (http(s) URLs, Home Assistant paths) are played as given. A media
    source ID with a typo would otherwise show only when a call comes in, as a
    silent speaker.
    """
    if not media_source.is_media_source_id(media):
        return True
    try:
        await media_source.async_resolve_media(hass, media, None)
    except HomeAssistantError:  # Unresolvable, and any other media source error
        return False
    match = URI_SCHEME_REGEX.match(media)
    if match is None or match["domain"] != media_source.DOMAIN:
        return True
    # Local media: media-source://media_source/<folder id>/<path in that folder>.
    folder_id, _, location = (match["identifier"] or "").partition("/")
    folder = hass.config.media_dirs.get(folder_id)
    if folder is None:
        return False
    return await hass.async_add_executor_job(Path(folder, location).is_file)


def validate_engine_options(data: Mapping[str, Any]) -> dict[str, str]:
    """Return the form errors of the engine options (without the interpreter check)."""
    errors: dict[str, str] = {}
    if CONF_BIND_HOST in data and not is_valid_bind_host(data[CONF_BIND_HOST]):
        errors[CONF_BIND_HOST] = "invalid_bind_host"
    if data.get(CONF_PORT_MIN, 0) > data.get(CONF_PORT_MAX, 65535):
        errors[CONF_PORT_MAX] = "invalid_port_range"
    return errors


async def async_validate_engine_choice(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, str]:
    """Return the form errors of the engine and its interpreter (probed, off the loop).

    A configured interpreter must import pjsua2 unless the built-in engine is chosen
    (which does not use it); the pjsua2 engine needs an interpreter somewhere.
    """
    engine = EngineChoice(data.get(CONF_ENGINE, EngineChoice.AUTO))
    worker_python = data.get(CONF_WORKER_PYTHON)
    if engine is EngineChoice.BUILTIN:
        return {}
    if worker_python:
        if await probe_interpreter(worker_python) is None:
            return {CONF_WORKER_PYTHON: "invalid_worker_python"}
        return {}
    if engine is EngineChoice.PJSUA2:
        try:
            await find_worker_python(None, worker_python_candidates(hass))
        except WorkerPythonNotFoundError:
            return {CONF_ENGINE: "pjsua2_not_found"}
    return {}


async def async_validate_bind_host(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, str]:
    """Return the form error of the local address: it must be one of this host's.

    Otherwise every worker fails to bind, and the entry retries its setup for ever.
    Empty (every address) and malformed values are left to `validate_engine_options`;
    a loopback address is always this host's.
    """
    host = data.get(CONF_BIND_HOST)
    if not host or not is_valid_bind_host(host):
        return {}
    address = ipaddress.ip_address(host)
    if address.is_unspecified or address.is_loopback:
        return {}
    if not await hass.async_add_executor_job(is_local_address, host):
        return {CONF_BIND_HOST: "invalid_bind_host"}
    return {}


def is_local_address(host: str) -> bool:
    """Return whether this host has the IP address `host` (binds a socket: blocks)."""
    family = (
        socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    )
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


async def async_validate_tls_ca_file(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, str]:
    """Return the form error of the TLS CA file: it must be a PEM file that loads."""
    path = data.get(CONF_TLS_CA_FILE)
    if not path:
        return {}
    if not await hass.async_add_executor_job(is_ca_file, path):
        return {CONF_TLS_CA_FILE: "invalid_tls_ca_file"}
    return {}


def is_ca_file(path: str) -> bool:
    """Return whether `path` is absolute and names certificates TLS can trust (blocks)."""
    if not os.path.isabs(path):
        return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError, ValueError):
        return False
    return True


def extension_data(role: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """Return subentry data from a role and credential fields (auth ID defaulted)."""
    extension = credentials[CONF_EXTENSION]
    return {
        CONF_ROLE: role,
        CONF_EXTENSION: extension,
        CONF_AUTH_ID: auth_id_for(extension, credentials.get(CONF_AUTH_ID)),
        CONF_PASSWORD: credentials[CONF_PASSWORD],
    }


def server_unique_id(data: Mapping[str, Any]) -> str:
    """Return the normalised `host:port` that identifies a SIP server."""
    host = str(data[CONF_SERVER]).strip().rstrip(".").lower()
    port = data.get(CONF_PORT) or (
        DEFAULT_TLS_PORT if data.get(CONF_TRANSPORT) == Transport.TLS else DEFAULT_PORT
    )
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{int(port)}"


def worker_python_candidates(hass: HomeAssistant) -> tuple[str, ...]:
    """Return where Home Assistant looks for the worker interpreter besides the option."""
    return (hass.config.path(WORKER_VENV_DIR, "bin", "python"),)


def worker_venv_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Return the placeholders of the texts that explain how to create the worker venv."""
    return {
        "venv": hass.config.path(WORKER_VENV_DIR),
        "requirement": PJSUA2_REQUIREMENT,
    }


@dataclass(slots=True)
class RegistrationCheck:
    """The outcome of a live registration test, ready for a form."""

    error: str | None = None
    placeholders: dict[str, str] = field(default_factory=dict)


def blank_check_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Return the placeholders every form with a live test passes (before a failure)."""
    return {
        "code": "",
        "reason": "",
        "target": "",
        "transport": "",
    } | worker_venv_placeholders(hass)


def _reach_placeholders(check: ReachabilityCheck) -> dict[str, str]:
    """Return the placeholders that say where the check looked and how."""
    return {
        "target": check.target,
        "transport": check.transport.value.upper(),
        "reason": check.detail,
    }


def _reach_error(server: Mapping[str, Any], check: ReachabilityCheck) -> str | None:
    """Return the error key of a failed reachability check (None: it answered)."""
    if check.reach in (Reach.ANSWERED, Reach.SKIPPED):
        return None
    if check.reach is Reach.REFUSED:
        return "port_refused"
    if check.reach is Reach.UNRESOLVED:
        return "host_not_found"
    if server.get(CONF_TRANSPORT, Transport.AUTO) == Transport.AUTO:
        return "no_answer_auto"
    return "no_answer"


def is_silence(errors: Mapping[str, str]) -> bool:
    """Return whether the errors say only that nothing answered (no refusal)."""
    return bool(errors) and all(error in _SILENCE for error in errors.values())


async def async_check_server(
    hass: HomeAssistant,
    server: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    allow_silence: bool = False,
) -> tuple[dict[str, str], dict[str, str]]:
    """Check within seconds that a SIP server answers; return errors and placeholders.

    An error is keyed by the field to correct: the port when nothing listens on it,
    the address (or the outbound proxy when one is set) when nothing answers. Some
    servers ignore everything but registrations: with `allow_silence` (the user
    submitted the same server again) silence is no error.
    """
    check = await check_reachable(
        server_settings(server),
        options.get(CONF_BIND_HOST) or DEFAULT_OPTIONS.bind_host,
    )
    placeholders = blank_check_placeholders(hass) | _reach_placeholders(check)
    error = _reach_error(server, check)
    if error is None or (allow_silence and error in _SILENCE):
        return {}, placeholders
    LOGGER.debug("No SIP server at %s: %s", check.target, check.detail)
    if check.via_proxy:
        field_name = CONF_OUTBOUND_PROXY
    elif error == "port_refused":
        field_name = CONF_PORT
    else:
        field_name = CONF_SERVER
    return {field_name: error}, placeholders


def _no_reply_error(server: Mapping[str, Any]) -> str:
    """Return the no-reply error whose advice fits the chosen transport."""
    if server.get(CONF_TRANSPORT, Transport.AUTO) == Transport.AUTO:
        return "no_reply_from_server_auto"
    return "no_reply_from_server"


async def async_check_registration(
    hass: HomeAssistant,
    server: Mapping[str, Any],
    options: Mapping[str, Any],
    extension: Mapping[str, Any],
) -> RegistrationCheck:
    """Register the extension once through a real worker and explain a failure.

    A quick reachability check comes first, so a wrong address or port is reported
    within seconds rather than after the REGISTER transaction times out.
    """
    # `server`, `options` and `extension` have the shapes of the config entry data,
    # the config entry options and the subentry data.
    # Silence goes on to the REGISTER: the server may answer only registrations.
    reach_errors, placeholders = await async_check_server(
        hass, server, options, allow_silence=True
    )
    if reach_errors:
        return RegistrationCheck(_no_reply_error(server), placeholders)
    try:
        state = await probe_registration(
            server_settings(server),
            engine_options(options),
            extension_settings(PROBE_EXT_ID, extension),
            worker_python_candidates=worker_python_candidates(hass),
        )
    except WorkerPythonNotFoundError:
        return RegistrationCheck("no_worker_python", placeholders)
    except WorkerStartError as err:
        # No local port free, a stale worker after an update without a restart...
        LOGGER.warning("The registration test could not start a SIP worker: %s", err)
        placeholders["reason"] = str(err)
        return RegistrationCheck("worker_start_failed", placeholders)
    except Exception:  # noqa: BLE001
        LOGGER.exception("The registration test failed")
        return RegistrationCheck("unknown", placeholders)
    placeholders["code"] = "" if state.code is None else str(state.code)
    placeholders["reason"] = state.reason
    if state.status is RegistrationStatus.SUCCESSFUL:
        return RegistrationCheck(None, placeholders)
    if state.status is RegistrationStatus.NO_REPLY_FROM_SERVER:
        return RegistrationCheck(_no_reply_error(server), placeholders)
    return RegistrationCheck(_FAILURE_ERRORS.get(state.status, "unknown"), placeholders)


async def async_renew_credentials(
    hass: HomeAssistant,
    entry: ConfigEntry,
    subentry: ConfigSubentry,
    user_input: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, str]]:
    """Register once with a new auth ID and password; store them if they work."""
    # Returns the form errors (none on success) and the description placeholders.
    # The integration's update listener registers the running extension again.
    data = dict(subentry.data) | {
        CONF_AUTH_ID: auth_id_for(
            subentry.data[CONF_EXTENSION], user_input.get(CONF_AUTH_ID)
        ),
        CONF_PASSWORD: user_input[CONF_PASSWORD],
    }
    if errors := validate_credentials(data):
        return errors, blank_check_placeholders(hass)
    check = await async_check_registration(hass, entry.data, entry.options, data)
    if check.error is not None:
        return {"base": check.error}, check.placeholders
    hass.config_entries.async_update_subentry(entry, subentry, data=data)
    return {}, check.placeholders


def engine_in_use_placeholders(entry: ConfigEntry) -> dict[str, str]:
    """Return which engine and interpreter the entry's workers run, for a description."""
    # Read through the engine: the runtime imports the repairs, which import this.
    engine = getattr(getattr(entry, "runtime_data", None), "engine", None)
    selected: SelectedEngine | None = None
    if entry.state is ConfigEntryState.LOADED and isinstance(engine, SipEngine):
        selected = engine.selected_engine
    if selected is None:
        return {"engine_in_use": "nothing, as this server is not loaded"}
    engine = ENGINE_LABELS.get(selected.name, selected.name)
    if selected.engine_version:
        engine = f"{engine} {selected.engine_version}"
    return {
        "engine_in_use": f"the {engine} engine on {selected.python} "
        f"(Python {selected.python_version})"
    }
