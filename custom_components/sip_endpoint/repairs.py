"""Repair issues of the SIP Endpoint integration and the fix flow for rejected credentials."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import (
    CONF_AUTH_ID,
    CONF_EXTENSION,
    CONF_SERVER,
    DOMAIN,
    ISSUE_NO_WORKER_PYTHON,
    ISSUE_REJECTED_CREDENTIALS,
    ISSUE_SERVER_UNREACHABLE,
    ISSUE_TLS_CERTIFICATE_INVALID,
)
from .flow_schemas import renew_credentials_schema
from .flow_validation import (
    async_renew_credentials,
    blank_check_placeholders,
    worker_venv_placeholders,
)
from .protocol.status import RegistrationStatus

if TYPE_CHECKING:
    from collections.abc import Iterable

    from homeassistant.config_entries import ConfigEntry
    from homeassistant.data_entry_flow import FlowResult

    from .protocol.payloads import RegistrationState

_ENTRY_ID = "entry_id"
_SUBENTRY_ID = "subentry_id"


class UnavailableMedia(StrEnum):
    """Configured media an extension plays instead of a built-in sound; the issue key."""

    ALERT = "alert_media_unavailable"  # an emergency alert's media or TTS message
    RINGTONE = "ringtone_unavailable"  # a ring extension's ringtone


def rejected_credentials_issue_id(subentry_id: str) -> str:
    """Return the id of the issue raised when an extension's credentials are rejected."""
    return f"{ISSUE_REJECTED_CREDENTIALS}_{subentry_id}"


def server_unreachable_issue_id(entry_id: str) -> str:
    """Return the id of the issue raised when a server does not answer for long."""
    return f"{ISSUE_SERVER_UNREACHABLE}_{entry_id}"


def no_worker_python_issue_id(entry_id: str) -> str:
    """Return the id of the issue raised when no worker interpreter exists."""
    return f"{ISSUE_NO_WORKER_PYTHON}_{entry_id}"


def tls_certificate_invalid_issue_id(entry_id: str) -> str:
    """Return the id of the issue raised when a server's TLS certificate is refused."""
    return f"{ISSUE_TLS_CERTIFICATE_INVALID}_{entry_id}"


@callback
def async_create_rejected_credentials_issue(
    hass: HomeAssistant, entry: ConfigEntry, subentry_id: str, extension: str
) -> None:
    """Report that the server rejected an extension's credentials (fixable)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        rejected_credentials_issue_id(subentry_id),
        data={_ENTRY_ID: entry.entry_id, _SUBENTRY_ID: subentry_id},
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_REJECTED_CREDENTIALS,
        translation_placeholders={
            CONF_EXTENSION: extension,
            CONF_SERVER: entry.title,
        },
    )


@callback
def async_delete_rejected_credentials_issue(
    hass: HomeAssistant, entry: ConfigEntry, subentry_id: str
) -> None:
    """Withdraw the rejected credentials issue of an extension."""
    ir.async_delete_issue(hass, DOMAIN, rejected_credentials_issue_id(subentry_id))


@callback
def async_create_unreachable_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Report that the server has not answered for more than ten minutes."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        server_unreachable_issue_id(entry.entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_SERVER_UNREACHABLE,
        translation_placeholders={CONF_SERVER: entry.title},
    )


@callback
def async_delete_unreachable_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Withdraw the server unreachable issue of an entry."""
    ir.async_delete_issue(hass, DOMAIN, server_unreachable_issue_id(entry.entry_id))


@callback
def async_create_no_worker_python_issue(
    hass: HomeAssistant, entry: ConfigEntry
) -> None:
    """Report that no interpreter with pjsua2 was found, with the steps to create one."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        no_worker_python_issue_id(entry.entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_NO_WORKER_PYTHON,
        translation_placeholders={CONF_SERVER: entry.title}
        | worker_venv_placeholders(hass),
    )


@callback
def async_delete_no_worker_python_issue(
    hass: HomeAssistant, entry: ConfigEntry
) -> None:
    """Withdraw the no worker interpreter issue of an entry."""
    ir.async_delete_issue(hass, DOMAIN, no_worker_python_issue_id(entry.entry_id))


def media_unavailable_issue_id(kind: UnavailableMedia, account_id: str) -> str:
    """Return the id of the issue raised when an extension's media cannot be played."""
    return f"{kind}_{account_id}"


