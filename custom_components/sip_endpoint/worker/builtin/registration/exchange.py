"""One REGISTER exchange: the request, its digest challenges and 423 answers.

``RegisterClient.exchange`` sends one REGISTER (or a query, without Contact) to a
resolved next hop and follows what the registrar asks: a 401 or 407 is answered with
the account's digest credentials (``sip/digest.py`` tells a stale nonce from refused
credentials), a 423 Interval Too Brief is followed with its Min-Expires. Exchanges of
one account run one at a time, so CSeq and the digest nonce counts stay in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING

from ..sip.digest import CredentialsRejected, DigestError
from .bindings import granted_expires, lists_binding, min_expires
from .host import TRANSPORT_ERROR_CODE, NoAnswer, Outcome
from .requests import build_register
from .timing import MAX_INTERVAL_RETRIES

if TYPE_CHECKING:
    from ..sip.digest import DigestSession
    from ..sip.message import SipUri
    from .host import AccountHost
    from .requests import RegisterSequence
    from .target import AccountAddresses, Destination

_LOGGER = logging.getLogger(__name__)

# One exchange sends at most this many requests: challenges, stale nonces and
# 423 Interval Too Brief each add one.
MAX_REQUESTS_PER_EXCHANGE = 6


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """How a REGISTER exchange ended."""

    outcome: Outcome
    granted: int = 0  # seconds granted to our binding (a 2xx to a binding REGISTER)
    listed: bool = False  # the 2xx listed our Contact exactly as we sent it


class RegisterClient:
    """Sends an account's REGISTER requests, one exchange at a time."""

    def __init__(
        self,
        host: AccountHost,
        addresses: AccountAddresses,
        digest: DigestSession,
        sequence: RegisterSequence,
    ) -> None:
        """Keep what every REGISTER of the account shares."""
        self._host = host
        self._addresses = addresses
        self._digest = digest
        self._sequence = sequence
        self._lock = asyncio.Lock()

    async def exchange(
        self,
        destination: Destination,
        contact: SipUri | None,
        expires: int,
        limit: float | None,
    ) -> RegisterResult:
        """Bind ``contact`` for ``expires`` s (None: query the bindings); never raises.

        ``limit`` (seconds) ends each request's transaction early (None: Timer F).
        """
        async with self._lock:
            return await self._exchange(destination, contact, expires, limit)

    async def _exchange(
        self,
        destination: Destination,
        contact: SipUri | None,
        expires: int,
        limit: float | None,
    ) -> RegisterResult:
        addresses = self._addresses
        uri = str(addresses.registrar)
        auth = self._digest.preemptive(method="REGISTER", uri=uri)
        interval_retries = 0
        outcome: Outcome = NoAnswer(TRANSPORT_ERROR_CODE, "not sent")
        for _ in range(MAX_REQUESTS_PER_EXCHANGE):
            request = build_register(
                self._sequence,
                registrar=addresses.registrar,
                aor=addresses.aor,
                contact=contact,
                expires=expires,
                route_set=addresses.route_set,
            )
            for name, value in auth:
                request.headers.add(name, value)
            outcome = await self._host.send_request(request, destination, limit)
            if isinstance(outcome, NoAnswer):
                return RegisterResult(outcome)
            if outcome.status in (401, 407):
                name = (
                    "Proxy-Authenticate"
                    if outcome.status == 407
                    else "WWW-Authenticate"
                )
                try:
                    auth = self._digest.answer(
                        outcome.status,
                        outcome.headers.get_lines(name),
                        method="REGISTER",
                        uri=uri,
                    )
                except (CredentialsRejected, DigestError) as err:
                    _LOGGER.info("%s: credentials refused: %s", addresses.aor, err)
                    return RegisterResult(outcome)
                continue
            if (
                outcome.status == 423
                and contact is not None
                and expires
                and interval_retries < MAX_INTERVAL_RETRIES
            ):
                interval_retries += 1
                least = min_expires(outcome)
                if least is None or least <= expires:
                    return RegisterResult(outcome)
                expires = least
                auth = self._digest.preemptive(method="REGISTER", uri=uri)
                continue
            if 200 <= outcome.status < 300:
                self._digest.accepted()
                if contact is not None:
                    return RegisterResult(
                        outcome,
                        granted_expires(outcome, contact, expires),
                        lists_binding(outcome, contact),
                    )
            return RegisterResult(outcome)
        return RegisterResult(outcome)
