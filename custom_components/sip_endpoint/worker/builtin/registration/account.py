"""One extension of the built-in engine: REGISTER, digest, refresh, retry, liveness.

The account behaves like the pjsua2 worker's ``ExtensionAccount``: the same
``registration`` events (``registering`` before a first try, a retry or a
``reregister``; the outcome after every REGISTER, refreshes included), the same
status classification, the same ``RegistrationExchange`` records and the same retry
backoff. Beyond pjsua2 it notices a silent registrar (issue 11): a liveness probe
goes to the registrar every keep-alive interval with a short timeout, and once a
silent registrar answers again the extension registers again at once. While
registered, the probe is a REGISTER query (RFC 3261 10.2.3), which also shows a
registrar that restarted and forgot the binding; otherwise (or when the registrar
lists our Contact in another form than we sent it) it is an OPTIONS.

One asyncio task runs the REGISTER schedule and one the liveness probe; both end
with ``unregister`` or ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum
import logging
import random
import time
from typing import TYPE_CHECKING

from ....protocol.payloads import (
    AccountParams,
    EventName,
    KeepaliveMethod,
    RegistrationExchange,
    RegistrationState,
    Transport,
)
from ....protocol.status import (
    FAILURE_STATUSES,
    RegistrationStatus,
    classify_registration_reply,
)
from ...core.backoff import retry_delay
from ...core.dispatch import MIN_SECRET_LENGTH
from ...core.registration_state import RegistrationRecord
from ..sip.digest import CredentialsRejected, DigestError, DigestSession
from ..sip.message import SipRequest, SipResponse, SipUri
from .bindings import lists_binding
from .exchange import RegisterClient
from .host import TIMEOUT_CODE, TRANSPORT_ERROR_CODE, NoAnswer, Outcome
from .requests import RegisterSequence, build_options
from .target import AccountAddresses, Destination, TargetError, local_address, resolve
from .timing import (
    UNREGISTER_TIMEOUT,
    probe_timeout,
    refresh_delay,
)

if TYPE_CHECKING:
    from .host import AccountHost

_LOGGER = logging.getLogger(__name__)

# A REGISTER in flight is sent again when a TCP/TLS connection closes, this often.
MAX_CONNECTION_RESTARTS = 4
# After a TCP/TLS connection closed: probes this many seconds later (while silent).
QUICK_PROBES = (1.0, 2.0, 4.0, 8.0)
FIRST_PROBE_SPREAD = 0.5  # the first probe comes after 50-100 % of the interval
_ANY_HOST = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared, not bound


class Attempt(Enum):
    """How a REGISTER attempt is shown."""

    ANNOUNCED = "announced"  # `registering` first: a first try, a retry, `reregister`
    QUIET = "quiet"  # only the outcome: a refresh, a lost TCP/TLS connection


class BuiltinAccount:
    """One extension's registration with its registrar."""

    def __init__(self, host: AccountHost, params: AccountParams) -> None:
        """Prepare the account; ``start`` sends the first REGISTER.

        Raises ``ValueError`` for a domain, proxy or credentials that cannot be used.
        """
        self._host = host
        self.params = params
        try:
            self.addresses = AccountAddresses.from_params(params)
            self._digest = DigestSession(params.auth_id, params.password)
        except (TargetError, DigestError) as err:
            raise ValueError(str(err)) from err
        if len(params.password) >= MIN_SECRET_LENGTH:
            host.secrets.add(params.password)
        self.registration = RegistrationRecord(
            params.account_id, self.addresses.registrar_text
        )
        self.failures = 0
        self.removing = False
        self.destination: Destination | None = None
        self.contact: SipUri | None = None
        self._client = RegisterClient(
            host, self.addresses, self._digest, RegisterSequence(host.bind_host)
        )
        self._registering = False
        self._pending: Attempt | None = None
        self._exchange_task: asyncio.Future[Outcome] | None = None
        self._granted = 0
        self._binding_listed = False  # the last 200 listed our Contact as sent
        self._due: float | None = None
        self._due_mode = Attempt.ANNOUNCED
        self._wake = asyncio.Event()
        self._probe_wake = asyncio.Event()
        self._quick_probes: list[float] = []  # loop times of probes after a lost link
        self._tasks: list[asyncio.Task[None]] = []

    # --- where the registration stands ---------------------------------------------

    @property
    def status(self) -> RegistrationStatus:
        """The registration status."""
        return self.registration.status

    @property
    def code(self) -> int | None:
        """The last answer's SIP code (None: none yet)."""
        return self.registration.code

    @property
    def reason(self) -> str:
        """The last answer's reason phrase."""
        return self.registration.reason

    @property
    def expires(self) -> int:
        """The seconds the registrar granted (0: not registered)."""
        return self.registration.expires

    # --- what calls use ----------------------------------------------------------

    @property
    def account_id(self) -> str:
        """The extension's id in the protocol."""
        return self.params.account_id

    @property
    def aor(self) -> SipUri:
        """The address of record, ``sip:<extension>@<domain>`` (From of calls)."""
        return self.addresses.aor

    @property
    def route_set(self) -> tuple[SipUri, ...]:
        """The outbound proxy as a loose route (Route of out-of-dialog requests)."""
        return self.addresses.route_set

    @property
    def transport(self) -> Transport:
        """The transport toward the registrar (never AUTO)."""
        return self.addresses.transport

    async def next_hop(self) -> Destination:
        """Resolve where out-of-dialog requests go: the proxy, else the registrar."""
        return await resolve(
            self.addresses.next_hop,
            self.transport,
            prefer_ipv6=":" in self._host.bind_host,
        )

    def contact_for(self, destination: Destination) -> SipUri:
        """Return our Contact for requests sent to ``destination``."""
        host = self._host.bind_host
        if host in _ANY_HOST:
            host = local_address(destination)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        params: dict[str, str | None] = {}
        if self.transport is not Transport.UDP:
            params["transport"] = self.transport.value
        return SipUri(
            "sip",
            self.params.extension,
            host,
            self._host.contact_port(self.transport),
            params,
        )

    def new_digest(self) -> DigestSession:
        """Return a digest session with this extension's credentials (one per call)."""
        return DigestSession(self.params.auth_id, self.params.password)

    @staticmethod
    def authorize(
        session: DigestSession, request: SipRequest, response: SipResponse
    ) -> bool:
        """Add the answer to ``response``'s 401/407 challenge to ``request``.

        Returns False when the challenge cannot be answered, or answers our last
        try again (the credentials are wrong): the request should not be resent.
        The caller gives the resent request a new CSeq and Via branch.
        """
        name = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
        try:
            headers = session.answer(
                response.status,
                response.headers.get_lines(name),
                method=request.method,
                uri=str(request.uri),
                body=request.body,
            )
        except (CredentialsRejected, DigestError):
            return False
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        for header, value in headers:
            request.headers.add(header, value)
        return True

    # --- life cycle --------------------------------------------------------------

    def register(self) -> None:
        """Send a REGISTER now, shown as `registering` first (never raises).

        The first call starts the account: from then on it refreshes, retries with
        backoff and probes the registrar by itself. Later calls are `reregister`.
        """
        if self._tasks:
            self._request(Attempt.ANNOUNCED)
        elif not self.removing:
            self._start()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time()
        self._tasks.append(
            loop.create_task(self._run(), name=f"REGISTER {self.account_id}")
        )
        if (
            self.params.keepalive is not KeepaliveMethod.OFF
            and self.params.keepalive_interval > 0
        ):
            self._tasks.append(
                loop.create_task(self._probe(), name=f"liveness {self.account_id}")
            )

    def connection_lost(self, key: tuple[str, str, int]) -> None:
        """Register again at once, quietly, after the connection to the next hop closed.

        ``key`` names the closed TCP/TLS connection: (transport, peer address, peer
        port). Only the connection to this account's next hop counts; others (a
        connection the registrar opened for a call, one from a scanner at the
        registrar's address) are not this account's. Before the next hop is known,
        any counts. A REGISTER in flight may have gone out on it and would wait for
        Timer F: it is sent again.
        """
        if self.transport is Transport.UDP or self.removing:
            return
        hop = self.destination
        if hop is not None and key != (hop.transport.value, hop.address, hop.port):
            return
        if self._exchange_task is not None:
            self._exchange_task.cancel()
        elif self.status is RegistrationStatus.SUCCESSFUL:
            self._request(Attempt.QUIET)
        now = asyncio.get_running_loop().time()
        self._quick_probes = [now + delay for delay in QUICK_PROBES]
        self._probe_wake.set()

    async def unregister(self, wait: float = UNREGISTER_TIMEOUT) -> None:
        """Stop: REGISTER with Expires: 0 if registered, waiting ``wait`` s at most.

        Then report `unregistered` (unless that was the last status reported) and
        release the account's tasks. Never raises; the account is done afterwards.
        """
        was_registered = self.status is RegistrationStatus.SUCCESSFUL
        await self._stop_tasks()
        if was_registered:
            try:
                async with asyncio.timeout(wait):
                    outcome = await self._exchange(0, wait)
            except TimeoutError:
                outcome = NoAnswer(TIMEOUT_CODE, "Request Timeout")
            except Exception:  # never raise out of a teardown
                _LOGGER.exception("%s: unregistering failed", self.account_id)
                outcome = NoAnswer(TRANSPORT_ERROR_CODE, "internal error")
            self._record(outcome)
            record = self.registration
            record.code, record.reason = _code_reason(outcome)
        if self.status is not RegistrationStatus.UNREGISTERED:
            self._set_status(RegistrationStatus.UNREGISTERED, self.code, self.reason, 0)

    def close(self) -> None:
        """Stop at once, without unregistering (the worker is going away)."""
        self.removing = True
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    async def _stop_tasks(self) -> None:
        self.removing = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                this = asyncio.current_task()
                if this is not None and this.cancelling():
                    raise  # we are being cancelled ourselves
            except Exception:  # never raise out of a teardown
                _LOGGER.exception("%s: a task had failed", self.account_id)

    # --- the REGISTER schedule ---------------------------------------------------

    def _request(self, mode: Attempt) -> None:
        """Ask for a REGISTER now (after the one in flight, if any)."""
        if self.removing:
            return
        if self._registering:
            if self._pending is not Attempt.ANNOUNCED:
                self._pending = mode
            return
        self._schedule(0.0, mode)

    def _schedule(self, delay: float, mode: Attempt) -> None:
        self._due = asyncio.get_running_loop().time() + delay
        self._due_mode = mode
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.removing:
            now = loop.time()
            if self._due is not None and self._due <= now:
                self._due = None
                try:
                    await self._attempt(self._due_mode)
                except Exception:
                    # A bug must not end the schedule: report it, retry later.
                    _LOGGER.exception("%s: REGISTER failed", self.account_id)
                    self._registering = False
                    self._failed(NoAnswer(TRANSPORT_ERROR_CODE, "internal error"))
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    None if self._due is None else self._due - now
                ):
                    await self._wake.wait()

    async def _attempt(self, mode: Attempt) -> None:
        """Send one REGISTER (with its challenges), report it, plan the next."""
        if mode is Attempt.ANNOUNCED:
            self._set_status(RegistrationStatus.REGISTERING, None, "", self.expires)
        self._registering = True
        try:
            outcome = await self._send_register()
        finally:
            self._registering = False
        if self.removing:
            return
        pending, self._pending = self._pending, None
        self._record(outcome)
        code, reason = _code_reason(outcome)
        if isinstance(outcome, NoAnswer):
            status = outcome.status
            expires = 0
        else:
            expires = self._granted if 200 <= code < 300 else 0
            status = classify_registration_reply(
                code, from_server=True, expires=expires
            )
        if status is RegistrationStatus.SUCCESSFUL:
            self.failures = 0
            self.registration.last_success = time.time()
            self._schedule(refresh_delay(expires), Attempt.QUIET)
            self._set_status(status, code, reason, expires)
        elif status in FAILURE_STATUSES:
            self._failed(outcome, status)
        else:  # a 2xx granting no time at all: try again later
            self._schedule(float(max(self.params.retry_interval, 1)), Attempt.ANNOUNCED)
            self._set_status(status, code, reason, expires)
        if pending is not None:  # `reregister` while this one was in flight
            self._schedule(0.0, pending)

    async def _send_register(self) -> Outcome:
        """Run one REGISTER exchange; start it again if a connection closed meanwhile."""
        this = asyncio.current_task()
        for _ in range(MAX_CONNECTION_RESTARTS):
            self._exchange_task = asyncio.ensure_future(
                self._exchange(self.params.expiry, None)
            )
            try:
                return await self._exchange_task
            except asyncio.CancelledError:
                if this is not None and this.cancelling():
                    raise  # the account is stopping
            finally:
                self._exchange_task = None
            _LOGGER.debug("%s: a connection closed; REGISTER again", self.account_id)
        return NoAnswer(TRANSPORT_ERROR_CODE, "connection closed")

    def _failed(
        self,
        outcome: Outcome,
        status: RegistrationStatus = RegistrationStatus.NO_REPLY_FROM_SERVER,
    ) -> None:
        """Report a failure and plan the retry with backoff."""
        if isinstance(outcome, NoAnswer):
            status = outcome.status
        code, reason = _code_reason(outcome)
        self.failures += 1
        self._schedule(
            retry_delay(status, self.failures, self.params.retry_interval),
            Attempt.ANNOUNCED,
        )
        self._set_status(status, code, reason, 0)

    async def _exchange(
        self, expires: int, limit: float | None, *, query: bool = False
    ) -> Outcome:
        """Send REGISTER (with ``query``, without Contact); return the final outcome."""
        if not query:
            self._granted = 0
        try:
            destination = await self.next_hop()
        except TargetError as err:
            return NoAnswer(TRANSPORT_ERROR_CODE, str(err))
        self.destination = destination
        self.contact = self.contact_for(destination)
        result = await self._client.exchange(
            destination, None if query else self.contact, expires, limit
        )
        if not query and isinstance(result.outcome, SipResponse):
            self._granted, self._binding_listed = result.granted, result.listed
        return result.outcome

    # --- the liveness probe ------------------------------------------------------

    async def _probe(self) -> None:
        """Every keep-alive interval: double CRLF (if chosen) and a probe.

        After a lost TCP/TLS connection a few quick probes follow (`QUICK_PROBES`):
        a registrar that restarts comes back within seconds, not an interval.
        """
        loop = asyncio.get_running_loop()
        interval = float(self.params.keepalive_interval)
        # The first probe comes a little early by a random share of the interval, so
        # that many extensions started together do not probe in lockstep.
        next_at = loop.time() + interval * random.uniform(FIRST_PROBE_SPREAD, 1.0)
        while not self.removing:
            self._probe_wake.clear()
            due = min([next_at, *self._quick_probes])
            try:
                async with asyncio.timeout(max(due - loop.time(), 0.0)):
                    await self._probe_wake.wait()
                continue  # quick probes were asked for: plan again
            except TimeoutError:
                pass
            now = loop.time()
            quick = bool(self._quick_probes) and self._quick_probes[0] <= now
            if quick:
                self._quick_probes = [at for at in self._quick_probes if at > now]
            else:
                next_at = max(next_at + interval, now)
            destination = self.destination
            if self._registering or destination is None:
                continue
            if quick and self.status is not RegistrationStatus.NO_REPLY_FROM_SERVER:
                continue  # only a silent registrar needs looking after that soon
            try:
                if self.params.keepalive is KeepaliveMethod.DOUBLE_CRLF and not quick:
                    self._host.send_keepalive(destination)
                limit = probe_timeout(interval)
                checking = (
                    self.status is RegistrationStatus.SUCCESSFUL
                    and self._binding_listed
                    and self.contact is not None
                )
                if checking:
                    outcome = await self._exchange(0, limit, query=True)
                else:
                    outcome = await self._send_options(destination, limit)
                if not self.removing and not self._registering:
                    self._probe_answered(outcome, checking=checking)
            except Exception:
                # A bug must not end the probe: log it, probe again next time.
                _LOGGER.exception("%s: liveness probe failed", self.account_id)

    async def _send_options(self, destination: Destination, limit: float) -> Outcome:
        request = build_options(
            target=self.addresses.registrar,
            aor=self.addresses.aor,
            contact=self.contact or self.contact_for(destination),
            route_set=self.addresses.route_set,
        )
        return await self._host.send_request(request, destination, limit)

    def _probe_answered(self, outcome: Outcome, *, checking: bool = False) -> None:
        """Report a silent registrar; register again with one that answers again.

        With ``checking`` the probe was a REGISTER query: a registrar that answers
        without our binding (it restarted and forgot it) gets a REGISTER at once.
        """
        alive = isinstance(outcome, SipResponse) and outcome.status != 408
        if (
            checking
            and isinstance(outcome, SipResponse)
            and 200 <= outcome.status < 300
            and self.contact is not None
            and self.status is RegistrationStatus.SUCCESSFUL
            and not lists_binding(outcome, self.contact)
        ):
            _LOGGER.info("%s: the registrar lost our binding", self.account_id)
            self._request(Attempt.QUIET)
        elif alive and self.status is RegistrationStatus.NO_REPLY_FROM_SERVER:
            _LOGGER.info("%s: the registrar answers again", self.account_id)
            self._request(Attempt.ANNOUNCED)
        elif not alive and self.status is RegistrationStatus.SUCCESSFUL:
            _LOGGER.info("%s: no answer to OPTIONS: %s", self.account_id, outcome)
            if isinstance(outcome, SipResponse):  # a 408 from a proxy
                outcome = NoAnswer(outcome.status, outcome.reason)
            self._failed(outcome)

    # --- reporting ---------------------------------------------------------------

    def _record(self, outcome: Outcome) -> None:
        code, reason = _code_reason(outcome)
        self._host.exchanges.append(
            RegistrationExchange(
                account_id=self.account_id,
                at=time.time(),
                code=code,
                reason=reason,
                from_server=isinstance(outcome, SipResponse),
            )
        )

    def _set_status(
        self, status: RegistrationStatus, code: int | None, reason: str, expires: int
    ) -> None:
        state = self.registration.update(status, code, reason, expires)
        self._host.emit(EventName.REGISTRATION, state)

    def state(self) -> RegistrationState:
        """Return where the registration stands."""
        return self.registration.state()


def _code_reason(outcome: Outcome) -> tuple[int, str]:
    if isinstance(outcome, NoAnswer):
        return outcome.code, outcome.reason
    return outcome.status, outcome.reason
