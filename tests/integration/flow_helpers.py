"""Helpers of the flow tests: typed result accessors and a translation check."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    FlowHandler,
    FlowManager,
    FlowResultType,
    section as FormSection,
)
from homeassistant.helpers import issue_registry as ir
import voluptuous as vol

from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_EXTENSION,
    CONF_PORT,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_WORKER_PYTHON,
    ExtensionRole,
)
from custom_components.sip_endpoint.flow_schemas import (
    ADVANCED_SECTION,
    ROLE_MENU_STEPS,
    SERVER_FIELDS,
)
from tests.sipbed.kamailio import Kamailio

# The fields of the extension step.
CREDENTIAL_FIELDS = (CONF_EXTENSION, CONF_AUTH_ID, CONF_PASSWORD)


async def start_subentry_reconfigure(
    hass: HomeAssistant, entry: ConfigEntry, subentry_id: str
) -> SubentryFlowResult:
    """Start a subentry's reconfigure flow.

    MockConfigEntry.start_subentry_reconfigure_flow changed its signature between the
    test packages for Home Assistant 2025.4 and 2026.x; the flow manager call is the same.
    """
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, entry.subentries[subentry_id].subentry_type),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )


def placeholders(result: Mapping[str, Any]) -> Mapping[str, str]:
    """Return a form's description placeholders (failing if it has none)."""
    value = result["description_placeholders"]
    assert isinstance(value, Mapping)
    return value


def form_fields(result: Mapping[str, Any]) -> dict[Any, Any]:
    """Return a form's schema fields, keyed by their voluptuous markers."""
    value = result["data_schema"]
    assert isinstance(value, vol.Schema)
    fields: dict[Any, Any] = value.schema
    return fields


def suggested_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """Return the suggested values a form was shown with."""
    return {
        str(marker): marker.description["suggested_value"]
        for marker in form_fields(result)
        if marker.description and "suggested_value" in marker.description
    }


TRANSLATIONS_PATH = (
    Path(__file__).resolve().parents[2]
    / "custom_components"
    / "sip_endpoint"
    / "translations"
    / "en.json"
)
_PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")


def _section(
    manager: FlowManager[Any, Any, Any], flow: FlowHandler[Any, Any, Any]
) -> tuple[str, ...]:
    """Return where a flow's texts live in en.json (call while its issue exists)."""
    if isinstance(flow, ConfigSubentryFlow):
        return ("config_subentries", flow.handler[1])
    if isinstance(flow, OptionsFlow):
        return ("options",)
    if isinstance(flow, RepairsFlow):
        issue = ir.async_get(manager.hass).async_get_issue(flow.handler, flow.issue_id)
        assert issue is not None
        return ("issues", issue.translation_key or "", "fix_flow")
    return ("config",)


def _lookup(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def placeholders_used(text: str) -> set[str]:
    """Return the names of the `{placeholders}` in a text."""
    return set(_PLACEHOLDER_RE.findall(text))


def untranslated(section: tuple[str, ...], result: Mapping[str, Any]) -> list[str]:
    """Return what a flow result shows without a text, or with unfilled placeholders."""
    tree = json.loads(TRANSLATIONS_PATH.read_text())
    problems: list[str] = []
    texts: list[str] = []

    def need(*path: str) -> None:
        text = _lookup(tree, (*section, *path))
        if not isinstance(text, str):
            problems.append(".".join((*section, *path)))
        else:
            texts.append(text)

    if result["type"] is FlowResultType.ABORT:
        need("abort", result["reason"])
    elif result["type"] is FlowResultType.MENU:
        step = result["step_id"]
        need("step", step, "title")
        for option in result["menu_options"]:
            need("step", step, "menu_options", option)
        given = set(result["description_placeholders"] or {})
        description = _lookup(tree, (*section, "step", step, "description"))
        problems.extend(
            f"{'.'.join(section)}.step.{step}: placeholder {{{name}}} not given"
            for name in placeholders_used(description or "") - given
        )
    elif result["type"] is FlowResultType.FORM:
        step = result["step_id"]
        need("step", step, "title")
        fields = form_fields(result) if result["data_schema"] else {}
        for marker, value in fields.items():
            if isinstance(value, FormSection):
                # A section's name, then its fields under sections.<name>.
                where: tuple[str, ...] = ("step", step, "sections", str(marker))
                need(*where, "name")
                markers = list(value.schema.schema)
            else:
                where, markers = ("step", step), [marker]
            for field in markers:
                need(*where, "data", str(field))
                hint = _lookup(tree, (*section, *where, "data_description", str(field)))
                if isinstance(hint, str):
                    texts.append(hint)
        for error in (result["errors"] or {}).values():
            need("error", error)
        given = set(result["description_placeholders"] or {})
        description = _lookup(tree, (*section, "step", step, "description"))
        for text in [*texts, description or ""]:
            problems.extend(
                f"{'.'.join(section)}.step.{step}: placeholder {{{name}}} not given"
                for name in placeholders_used(text) - given
            )
    return problems


@contextmanager
def flow_translations_checked() -> Iterator[list[str]]:
    """Record what every flow step shows; fail at exit if a text or placeholder lacks."""
    problems: list[str] = []
    original = FlowManager._async_handle_step

    async def handle_step(
        manager: FlowManager[Any, Any, Any],
        flow: FlowHandler[Any, Any, Any],
        step_id: str,
        user_input: Any,
    ) -> Any:
        section = _section(manager, flow)
        result = await original(manager, flow, step_id, user_input)
        problems.extend(untranslated(section, result))
        return result

    with patch.object(FlowManager, "_async_handle_step", handle_step):
        yield problems
    assert not problems, "Untranslated flow results:\n" + "\n".join(
        sorted(set(problems))
    )


def user_input(
    kamailio: Kamailio | None,
    worker_python: Path,
    *,
    role: ExtensionRole = ExtensionRole.PAGE,
    extension: str = "2001",
    password: str | None = None,
    auth_id: str | None = None,
    transport: str = "udp",
    host: str = "127.0.0.1",
    port: int | None = None,
) -> dict[str, Any]:
    """Return every setup field in one dict, for `async_configure_setup`."""
    fields: dict[str, Any] = {
        CONF_SERVER: host,
        CONF_TRANSPORT: transport,
        CONF_ROLE: role,
        CONF_EXTENSION: extension,
        CONF_PASSWORD: password if password is not None else f"pw-{extension}",
        ADVANCED_SECTION: {
            CONF_BIND_HOST: "127.0.0.1",
            CONF_WORKER_PYTHON: str(worker_python),
        },
    }
    if kamailio is not None or port is not None:
        fields[CONF_PORT] = kamailio.port if kamailio is not None else port
    if auth_id is not None:
        fields[CONF_AUTH_ID] = auth_id
    return fields


async def async_configure_setup(
    hass: HomeAssistant, flow_id: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Drive the setup steps (server, role menu, extension) with `user_input` fields.

    Returns the first result that is not the next step: a form with errors, an
    abort, or the role's options form.
    """
    server = {
        key: value
        for key, value in fields.items()
        if key in SERVER_FIELDS or key == ADVANCED_SECTION
    }
    result = await hass.config_entries.flow.async_configure(flow_id, server)
    if result["type"] is not FlowResultType.MENU:
        return dict(result)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"next_step_id": ROLE_MENU_STEPS[ExtensionRole(fields[CONF_ROLE])]}
    )
    credentials = {
        key: value for key, value in fields.items() if key in CREDENTIAL_FIELDS
    }
    return dict(await hass.config_entries.flow.async_configure(flow_id, credentials))
