"""Form schemas of the config, subentry and options flows."""

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.const import CONF_PASSWORD
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_DURATION,
    CONF_ALERT_MEDIA,
    CONF_ALERT_TTS_MESSAGE,
    CONF_ANSWER_INBOUND_CALL,
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_CANCELS,
    CONF_CHIME,
    CONF_ENGINE,
    CONF_EXPIRY,
    CONF_EXTENSION,
    CONF_KEEPALIVE,
    CONF_KEEPALIVE_INTERVAL,
    CONF_MAX_DURATION,
    CONF_MEDIA_PLAYERS,
    CONF_OUTBOUND_PROXY,
    CONF_PAGE_MODE,
    CONF_PORT,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_RESTRICT_SOURCES,
    CONF_RINGTONE,
    CONF_SERVER,
    CONF_TLS_CA_FILE,
    CONF_TLS_VERIFY,
    CONF_TRANSPORT,
    CONF_VOLUME,
    CONF_WORKER_PYTHON,
    DEFAULT_ALERT_DURATION,
    DEFAULT_MAX_DURATION,
    DEFAULT_VOLUME,
    ROLE_TITLES,
    ExtensionRole,
    PageMode,
)
from .engine import EngineChoice
from .protocol.payloads import KeepaliveMethod, Transport
from .settings import DEFAULT_OPTIONS

SERVER_FIELDS: Final = (CONF_SERVER, CONF_TRANSPORT, CONF_PORT, CONF_OUTBOUND_PROXY)
ADVANCED_SETUP_FIELDS: Final = (
    CONF_BIND_HOST,
    CONF_WORKER_PYTHON,
    CONF_TLS_VERIFY,
    CONF_TLS_CA_FILE,
)

# The menu steps that choose a new extension's role, e.g. "add_page".
ROLE_MENU_STEPS: Final = {role: f"add_{role.value}" for role in ExtensionRole}

_TEXT: Final = TextSelector()
_PASSWORD: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_MEDIA_PLAYERS: Final = EntitySelector(
    EntitySelectorConfig(domain="media_player", multiple=True)
)


