"""Config and options flows of the SIP Endpoint integration.

Setup asks for the server (checked within seconds), the first extension's role in a
menu, its credentials (registered once), then the role's options. The extension
subentry flow is in extension_flow.py, the steps both share in flow_steps.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import callback
import voluptuous as vol

from .const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_EXTENSION,
    CONF_PORT,
    CONF_ROLE,
    CONF_SERVER,
    DEFAULT_PORT,
    DOMAIN,
    REAUTH_SUBENTRY_ID,
    ROLE_TITLES,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from .extension_flow import ExtensionSubentryFlow
from .flow_schemas import (
    ADVANCED_SECTION,
    ADVANCED_SETUP_FIELDS,
    ROLE_MENU_STEPS,
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
from .flow_steps import (
    PortConfirmation,
    RoleSteps,
    SilenceConfirmation,
    extension_subentries,
    pick,
)
from .flow_validation import (
    CREDENTIAL_ERROR_FIELDS,
    SERVER_ERRORS,
    async_check_registration,
    async_renew_credentials,
    async_validate_bind_host,
    async_validate_engine_choice,
    async_validate_role_options,
    async_validate_tls_ca_file,
    blank_check_placeholders,
    engine_in_use_placeholders,
    extension_data,
    field_errors,
    server_unique_id,
    validate_credentials,
    validate_engine_options,
    validate_server,
    worker_venv_placeholders,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# Bind addresses that mean "every local address".
ANY_ADDRESSES: Final = frozenset({"0.0.0.0", "::"})  # noqa: S104


def _section_input(
    server: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, Any]:
    """Return server fields and setup options in the shape the server form submits."""
    return {**server, ADVANCED_SECTION: dict(options)}


class SipEndpointConfigFlow(RoleSteps[ConfigFlowResult], ConfigFlow, domain=DOMAIN):
    """Set up a SIP server with its first extension, reconfigure it, renew credentials."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._server: dict[str, Any] = {}
        self._options: dict[str, Any] = {}
        self._role = ExtensionRole.PAGE  # replaced by the role menu's choice
        self._extension: dict[str, Any] = {}
        self._port_check = PortConfirmation()
        self._insistence = SilenceConfirmation()
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
        """Ask for the SIP server and check within seconds that it answers."""
        errors: dict[str, str] = {}
        placeholders = blank_check_placeholders(self.hass)
        if user_input is not None:
            fields = flatten_advanced_section(user_input)
            server = pick(fields, SERVER_FIELDS)
            options = pick(fields, ADVANCED_SETUP_FIELDS)
            errors = (
                validate_server(server)
                | validate_engine_options(options)
                | self._port_check.errors(server)
            )
            if not errors:
                errors = await async_validate_engine_choice(
                    self.hass, options
                ) | await async_validate_tls_ca_file(self.hass, options)
                errors |= await async_validate_bind_host(self.hass, options)
            if not errors:
                await self.async_set_unique_id(server_unique_id(server))
                self._abort_if_unique_id_configured()
                errors, placeholders = await self._insistence.async_check(
                    self.hass, server, options
                )
            if not errors:
                self._server, self._options = server, options
                if self._extension:
                    # Back here after a server error of the registration test.
                    return await self._async_register_first_extension()
                return await self.async_step_role()
        return self._show_server_form(
            user_input or {CONF_PORT: DEFAULT_PORT}, errors, placeholders
        )

    def _show_server_form(
        self,
        suggested: Mapping[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> ConfigFlowResult:
        """Show the server form (step `user`) with its advanced section."""
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(server_schema() | advanced_setup_section()), suggested
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_role(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask what the first extension does: a menu, so the role is a choice."""
        return self.async_show_menu(
            step_id="role",
            menu_options=list(ROLE_MENU_STEPS.values()),
            description_placeholders={CONF_SERVER: self._server[CONF_SERVER]},
        )

    async def _async_step_chosen_role(self, role: ExtensionRole) -> ConfigFlowResult:
        self._role = role
        return await self.async_step_extension()

    async def async_step_extension(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the first extension's credentials, then register it once."""
        if user_input is not None:
            if errors := validate_credentials(user_input):
                return self._show_extension_form(
                    user_input, errors, blank_check_placeholders(self.hass)
                )
            self._extension = extension_data(self._role, user_input)
            return await self._async_register_first_extension()
        return self._show_extension_form(None, {}, blank_check_placeholders(self.hass))

    def _show_extension_form(
        self,
        suggested: Mapping[str, Any] | None,
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> ConfigFlowResult:
        """Show the first extension's credentials form (step `extension`)."""
        return self.async_show_form(
            step_id="extension",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(credentials_schema(password_required=True)), suggested
            ),
            errors=errors,
            description_placeholders=placeholders
            | {"role": ROLE_TITLES[self._role], CONF_SERVER: self._server[CONF_SERVER]},
        )

    async def _async_register_first_extension(self) -> ConfigFlowResult:
        """Register the first extension once; show a failure where it can be fixed."""
        check = await async_check_registration(
            self.hass, self._server, self._options, self._extension
        )
        if check.error is None:
            return await self._async_step_role_options(None)
        if check.error in SERVER_ERRORS:
            # The server form fixes these; the credentials are kept for the retry.
            return self._show_server_form(
                _section_input(self._server, self._options),
                {"base": check.error},
                check.placeholders,
            )
        suggested = dict(self._extension)
        if suggested[CONF_AUTH_ID] == suggested[CONF_EXTENSION]:
            del suggested[CONF_AUTH_ID]
        self._extension = {}
        return self._show_extension_form(
            suggested,
            field_errors(check.error, CREDENTIAL_ERROR_FIELDS),
            check.placeholders,
        )

    async def _async_step_role_options(
        self, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Ask for the first extension's role options, then create the entry."""
        role = ExtensionRole(self._extension[CONF_ROLE])
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await async_validate_role_options(self.hass, role, user_input)
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
        if user_input is not None and not (
            errors := validate_server(user_input) | self._port_check.errors(user_input)
        ):
            unique_id = server_unique_id(user_input)
            if unique_id != entry.unique_id:
                await self.async_set_unique_id(unique_id, raise_on_progress=False)
                self._abort_if_unique_id_configured()
            errors, placeholders = await self._insistence.async_check(
                self.hass, user_input, entry.options
            )
            if not errors and (extensions := extension_subentries(entry)):
                check = await async_check_registration(
                    self.hass, user_input, entry.options, extensions[0].data
                )
                placeholders = check.placeholders
                if check.error is not None:
                    errors = {"base": check.error}
            if not errors:
                # A title the user chose is kept; one that was the address follows it.
                title = entry.title
                if title == entry.data.get(CONF_SERVER):
                    title = user_input[CONF_SERVER]
                # The update listener of the integration reloads the entry.
                self.hass.config_entries.async_update_entry(
                    entry, unique_id=unique_id, title=title, data=user_input
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
            if base := errors.pop("base", None):
                # The password field is the one a rejection most likely concerns.
                errors |= field_errors(base, {"rejected_by_server": CONF_PASSWORD})
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
                errors |= await async_validate_bind_host(self.hass, user_input)
            if not errors:
                return self.async_create_entry(data=user_input)
        suggested = dict(user_input or self.config_entry.options)
        if suggested.get(CONF_BIND_HOST) in ANY_ADDRESSES:
            # Every address: shown as the empty field, as in the setup form.
            del suggested[CONF_BIND_HOST]
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                options_schema(), suggested
            ),
            errors=errors,
            description_placeholders=worker_venv_placeholders(self.hass)
            | engine_in_use_placeholders(self.config_entry),
        )
