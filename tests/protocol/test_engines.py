"""The engine table both ends go by."""

import pytest

from custom_components.sip_endpoint.protocol.engines import ENGINE_LIMITS, EngineName


def test_every_engine_has_limits() -> None:
    """Each engine a hello may name has limits that admit work."""
    assert set(ENGINE_LIMITS) == set(EngineName)
    for limits in ENGINE_LIMITS.values():
        assert limits.max_accounts >= 1
        assert limits.max_calls >= 1


def test_table_is_read_only() -> None:
    """Nobody changes the limits at run time (the workers' constants must match)."""
    with pytest.raises(TypeError):
        ENGINE_LIMITS[EngineName.BUILTIN] = ENGINE_LIMITS[EngineName.PJSUA2]  # type: ignore[index]


def test_engine_names_are_the_hello_strings() -> None:
    """The enum values are what a worker's hello and `launch.py --engine` use."""
    assert [name.value for name in EngineName] == ["pjsua2", "builtin"]
