"""When to try a failed registration again."""

import random

from ...protocol.status import RegistrationStatus

MAX_DELAY = 15 * 60.0
MAX_DELAY_REJECTED = 60 * 60.0
JITTER = 0.1
_SLOW_STATUSES = frozenset(
    {RegistrationStatus.REJECTED_BY_SERVER, RegistrationStatus.NOT_FOUND}
)


def retry_delay(
    status: RegistrationStatus,
    failures: int,
    retry_interval: float,
    *,
    rng: random.Random | None = None,
) -> float:
    """Return the seconds to wait before the next REGISTER after ``failures`` failures.

    Any failure is retried after about ``retry_interval`` seconds, doubling with each
    failure in a row up to 15 minutes. A server that refused the credentials or does
    not know the user is left alone longer: twice the interval, capped at one hour.
    A small random jitter keeps many extensions from retrying in lockstep.
    """
    interval = max(retry_interval, 1.0)
    if status in _SLOW_STATUSES:
        base, cap = 2 * interval, MAX_DELAY_REJECTED
    else:
        base, cap = interval, MAX_DELAY
    exponent = min(max(failures - 1, 0), 16)
    delay = min(base * 2**exponent, cap)
    spread: float = (rng or random).uniform(-JITTER, JITTER)
    return float(max(delay * (1 + spread), 0.5))
