"""The guard that fails integration tests on Home Assistant's deprecation warnings."""

import logging

import pytest

from .conftest import _HomeAssistantWarnings


def _record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "homeassistant.helpers.frame",
            "Detected that custom integration 'sip_endpoint' calls X",
        ),
        (
            "homeassistant.data_entry_flow",
            "The deprecated function show_advanced_options was called from sip_endpoint",
        ),
        (
            "homeassistant.helpers.entity",
            (
                "Entity x is doing Y, please report it to the author of the "
                "'sip_endpoint' custom integration"
            ),
        ),
    ],
)
def test_reports_are_collected(name: str, message: str) -> None:
    """Frame reports, deprecations and author reports count."""
    guard = _HomeAssistantWarnings()
    guard.handle(_record(name, message))
    assert guard.found == [f"{name}: {message}"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("custom_components.sip_endpoint.engine", "deprecated option"),
        (
            "homeassistant.config_entries",
            "Config entry 'Test PBX' for sip_endpoint integration not ready yet",
        ),
    ],
)
def test_other_records_pass(name: str, message: str) -> None:
    """The integration's own warnings and expected outcomes pass."""
    guard = _HomeAssistantWarnings()
    guard.handle(_record(name, message))
    assert guard.found == []


def test_only_warnings_and_up() -> None:
    """Loggers hand the guard WARNING records and up only (INFO may say anything)."""
    assert _HomeAssistantWarnings().level == logging.WARNING
