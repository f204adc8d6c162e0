"""Config, subentry and options flows of the SIP Endpoint integration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

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
from homeassistant.core import HomeAssistant, callback
import voluptuous as vol

from .const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_EXTENSION,
    CONF_PORT,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TRANSPORT,
    DEFAULT_PORT,
    DOMAIN,
    MAX_PAGE_EXTENSIONS,
    MAX_RING_EXTENSIONS,
    REAUTH_SUBENTRY_ID,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from .flow_schemas import (
    ADVANCED_SECTION,
    ADVANCED_SETUP_FIELDS,
    ROLE_MENU_STEPS,
    ROLE_TITLES,
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
    CREDENTIAL_ERROR_FIELDS,
    SERVER_ERRORS,
    async_check_registration,
    async_check_server,
    async_renew_credentials,
    async_validate_engine_choice,
    async_validate_tls_ca_file,
    blank_check_placeholders,
    engine_in_use_placeholders,
    extension_data,
    field_errors,
    is_silence,
    port_mismatch,
    server_unique_id,
    validate_credentials,
    validate_engine_options,
    validate_role_options,
    validate_server,
    worker_venv_placeholders,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# Bind addresses that mean "every local address".
ANY_ADDRESSES: Final = frozenset({"0.0.0.0", "::"})  # noqa: S104

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


def _section_input(
    server: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, Any]:
    """Return server fields and setup options in the shape the server form submits."""
    return {**server, ADVANCED_SECTION: dict(options)}


class _RoleSteps[ResultT]:
    """The role menu's steps (one per role) and the role options' steps."""

    async def _async_step_chosen_role(self, role: ExtensionRole) -> ResultT:
        raise NotImplementedError

    async def _async_step_role_options(
        self, user_input: dict[str, Any] | None
    ) -> ResultT:
        raise NotImplementedError

    async def async_step_add_page(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Add a page extension (chosen in the role menu)."""
        return await self._async_step_chosen_role(ExtensionRole.PAGE)

    async def async_step_add_ring(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Add a ring extension (chosen in the role menu)."""
        return await self._async_step_chosen_role(ExtensionRole.RING)

    async def async_step_add_emergency_alert(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Add an emergency alert extension (chosen in the role menu)."""
        return await self._async_step_chosen_role(ExtensionRole.EMERGENCY_ALERT)

    async def async_step_add_call_to_cancel(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Add a call-to-cancel extension (chosen in the role menu)."""
        return await self._async_step_chosen_role(ExtensionRole.CALL_TO_CANCEL)

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


class _PortCheck:
    """Asks once before keeping a port that is another transport's standard port."""

    def __init__(self) -> None:
        """Start with nothing confirmed."""
        self._confirmed: tuple[Any, Any] | None = None

    def errors(self, server: Mapping[str, Any]) -> dict[str, str]:
        """Return the port's error the first time a mismatch is submitted."""
        if not port_mismatch(server):
            return {}
        submitted = (server.get(CONF_TRANSPORT), server.get(CONF_PORT))
        if self._confirmed == submitted:
            return {}
        self._confirmed = submitted
        return {CONF_PORT: "port_transport_mismatch"}


class _Insistence:
    """Remembers a server that did not answer, so that submitting it again goes on."""

    def __init__(self) -> None:
        """Start with nothing remembered."""
        self._silent: dict[str, Any] | None = None

    async def async_check(
        self,
        hass: HomeAssistant,
        server: Mapping[str, Any],
        options: Mapping[str, Any],
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Check the server; silence is an error only the first time it is submitted."""
        submitted = dict(server)
        errors, placeholders = await async_check_server(
            hass, server, options, allow_silence=submitted == self._silent
        )
        self._silent = submitted if is_silence(errors) else None
        return errors, placeholders


class SipEndpointConfigFlow(_RoleSteps[ConfigFlowResult], ConfigFlow, domain=DOMAIN):
    """Set up a SIP server with its first extension, reconfigure it, renew credentials."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._server: dict[str, Any] = {}
        self._options: dict[str, Any] = {}
        self._role = ExtensionRole.PAGE  # replaced by the role menu's choice
        self._extension: dict[str, Any] = {}
        self._port_check = _PortCheck()
        self._insistence = _Insistence()
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
            server = _pick(fields, SERVER_FIELDS)
            options = _pick(fields, ADVANCED_SETUP_FIELDS)
            errors = (
                validate_server(server)
                | validate_engine_options(options)
                | self._port_check.errors(server)
            )
            if not errors:
                errors = await async_validate_engine_choice(
                    self.hass, options
                ) | await async_validate_tls_ca_file(self.hass, options)
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
            if not errors and (extensions := _extension_subentries(entry)):
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


class ExtensionSubentryFlow(_RoleSteps[SubentryFlowResult], ConfigSubentryFlow):
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
            extensions = _extension_subentries(self._get_entry())
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
                    for sub in _extension_subentries(entry)
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
                    for sub in _extension_subentries(entry)
                ):
                    return self.async_abort(reason="already_configured")
                if extension != _pick(subentry.data, tuple(extension)):
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
            suggested = _pick(subentry.data, (CONF_EXTENSION, CONF_AUTH_ID))
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