@callback
def async_create_media_unavailable_issue(
    hass: HomeAssistant,
    kind: UnavailableMedia,
    account_id: str,
    placeholders: dict[str, str],
) -> None:
    """Report that an extension plays a built-in sound: its own media failed.

    ``placeholders`` name the ``extension``, the ``media`` and the ``error``.
    """
    ir.async_create_issue(
        hass,
        DOMAIN,
        media_unavailable_issue_id(kind, account_id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=kind,
        translation_placeholders=placeholders,
    )


@callback
def async_delete_media_unavailable_issue(
    hass: HomeAssistant, kind: UnavailableMedia, account_id: str
) -> None:
    """Withdraw the media issue of an extension (its media plays again)."""
    ir.async_delete_issue(hass, DOMAIN, media_unavailable_issue_id(kind, account_id))


@callback
def async_delete_media_unavailable_issues(hass: HomeAssistant, account_id: str) -> None:
    """Withdraw every media issue of an extension (it is removed)."""
    for kind in UnavailableMedia:
        async_delete_media_unavailable_issue(hass, kind, account_id)


class RegisteredExtension(Protocol):
    """What the TLS certificate issue reads of an extension's status."""

    @property
    def extension(self) -> str:
        """The SIP user of the extension."""

    @property
    def registration(self) -> RegistrationState | None:
        """Where its registration stands, once known."""


@callback
def async_update_tls_certificate_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    extensions: Iterable[RegisteredExtension],
) -> None:
    """Raise the TLS certificate issue while an extension has that status, else withdraw it."""
    for status in extensions:
        state = status.registration
        if (
            state is not None
            and state.status is RegistrationStatus.TLS_CERTIFICATE_INVALID
        ):
            ir.async_create_issue(
                hass,
                DOMAIN,
                tls_certificate_invalid_issue_id(entry.entry_id),
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_TLS_CERTIFICATE_INVALID,
                translation_placeholders={
                    CONF_SERVER: entry.title,
                    CONF_EXTENSION: status.extension,
                    "reason": state.reason,
                },
            )
            return
    async_delete_tls_certificate_issue(hass, entry)


@callback
def async_delete_tls_certificate_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Withdraw the TLS certificate issue of an entry."""
    ir.async_delete_issue(
        hass, DOMAIN, tls_certificate_invalid_issue_id(entry.entry_id)
    )


class RejectedCredentialsRepairFlow(RepairsFlow):
    """Take new credentials for a rejected extension, register once, store them."""

    def __init__(self, entry_id: str, subentry_id: str) -> None:
        """Remember which extension to fix."""
        self._entry_id = entry_id
        self._subentry_id = subentry_id

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> FlowResult:
        """Start the flow (`user_input` holds the issue id here, not form input)."""
        return await self.async_step_credentials()

    async def async_step_credentials(
        self, user_input: dict[str, Any] | None = None
    ) -> FlowResult:
        """Ask for the new authentication ID and password."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._subentry_id not in entry.subentries:
            return self.async_abort(reason="extension_not_found")
        subentry = entry.subentries[self._subentry_id]
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            errors, placeholders = await async_renew_credentials(
                self.hass, entry, subentry, user_input
            )
            if not errors:
                # The repairs flow manager deletes the issue.
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="credentials",
            data_schema=self.add_suggested_values_to_schema(
                renew_credentials_schema(),
                {CONF_AUTH_ID: subentry.data[CONF_AUTH_ID]},
            ),
            errors=errors,
            description_placeholders=placeholders
            | {
                CONF_EXTENSION: subentry.data[CONF_EXTENSION],
                CONF_SERVER: entry.title,
            },
        )


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """Return the fix flow of a fixable issue (only rejected credentials are)."""
    data = data or {}
    return RejectedCredentialsRepairFlow(
        str(data.get(_ENTRY_ID, "")), str(data.get(_SUBENTRY_ID, ""))
    )
