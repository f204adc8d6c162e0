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
CONF_ENGINE: Final = "engine"  # auto, builtin or pjsua2 (engine.models.EngineChoice)
CONF_WORKER_PYTHON: Final = "worker_python"
CONF_PORT_MIN: Final = "port_min"
CONF_PORT_MAX: Final = "port_max"
CONF_BIND_HOST: Final = "bind_host"
CONF_RESTRICT_SOURCES: Final = "restrict_sources"
CONF_TLS_VERIFY: Final = "tls_verify"
CONF_TLS_CA_FILE: Final = "tls_ca_file"

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
    """What an extension does when it is called; also its device's model id."""

    PAGE = "page"
    RING = "ring"
    EMERGENCY_ALERT = "emergency_alert"
    CALL_TO_CANCEL = "call_to_cancel"


# A role's name in stored strings: subentry titles ("Page 2001") and device models
# ("Page extension"); neither is translated.
ROLE_TITLES: Final = {
    ExtensionRole.PAGE: "Page",
    ExtensionRole.RING: "Ring",
    ExtensionRole.EMERGENCY_ALERT: "Emergency alert",
    ExtensionRole.CALL_TO_CANCEL: "Call-to-cancel",
}


class CallState(StrEnum):
    """What an extension is doing with calls."""

    IDLE = "idle"
    RINGING = "ringing"
    PAGING = "paging"
    ALERTING = "alerting"
    IN_CALL = "in_call"


# Subentry data: role options (config and subentry flows).
CONF_PAGE_MODE: Final = "page_mode"
CONF_MAX_DURATION: Final = "max_duration"
CONF_VOLUME: Final = "volume"
CONF_CHIME: Final = "chime"
CONF_RINGTONE: Final = "ringtone"
CONF_ALERT_MEDIA: Final = "alert_media"
CONF_ALERT_TTS_MESSAGE: Final = "alert_tts_message"
CONF_ALERT_DURATION: Final = "alert_duration"  # seconds, 0 = until cancelled
CONF_ANSWER_INBOUND_CALL: Final = "answer_inbound_call"
CONF_ACCESS_CODE: Final = "access_code"
CONF_CANCELS: Final = "cancels"  # alert subentry ids; empty = every alert extension

DEFAULT_MAX_DURATION: Final = 60
DEFAULT_VOLUME: Final = 50
DEFAULT_ALERT_DURATION: Final = 0

# The worker venv the repair and error texts tell users to create, in the config folder.
WORKER_VENV_DIR: Final = "sip_endpoint_worker"

# Reauth flow data: the subentry whose credentials were rejected (merged into entry data
# by `entry.async_start_reauth(hass, data={REAUTH_SUBENTRY_ID: subentry_id})`).
REAUTH_SUBENTRY_ID: Final = "subentry_id"

# Repair issue ids (suffixed with the subentry or entry id).
ISSUE_REJECTED_CREDENTIALS: Final = "rejected_credentials"
ISSUE_SERVER_UNREACHABLE: Final = "server_unreachable"
ISSUE_NO_WORKER_PYTHON: Final = "no_worker_python"
ISSUE_TLS_CERTIFICATE_INVALID: Final = "tls_certificate_invalid"


class PageMode(StrEnum):
    """How a page extension plays what the caller says."""

    LIVE = "live"
    RECORD_THEN_PLAY = "record_then_play"


# Bus events (also the device triggers' and logbook's source); data has `device_id`,
# `extension` and `type`.
EVENT_CALL: Final = f"{DOMAIN}_call"  # type: a CallEventType
EVENT_ALERT: Final = f"{DOMAIN}_alert"  # type: an AlertEventType
EVENT_REGISTRATION: Final = f"{DOMAIN}_registration"  # type: REGISTRATION_FAILED
REGISTRATION_FAILED: Final = "failed"


class CallEventType(StrEnum):
    """Types of call events: the `call` event entity's and the call bus event's."""

    INCOMING = "incoming"
    ANSWERED = "answered"
    ENDED = "ended"
    MISSED = "missed"
    DTMF = "dtmf"


class AlertEventType(StrEnum):
    """Types of the alert bus event."""

    STARTED = "started"
    STOPPED = "stopped"


ATTR_EXTENSION: Final = "extension"
ATTR_TYPE: Final = "type"

# Actions.
SERVICE_PLAY_ALERT: Final = "play_alert"
SERVICE_CANCEL_ALERT: Final = "cancel_alert"
SERVICE_PAGE: Final = "page"
SERVICE_HANGUP: Final = "hangup"
ATTR_MEDIA: Final = "media"
ATTR_MESSAGE: Final = "message"
ATTR_DURATION: Final = "duration"
ATTR_VOLUME: Final = "volume"
ATTR_TARGET: Final = "target"
ATTR_TIMEOUT: Final = "timeout"
