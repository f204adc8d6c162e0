"""The extension subentry flow: add an extension, or change its credentials and options."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_PASSWORD
import voluptuous as vol

from .const import (
    CONF_AUTH_ID,
    CONF_EXTENSION,
    CONF_ROLE,
    CONF_SERVER,
    MAX_PAGE_EXTENSIONS,
    MAX_RING_EXTENSIONS,
    ROLE_TITLES,
    ExtensionRole,
)
from .flow_schemas import (
    ROLE_MENU_STEPS,
    credentials_schema,
    extension_title,
    role_options_schema,
)
from .flow_steps import RoleSteps, alert_extensions, extension_subentries, pick
from .flow_validation import (
    CREDENTIAL_ERROR_FIELDS,
    async_check_registration,
    async_validate_role_options,
    blank_check_placeholders,
    extension_data,
    field_errors,
    validate_credentials,
)

_ROLE_LIMITS = {
    ExtensionRole.PAGE: (MAX_PAGE_EXTENSIONS, "max_page_extensions"),
    ExtensionRole.RING: (MAX_RING_EXTENSIONS, "max_ring_extensions"),
}


class ExtensionSubentryFlow(RoleSteps[SubentryFlowResult], ConfigSubentryFlow):
    """Add an extension to a SIP server, or change its credentials and options."""

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._role = ExtensionRole.PAGE  # replaced by the role menu's choice
        self._extension: dict[str, Any] = {}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask what the new extension does: a menu, so the role is a choice."""
        return self.async_show_menu(
            step_id="user", menu_options=list(ROLE_MENU_STEPS.values())
        )

    async def _async_step_chosen_role(self, role: ExtensionRole) -> SubentryFlowResult:
        if role in _ROLE_LIMITS:
            limit, reason = _ROLE_LIMITS[role]
            extensions = extension_subentries(self._get_entry())
            if sum(sub.data[CONF_ROLE] == role for sub in extensions) >= limit:
                return self.async_abort(reason=reason)
        self._role = role
        return await self.async_step_extension()

    async def async_step_extension(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the new extension's credentials, and register it once."""
        entry = self._get_entry()
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            errors = validate_credentials(user_input)
            if not errors:
                if any(
                    sub.data[CONF_EXTENSION] == user_input[CONF_EXTENSION]
                    for sub in extension_subentries(entry)
                ):
                    return self.async_abort(reason="already_configured")
                extension = extension_data(self._role, user_input)
                check = await async_check_registration(
                    self.hass, entry.data, entry.options, extension
                )
                placeholders = check.placeholders
                if check.error is None:
                    self._extension = extension
                    return await self._async_step_role_options(None)
                errors = field_errors(check.error, CREDENTIAL_ERROR_FIELDS)
        return self.async_show_form(
            step_id="extension",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(credentials_schema(password_required=True)), user_input
            ),
            errors=errors,
            description_placeholders=placeholders
            | {"role": ROLE_TITLES[self._role], CONF_SERVER: entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change an extension's credentials (registered once when they change)."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            extension = extension_data(
                subentry.data[CONF_ROLE],
                {CONF_PASSWORD: subentry.data[CONF_PASSWORD]} | user_input,
            )
            errors = validate_credentials(extension)
            if not errors:
                if any(
                    sub.data[CONF_EXTENSION] == extension[CONF_EXTENSION]
                    and sub.subentry_id != subentry.subentry_id
                    for sub in extension_subentries(entry)
                ):
                    return self.async_abort(reason="already_configured")
                if extension != pick(subentry.data, tuple(extension)):
                    check = await async_check_registration(
                        self.hass, entry.data, entry.options, extension
                    )
                    placeholders = check.placeholders
                    if check.error is not None:
                        errors = field_errors(check.error, CREDENTIAL_ERROR_FIELDS)
            if not errors:
                self._extension = extension
                return await self._async_step_role_options(None)
        suggested = user_input
        if suggested is None:
            # The authentication ID is left empty when it is the extension itself,
            # as its help says to do.
            suggested = pick(subentry.data, (CONF_EXTENSION, CONF_AUTH_ID))
            if suggested.get(CONF_AUTH_ID) == suggested[CONF_EXTENSION]:
                del suggested[CONF_AUTH_ID]
        role = ExtensionRole(subentry.data[CONF_ROLE])
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(credentials_schema(password_required=False)), suggested
            ),
            errors=errors,
            description_placeholders=placeholders
            | {
                CONF_EXTENSION: subentry.data[CONF_EXTENSION],
                "role": ROLE_TITLES[role].lower(),
            },
        )

    async def _async_step_role_options(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Ask for the role options, then create or update the subentry."""
        entry = self._get_entry()
        role = ExtensionRole(self._extension[CONF_ROLE])
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await async_validate_role_options(self.hass, role, user_input)
            if not errors:
                data = self._extension | user_input
                title = extension_title(role, data[CONF_EXTENSION])
                if self.source == SOURCE_USER:
                    return self.async_create_entry(
                        title=title, data=data, unique_id=data[CONF_EXTENSION]
                    )
                # The update listener applies new credentials and options.
                return self.async_update_and_abort(
                    entry,
                    self._get_reconfigure_subentry(),
                    title=title,
                    data=data,
                    unique_id=data[CONF_EXTENSION],
                )
        suggested = user_input
        if suggested is None and self.source != SOURCE_USER:
            suggested = dict(self._get_reconfigure_subentry().data)
        return self.async_show_form(
            step_id=role.value,
            data_schema=self.add_suggested_values_to_schema(
                role_options_schema(role, alert_extensions(entry)), suggested
            ),
            errors=errors,
            description_placeholders={CONF_EXTENSION: self._extension[CONF_EXTENSION]},
        )
