"""The built-in engine's limits and waits, in one place (hello announces the limits)."""

from typing import Final

MAX_ACCOUNTS: Final = 100  # extensions one worker holds
MAX_CALLS: Final = 32  # calls one worker holds at once (StartParams.max_calls caps it)

# How long the teardown waits for calls to end before it unregisters.
HANGUP_WAIT: Final = 2.0
