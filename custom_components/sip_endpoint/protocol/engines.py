"""The worker engines and what one worker process of each holds.

`ENGINE_LIMITS` is the one table of these numbers. The Home Assistant side uses it to
place extensions before a worker has said hello; a worker's `Hello` then states its
limits, and the supervisor goes by those. The workers' own constants must match this
table (worker/pjsua2/stack.py: MAX_ACCOUNTS, MAX_CALLS_LIMIT; the built-in engine's
limits), and tests/engine/test_engine_limits.py launches each worker and compares its
hello with it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

# The one pin of the pjsua2 engine's package (requirements_worker.txt repeats it for pip).
PJSUA2_REQUIREMENT: Final = "pjsua2-python==2.15.1.post1"


class EngineName(StrEnum):
    """A worker implementation, as a worker's hello names it."""

    PJSUA2 = "pjsua2"  # pjsua2-python on CPython 3.12, x86_64 glibc
    BUILTIN = "builtin"  # pure Python, on Home Assistant's own interpreter


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """What one worker process holds."""

    max_accounts: int  # extensions
    max_calls: int  # calls at once


ENGINE_LIMITS: Final[Mapping[EngineName, EngineLimits]] = MappingProxyType(
    {
        # PJSUA_MAX_ACC of the pjsua2 wheel: a 9th account aborts the process.
        EngineName.PJSUA2: EngineLimits(max_accounts=8, max_calls=4),
        EngineName.BUILTIN: EngineLimits(max_accounts=100, max_calls=32),
    }
)
