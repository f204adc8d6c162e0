"""Turn config entry and subentry data into engine settings."""

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from .const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_ENGINE,
    CONF_EXPIRY,
    CONF_EXTENSION,
    CONF_KEEPALIVE,
    CONF_KEEPALIVE_INTERVAL,
    CONF_OUTBOUND_PROXY,
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
    LOGGER,
)
from .engine import (
    EngineChoice,
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
    auth_id_for,
)
from .protocol.payloads import KeepaliveMethod, Transport

DEFAULT_OPTIONS = EngineOptions()

# Entries whose unverified TLS was logged since their verification was last on.
_UNVERIFIED_TLS_LOGGED: HassKey[set[str]] = HassKey(f"{DOMAIN}_unverified_tls_logged")


def server_settings(data: Mapping[str, Any]) -> ServerSettings:
    """Build the server settings from config entry data."""
    return ServerSettings(
        host=data[CONF_SERVER],
        port=data.get(CONF_PORT),
        transport=Transport(data.get(CONF_TRANSPORT, Transport.AUTO)),
        outbound_proxy=data.get(CONF_OUTBOUND_PROXY) or None,
    )


def engine_options(options: Mapping[str, Any]) -> EngineOptions:
    """Build the engine options from config entry options (defaults for what is unset)."""
    return EngineOptions(
        keepalive=KeepaliveMethod(
            options.get(CONF_KEEPALIVE, DEFAULT_OPTIONS.keepalive)
        ),
        keepalive_interval=int(
            options.get(CONF_KEEPALIVE_INTERVAL, DEFAULT_OPTIONS.keepalive_interval)
        ),
        expiry=int(options.get(CONF_EXPIRY, DEFAULT_OPTIONS.expiry)),
        port_min=int(options.get(CONF_PORT_MIN, DEFAULT_OPTIONS.port_min)),
        port_max=int(options.get(CONF_PORT_MAX, DEFAULT_OPTIONS.port_max)),
        bind_host=options.get(CONF_BIND_HOST, DEFAULT_OPTIONS.bind_host),
        restrict_sources=bool(
            options.get(CONF_RESTRICT_SOURCES, DEFAULT_OPTIONS.restrict_sources)
        ),
        engine=EngineChoice(options.get(CONF_ENGINE, DEFAULT_OPTIONS.engine)),
        worker_python=options.get(CONF_WORKER_PYTHON) or None,
        tls_verify=bool(options.get(CONF_TLS_VERIFY, DEFAULT_OPTIONS.tls_verify)),
        tls_ca_file=options.get(CONF_TLS_CA_FILE) or None,
    )


def extension_settings(account_id: str, data: Mapping[str, Any]) -> ExtensionSettings:
    """Build one extension's settings from subentry data."""
    extension = data[CONF_EXTENSION]
    return ExtensionSettings(
        account_id=account_id,
        extension=extension,
        auth_id=auth_id_for(extension, data.get(CONF_AUTH_ID)),
        password=data[CONF_PASSWORD],
    )


@callback
def async_warn_unverified_tls(
    hass: HomeAssistant, entry_id: str, title: str, options: EngineOptions
) -> None:
    """Warn once per entry that TLS accepts any certificate (again after it was on)."""
    logged = hass.data.setdefault(_UNVERIFIED_TLS_LOGGED, set())
    if options.tls_verify:
        logged.discard(entry_id)
        return
    if entry_id in logged:
        return
    logged.add(entry_id)
    LOGGER.warning(
        "TLS certificate verification is off for %s: over TLS, any server "
        "certificate is accepted, so anyone between Home Assistant and the server "
        "can pose as it. Give the server's CA file in the options instead",
        title,
    )
