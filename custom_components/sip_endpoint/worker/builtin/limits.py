"""The built-in engine's limits and waits, in one place (hello announces the limits)."""

from typing import Final

from ...protocol.engines import ENGINE_LIMITS, EngineName

# What one built-in worker holds: the one table of engine limits (protocol/engines.py).
MAX_ACCOUNTS: Final = ENGINE_LIMITS[EngineName.BUILTIN].max_accounts
MAX_CALLS: Final = ENGINE_LIMITS[EngineName.BUILTIN].max_calls  # StartParams caps it

# How long the teardown waits for calls to end before it unregisters.
HANGUP_WAIT: Final = 2.0
