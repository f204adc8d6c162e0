"""The config entry the fast tests set up, and what its engine double reports."""

from typing import Any

from custom_components.sip_endpoint.const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_DURATION,
    CONF_ALERT_TTS_MESSAGE,
    CONF_ANSWER_INBOUND_CALL,
    CONF_CHIME,
    CONF_MAX_DURATION,
    CONF_MEDIA_PLAYERS,
    CONF_PAGE_MODE,
    CONF_VOLUME,
    ExtensionRole,
)

ENTRY_ID = "01JSIPENDPOINTENTRY0000000"
SERVER = "pbx.example.com"
INTERNAL_URL = "http://127.0.0.1:8123"

# Subentry id, role, extension, authentication id, password, role options.
PAGE_ID = "01JSIPENDPOINTPAGE00000000"
RING_ID = "01JSIPENDPOINTRING00000000"
ALERT_ID = "01JSIPENDPOINTALERT0000000"
EXTENSIONS: tuple[tuple[str, ExtensionRole, str, str, str, dict[str, Any]], ...] = (
    (
        PAGE_ID,
        ExtensionRole.PAGE,
        "2001",
        "",
        "page-secret",
        {
            CONF_MEDIA_PLAYERS: ["media_player.kitchen"],
            CONF_PAGE_MODE: "live",
            CONF_MAX_DURATION: 60,
            CONF_VOLUME: 50,
            CONF_CHIME: True,
        },
    ),
    (
        RING_ID,
        ExtensionRole.RING,
        "2002",
        "ring-auth",
        "ring-secret",
        {CONF_MEDIA_PLAYERS: ["media_player.hall"]},
    ),
    (
        ALERT_ID,
        ExtensionRole.EMERGENCY_ALERT,
        "2003",
        "",
        "alert-secret",
        {
            CONF_MEDIA_PLAYERS: ["media_player.kitchen", "media_player.hall"],
            CONF_ALERT_TTS_MESSAGE: "Please leave the building",
            CONF_ALERT_DURATION: 0,
            CONF_ANSWER_INBOUND_CALL: False,
            CONF_ACCESS_CODE: "4711",
        },
    ),
)
SECRETS = ("page-secret", "ring-secret", "alert-secret", "ring-auth", "4711")

# Fixed times, so states and diagnostics read the same in every run.
REGISTERED_AT = 1_764_489_600.0  # 2025-11-30 08:00:00 UTC
WORKER_STARTED_AT = REGISTERED_AT - 30
EXPIRES = 300
