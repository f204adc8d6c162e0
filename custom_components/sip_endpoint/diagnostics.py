"""Diagnostics of SIP Endpoint: configuration without secrets, engine, statuses, workers."""

from dataclasses import asdict
import time
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant

from .const import CONF_AUTH_ID
from .engine import SipEngine
from .protocol.payloads import WorkerStatus
from .runtime import ExtensionStatus, SipEndpointConfigEntry

TO_REDACT = {CONF_PASSWORD, CONF_AUTH_ID, "access_code"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SipEndpointConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    runtime = entry.runtime_data
    now = time.time()
    statuses = await runtime.engine.worker_statuses()
    return {
        "entry": {
            "data": dict(entry.data),
            "options": dict(entry.options),
        },
        "engine": _engine(runtime.engine),
        "extensions": {
            subentry_id: {
                "title": subentry.title,
                "data": async_redact_data(dict(subentry.data), TO_REDACT),
                "status": _status(runtime.extensions.get(subentry_id)),
            }
            for subentry_id, subentry in entry.subentries.items()
        },
        "workers": [
            {
                **asdict(worker),
                "uptime": (
                    round(now - worker.started_at, 1)
                    if worker.started_at is not None
                    else None
                ),
                "status": _worker_status(statuses.get(worker.index)),
            }
            for worker in runtime.engine.workers()
        ],
        "registration_exchanges": [
            exchange.to_wire()
            for status in statuses.values()
            for exchange in status.exchanges
        ],
    }


def _engine(engine: SipEngine) -> dict[str, Any] | None:
    """Say which engine runs, on which interpreter, and what one worker holds."""
    selected = engine.selected_engine
    if selected is None:
        return None
    return {
        "name": selected.name,
        "python": selected.python,
        "python_version": selected.python_version,
        "max_accounts_per_worker": engine.limits.max_accounts,
        "max_calls_per_worker": engine.limits.max_calls,
    }


def _worker_status(status: WorkerStatus | None) -> dict[str, Any] | None:
    """Say what a running worker holds now: accounts, calls, memory (None: no answer)."""
    if status is None:
        return None
    return {
        "accounts": status.accounts,
        "calls": status.calls,
        "rss_kib": status.rss_kib,
    }


def _status(status: ExtensionStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "role": status.role,
        "call_state": status.call_state,
        "registration": (
            status.registration.to_wire() if status.registration is not None else None
        ),
        "last_failure": (
            status.last_failure.to_wire() if status.last_failure is not None else None
        ),
    }