def _number(minimum: int, maximum: int, unit: str | None = None) -> vol.All:
    """Return an integer number field in a box."""
    config = NumberSelectorConfig(
        min=minimum, max=maximum, step=1, mode=NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return vol.All(NumberSelector(config), vol.Coerce(int))


def _select(options: list[str], translation_key: str) -> SelectSelector:
    """Return a translated drop-down."""
    return SelectSelector(
        SelectSelectorConfig(
            options=options,
            translation_key=translation_key,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )


def extension_title(role: str, extension: str) -> str:
    """Return a subentry's title, e.g. "Page 2001"."""
    return f"{ROLE_TITLES[ExtensionRole(role)]} {extension}"


def server_schema() -> dict[vol.Marker, Any]:
    """Return the SIP server fields (the transport before the port it decides)."""
    return {
        vol.Required(CONF_SERVER): _TEXT,
        vol.Required(CONF_TRANSPORT, default=Transport.AUTO.value): _select(
            [transport.value for transport in Transport], CONF_TRANSPORT
        ),
        vol.Optional(CONF_PORT): _number(1, 65535),
        vol.Optional(CONF_OUTBOUND_PROXY): _TEXT,
    }


def credentials_schema(*, password_required: bool) -> dict[vol.Marker, Any]:
    """Return an extension's credential fields (its role is chosen in a menu)."""
    fields: dict[vol.Marker, Any] = {}
    fields[vol.Required(CONF_EXTENSION)] = _TEXT
    fields[vol.Optional(CONF_AUTH_ID)] = _TEXT
    password_marker = vol.Required if password_required else vol.Optional
    fields[password_marker(CONF_PASSWORD)] = _PASSWORD
    return fields


def renew_credentials_schema() -> vol.Schema:
    """Return the fields of the reauth and repair forms.

    An empty authentication ID is the extension, as when the extension was added.
    """
    return vol.Schema(
        {
            vol.Optional(CONF_AUTH_ID): _TEXT,
            vol.Required(CONF_PASSWORD): _PASSWORD,
        }
    )


def advanced_setup_schema() -> dict[vol.Marker, Any]:
    """Return the setup fields of the advanced section (stored as entry options).

    The local address is empty unless set: every address is listened on, and each
    worker announces the one that reaches the server.
    """
    return {
        vol.Optional(CONF_BIND_HOST): _TEXT,
        vol.Optional(CONF_WORKER_PYTHON): _TEXT,
        vol.Required(
            CONF_TLS_VERIFY, default=DEFAULT_OPTIONS.tls_verify
        ): BooleanSelector(),
        vol.Optional(CONF_TLS_CA_FILE): _TEXT,
    }


ADVANCED_SECTION: Final = "advanced"


def advanced_setup_section() -> dict[vol.Marker, Any]:
    """Return the advanced setup fields as one collapsed section of the user step.

    A section rather than advanced mode: Home Assistant 2026 deprecates
    `show_advanced_options` (and shows every field in the meantime).
    """
    return {
        vol.Required(ADVANCED_SECTION): section(
            vol.Schema(advanced_setup_schema()), {"collapsed": True}
        )
    }


def flatten_advanced_section(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Return the user step's input with the advanced section's fields at the top."""
    return {**user_input, **user_input.get(ADVANCED_SECTION, {})}


def role_options_schema(
    role: ExtensionRole, alert_extensions: Mapping[str, str]
) -> vol.Schema:
    """Return the options of one role; `alert_extensions` maps subentry id to title."""
    if role is ExtensionRole.PAGE:
        return vol.Schema(
            {
                vol.Required(CONF_MEDIA_PLAYERS): _MEDIA_PLAYERS,
                vol.Required(CONF_PAGE_MODE, default=PageMode.LIVE.value): _select(
                    [mode.value for mode in PageMode], CONF_PAGE_MODE
                ),
                vol.Required(CONF_MAX_DURATION, default=DEFAULT_MAX_DURATION): _number(
                    5, 3600, "s"
                ),
                vol.Required(CONF_VOLUME, default=DEFAULT_VOLUME): _number(0, 100, "%"),
                vol.Required(CONF_CHIME, default=True): BooleanSelector(),
            }
        )
    if role is ExtensionRole.RING:
        return vol.Schema(
            {
                vol.Required(CONF_MEDIA_PLAYERS): _MEDIA_PLAYERS,
                vol.Optional(CONF_RINGTONE): _TEXT,
            }
        )
    if role is ExtensionRole.EMERGENCY_ALERT:
        return vol.Schema(
            {
                vol.Required(CONF_MEDIA_PLAYERS): _MEDIA_PLAYERS,
                vol.Optional(CONF_ALERT_MEDIA): _TEXT,
                vol.Optional(CONF_ALERT_TTS_MESSAGE): TextSelector(
                    TextSelectorConfig(multiline=True)
                ),
                vol.Required(
                    CONF_ALERT_DURATION, default=DEFAULT_ALERT_DURATION
                ): _number(0, 86400, "s"),
                vol.Required(
                    CONF_ANSWER_INBOUND_CALL, default=False
                ): BooleanSelector(),
                vol.Optional(CONF_ACCESS_CODE): _TEXT,
            }
        )
    return vol.Schema(
        {
            vol.Optional(CONF_CANCELS, default=[]): SelectSelector(
                SelectSelectorConfig(
                    options=[
                        SelectOptionDict(value=subentry_id, label=title)
                        for subentry_id, title in alert_extensions.items()
                    ],
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                )
            ),
        }
    )


def options_schema() -> vol.Schema:
    """Return the config entry options."""
    return vol.Schema(
        {
            vol.Required(CONF_ENGINE, default=DEFAULT_OPTIONS.engine.value): _select(
                [choice.value for choice in EngineChoice], CONF_ENGINE
            ),
            vol.Required(
                CONF_KEEPALIVE, default=DEFAULT_OPTIONS.keepalive.value
            ): _select([method.value for method in KeepaliveMethod], CONF_KEEPALIVE),
            vol.Required(
                CONF_KEEPALIVE_INTERVAL, default=DEFAULT_OPTIONS.keepalive_interval
            ): _number(5, 3600, "s"),
            vol.Required(CONF_EXPIRY, default=DEFAULT_OPTIONS.expiry): _number(
                30, 86400, "s"
            ),
            vol.Optional(CONF_WORKER_PYTHON): _TEXT,
            vol.Required(CONF_PORT_MIN, default=DEFAULT_OPTIONS.port_min): _number(
                1024, 65535
            ),
            vol.Required(CONF_PORT_MAX, default=DEFAULT_OPTIONS.port_max): _number(
                1024, 65535
            ),
            vol.Optional(CONF_BIND_HOST): _TEXT,
            vol.Required(
                CONF_RESTRICT_SOURCES, default=DEFAULT_OPTIONS.restrict_sources
            ): BooleanSelector(),
            vol.Required(
                CONF_TLS_VERIFY, default=DEFAULT_OPTIONS.tls_verify
            ): BooleanSelector(),
            vol.Optional(CONF_TLS_CA_FILE): _TEXT,
        }
    )
