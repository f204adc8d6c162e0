"""Typed accessors for data entry flow results in the flow tests."""

from collections.abc import Mapping
from typing import Any

import voluptuous as vol


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
