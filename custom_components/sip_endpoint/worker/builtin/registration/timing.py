"""When a registration is refreshed, and how long a liveness probe may wait.

pjsua refreshes a registration 5 s before it expires; so does the built-in engine.
Under 10 s that would be half-way or earlier (or already past), so the refresh comes
half-way instead: never later than 90 % of a short expiry.
"""

REFRESH_MARGIN = 5.0
SHORT_EXPIRY = 10
MIN_REFRESH_DELAY = 0.5

# A liveness probe (OPTIONS to the registrar) waits this long for any final answer
# instead of Timer F's 32 s: with OPTIONS every 10 s a dead registrar shows within
# 10 + 4 = 14 s, with the default 30 s keep-alive within 34 s. Over UDP the probe's
# transaction still retransmits (Timer E) inside that window.
PROBE_TIMEOUT = 4.0

# After `remove_account` or `shutdown`, wait at most this long for the answer to
# REGISTER with Expires: 0 (pjsua2's unregWaitMsec is 2000 too).
UNREGISTER_TIMEOUT = 2.0

# How many stale=true challenges one REGISTER attempt answers before giving up.
MAX_STALE_RETRIES = 2

# How many 423 Interval Too Brief answers one attempt follows.
MAX_INTERVAL_RETRIES = 2


def refresh_delay(expires: int) -> float:
    """Return the seconds after a successful REGISTER to send the refresh."""
    if expires < SHORT_EXPIRY:
        return max(expires / 2, MIN_REFRESH_DELAY)
    return expires - REFRESH_MARGIN


def probe_timeout(interval: float) -> float:
    """Return how long a liveness probe sent every ``interval`` seconds may wait.

    Never longer than the interval itself, so probes do not pile up; never under 1 s.
    """
    return max(min(PROBE_TIMEOUT, interval), 1.0)
