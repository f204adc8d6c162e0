"""Config, subentry and options flows of the SIP Endpoint integration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import callback
import voluptuous as vol

from .const import (
    CONF_AUTH_ID,
    CONF_EXTENSION,
    CONF_ROLE,
    CONF_SERVER,
    DOMAIN,
    MAX_PAGE_EXTENSIONS,
    MAX_RING_EXTENSIONS,
    REAUTH_SUBENTRY_ID,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from .flow_schemas import (
    ADVANCED_SETUP_FIELDS,
    SERVER_FIELDS,
    advanced_setup_section,
    credentials_schema,
    extension_title,
    flatten_advanced_section,
    options_schema,
    renew_credentials_schema,
    role_options_schema,
    server_schema,
)
from .flow_validation import (
    async_check_registration,
    async_renew_credentials,
    async_validate_engine_choice,
    async_validate_tls_ca_file,
    blank_check_placeholders,
    extension_data,
    server_unique_id,
    validate_credentials,
    validate_engine_options,
    validate_role_options,
    validate_server,
    worker_venv_placeholders,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

_ROLE_LIMITS = {
    ExtensionRole.PAGE: (MAX_PAGE_EXTENSIONS, "max_page_extensions"),
    ExtensionRole.RING: (MAX_RING_EXTENSIONS, "max_ring_extensions"),
}


def _extension_subentries(entry: ConfigEntry) -> list[ConfigSubentry]:
    """Return the entry's extension subentries in creation order."""
    return [
        subentry
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_TYPE_EXTENSION
    ]


def _alert_extensions(entry: ConfigEntry) -> dict[str, str]:
    """Return the emergency alert extensions of an entry: subentry id to title."""
    return {
        subentry.subentry_id: subentry.title
        for subentry in _extension_subentries(entry)
        if subentry.data[CONF_ROLE] == ExtensionRole.EMERGENCY_ALERT
    }


