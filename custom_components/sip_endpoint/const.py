"""Constants of the SIP Endpoint integration."""

from enum import StrEnum
import logging
from typing import Final

DOMAIN: Final = "sip_endpoint"
LOGGER = logging.getLogger(__package__)

# Config entry data: the SIP server.
CONF_SERVER: Final = "server"  # SIP domain / proxy host
CONF_PORT: Final = "port"
CONF_TRANSPORT: Final = "transport"
CONF_OUTBOUND_PROXY: Final = "outbound_proxy"

# Config entry options.
CONF_KEEPALIVE: Final = "keepalive"
CONF_KEEPALIVE_INTERVAL: Final = "keepalive_interval"
CONF_EXPIRY: Final = "expiry"
CONF_WORKER_PYTHON: Final = "worker_python"
CONF_PORT_MIN: Final = "port_min"
CONF_PORT_MAX: Final = "port_max"
CONF_BIND_HOST: Final = "bind_host"
CONF_RESTRICT_SOURCES: Final = "restrict_sources"

# Subentry data: one extension.
SUBENTRY_TYPE_EXTENSION: Final = "extension"
CONF_ROLE: Final = "role"
CONF_EXTENSION: Final = "extension"
CONF_AUTH_ID: Final = "auth_id"
# CONF_PASSWORD comes from homeassistant.const.
CONF_MEDIA_PLAYERS: Final = "media_players"

DEFAULT_PORT: Final = 5060
DEFAULT_TLS_PORT: Final = 5061

MAX_PAGE_EXTENSIONS: Final = 50
MAX_RING_EXTENSIONS: Final = 10


class ExtensionRole(StrEnum):
    """What an extension does when it is called."""

    PAGE = "page"
    RING = "ring"
    EMERGENCY_ALERT = "emergency_alert"
    CALL_TO_CANCEL = "call_to_cancel"


class CallState(StrEnum):
    """What an extension is doing with calls."""

    IDLE = "idle"
    RINGING = "ringing"
    PAGING = "paging"
    ALERTING = "alerting"
    IN_CALL = "in_call"
