"""Building blocks shared by the config and extension flows.

The role menu's steps and the role options' steps (`RoleSteps`), the two questions a
server form asks only once (`PortConfirmation`, `SilenceConfirmation`), and helpers
that read an entry's extensions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .const import (
    CONF_PORT,
    CONF_ROLE,
    CONF_TRANSPORT,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from .flow_validation import async_check_server, is_silence, port_mismatch

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry, ConfigSubentry
    from homeassistant.core import HomeAssistant


def extension_subentries(entry: ConfigEntry) -> list[ConfigSubentry]:
    """Return the entry's extension subentries in creation order."""
    return [
        subentry
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_TYPE_EXTENSION
    ]


def alert_extensions(entry: ConfigEntry) -> dict[str, str]:
    """Return the emergency alert extensions of an entry: subentry id to title."""
    return {
        subentry.subentry_id: subentry.title
        for subentry in extension_subentries(entry)
        if subentry.data[CONF_ROLE] == ExtensionRole.EMERGENCY_ALERT
    }


def pick(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Return the items of `data` whose keys are in `keys`."""
    return {key: data[key] for key in keys if key in data}


class RoleSteps[ResultT]:
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


class PortConfirmation:
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


class SilenceConfirmation:
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