def _pick(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Return the items of `data` whose keys are in `keys`."""
    return {key: data[key] for key in keys if key in data}


class _RoleOptionSteps[ResultT]:
    """One step per role (the step id names the role's options form)."""

    async def _async_step_role_options(
        self, user_input: dict[str, Any] | None
    ) -> ResultT:
        raise NotImplementedError

    async def async_step_page(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Ask for the options of a page extension."""
        return await self._async_step_role_options(user_input)

    async def async_step_ring(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Ask for the options of a ring extension."""
        return await self._async_step_role_options(user_input)

    async def async_step_emergency_alert(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Ask for the options of an emergency alert extension."""
        return await self._async_step_role_options(user_input)

    async def async_step_call_to_cancel(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Ask for the options of a call-to-cancel extension."""
        return await self._async_step_role_options(user_input)


class SipEndpointConfigFlow(
    _RoleOptionSteps[ConfigFlowResult], ConfigFlow, domain=DOMAIN
):
    """Set up a SIP server with its first extension, reconfigure it, renew credentials."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._server: dict[str, Any] = {}
        self._options: dict[str, Any] = {}
        self._extension: dict[str, Any] = {}
        self._reauth_subentry_id = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SipEndpointOptionsFlow:
        """Return the options flow."""
        return SipEndpointOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the subentry flows: one extension per subentry."""
        return {SUBENTRY_TYPE_EXTENSION: ExtensionSubentryFlow}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the SIP server and the first extension, then register it once."""
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            user_input = flatten_advanced_section(user_input)
            server = _pick(user_input, SERVER_FIELDS)
            options = _pick(user_input, ADVANCED_SETUP_FIELDS)
            errors = (
                validate_server(server)
                | validate_credentials(user_input)
                | validate_engine_options(options)
            )
            if not errors:
                errors = await async_validate_engine_choice(
                    self.hass, options
                ) | await async_validate_tls_ca_file(self.hass, options)
            if not errors:
                await self.async_set_unique_id(server_unique_id(server))
                self._abort_if_unique_id_configured()
                extension = extension_data(user_input[CONF_ROLE], user_input)
                check = await async_check_registration(
                    self.hass, server, options, extension
                )
                placeholders = check.placeholders
                if check.error is None:
                    self._server, self._options = server, options
                    self._extension = extension
                    return await self._async_step_role_options(None)
                errors["base"] = check.error
        fields = (
            server_schema()
            | credentials_schema(with_role=True, password_required=True)
            | advanced_setup_section()
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_step_role_options(
        self, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Ask for the first extension's role options, then create the entry."""
        role = ExtensionRole(self._extension[CONF_ROLE])
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = validate_role_options(role, user_input)
            if not errors:
                data = self._extension | user_input
                return self.async_create_entry(
                    title=self._server[CONF_SERVER],
                    data=self._server,
                    options=self._options,
                    subentries=[
                        ConfigSubentryData(
                            data=data,
                            subentry_type=SUBENTRY_TYPE_EXTENSION,
                            title=extension_title(role, data[CONF_EXTENSION]),
                            unique_id=data[CONF_EXTENSION],
                        )
                    ],
                )
        return self.async_show_form(
            step_id=role.value,
            data_schema=self.add_suggested_values_to_schema(
                role_options_schema(role, {}), user_input
            ),
            errors=errors,
            description_placeholders={CONF_EXTENSION: self._extension[CONF_EXTENSION]},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the SIP server settings, tested with the entry's first extension."""
        # The unique ID is the server's address, so changing the address changes it;
        # the flow aborts when another entry already has the new address.
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None and not (errors := validate_server(user_input)):
            unique_id = server_unique_id(user_input)
            if unique_id != entry.unique_id:
                await self.async_set_unique_id(unique_id, raise_on_progress=False)
                self._abort_if_unique_id_configured()
            if extensions := _extension_subentries(entry):
                check = await async_check_registration(
                    self.hass, user_input, entry.options, extensions[0].data
                )
                placeholders = check.placeholders
                if check.error is not None:
                    errors["base"] = check.error
            if not errors:
                # The update listener of the integration reloads the entry.
                self.hass.config_entries.async_update_entry(
                    entry,
                    unique_id=unique_id,
                    title=user_input[CONF_SERVER],
                    data=user_input,
                )
                return self.async_abort(reason="reconfigure_successful")
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(server_schema()), user_input or entry.data
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Renew the credentials of an extension the server rejected."""
        # Started by `entry.async_start_reauth(hass, data={REAUTH_SUBENTRY_ID: id})`:
        # `entry_data` is the entry data merged with the rejected subentry's id.
        entry = self._get_reauth_entry()
        subentry_id = entry_data.get(REAUTH_SUBENTRY_ID)
        if not isinstance(subentry_id, str) or subentry_id not in entry.subentries:
            return self.async_abort(reason="extension_not_found")
        self._reauth_subentry_id = subentry_id
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the new authentication ID and password, and register once."""
        entry = self._get_reauth_entry()
        subentry = entry.subentries[self._reauth_subentry_id]
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            errors, placeholders = await async_renew_credentials(
                self.hass, entry, subentry, user_input
            )
            if not errors:
                return self.async_abort(reason="reauth_successful")
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                renew_credentials_schema(),
                {CONF_AUTH_ID: subentry.data[CONF_AUTH_ID]},
            ),
            errors=errors,
            description_placeholders=placeholders
            | {CONF_EXTENSION: subentry.data[CONF_EXTENSION]},
        )


class ExtensionSubentryFlow(_RoleOptionSteps[SubentryFlowResult], ConfigSubentryFlow):
    """Add an extension to a SIP server, or change its credentials and options."""

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._extension: dict[str, Any] = {}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the role and credentials of a new extension, and register once."""
        entry = self._get_entry()
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            errors = validate_credentials(user_input)
            if not errors:
                role = ExtensionRole(user_input[CONF_ROLE])
                extensions = _extension_subentries(entry)
                if role in _ROLE_LIMITS:
                    limit, reason = _ROLE_LIMITS[role]
                    if sum(sub.data[CONF_ROLE] == role for sub in extensions) >= limit:
                        return self.async_abort(reason=reason)
                if any(
                    sub.data[CONF_EXTENSION] == user_input[CONF_EXTENSION]
                    for sub in extensions
                ):
                    return self.async_abort(reason="already_configured")
                extension = extension_data(role, user_input)
                check = await async_check_registration(
                    self.hass, entry.data, entry.options, extension
                )
                placeholders = check.placeholders
                if check.error is None:
                    self._extension = extension
                    return await self._async_step_role_options(None)
                errors["base"] = check.error
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(credentials_schema(with_role=True, password_required=True)),
                user_input,
            ),
            errors=errors,
            description_placeholders=placeholders,
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
                    for sub in _extension_subentries(entry)
                ):
                    return self.async_abort(reason="already_configured")
                if extension != _pick(subentry.data, tuple(extension)):
                    check = await async_check_registration(
                        self.hass, entry.data, entry.options, extension
                    )
                    placeholders = check.placeholders
                    if check.error is not None:
                        errors["base"] = check.error
            if not errors:
                self._extension = extension
                return await self._async_step_role_options(None)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    credentials_schema(with_role=False, password_required=False)
                ),
                user_input or _pick(subentry.data, (CONF_EXTENSION, CONF_AUTH_ID)),
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_step_role_options(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Ask for the role options, then create or update the subentry."""
        entry = self._get_entry()
        role = ExtensionRole(self._extension[CONF_ROLE])
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = validate_role_options(role, user_input)
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
                role_options_schema(role, _alert_extensions(entry)), suggested
            ),
            errors=errors,
            description_placeholders={CONF_EXTENSION: self._extension[CONF_EXTENSION]},
        )


class SipEndpointOptionsFlow(OptionsFlow):
    """Change how the workers register: engine, keep-alive, expiry, ports, TLS."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and check the options; the update listener reloads the entry."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = validate_engine_options(user_input)
            if not errors:
                errors = await async_validate_engine_choice(
                    self.hass, user_input
                ) | await async_validate_tls_ca_file(self.hass, user_input)
            if not errors:
                return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                options_schema(), user_input or self.config_entry.options
            ),
            errors=errors,
            description_placeholders=worker_venv_placeholders(self.hass),
        )
