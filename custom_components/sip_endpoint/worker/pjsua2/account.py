"""One extension: its pjsua2 account, registration, retry backoff and keep-alive."""

from collections.abc import Callable
import logging
import time
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from ...protocol.payloads import (
    AccountParams,
    EventName,
    KeepaliveMethod,
    RegistrationExchange,
    Transport,
)
from ...protocol.status import (
    FAILURE_STATUSES,
    RegistrationStatus,
    classify_registration_reply,
)
from ..core.backoff import retry_delay
from ..core.registration_state import RegistrationRecord
from ..core.uris import id_uri, proxy_uri, registrar_uri
from .context import WorkerContext
from .guard import sip_callback

if TYPE_CHECKING:
    from .scheduler import TimerHandle

_LOGGER = logging.getLogger(__name__)

DOUBLE_CRLF = "\r\n\r\n"
# A liveness probe (OPTIONS to the registrar) waits this long for any final answer
# instead of Timer F's 32 s, as the built-in engine's does: a dead registrar shows
# within the keep-alive interval + 4 s (34 s by default, 14 s with OPTIONS every 10 s).
PROBE_TIMEOUT = 4.0
CONNECTION_CHECK_DELAY = 0.5
DEFAULT_TLS_PORT = 5061

_PROBED_STATUSES = frozenset(
    {RegistrationStatus.SUCCESSFUL, RegistrationStatus.NO_REPLY_FROM_SERVER}
)


def probe_timeout(interval: float) -> float:
    """Return how long a probe sent every ``interval`` s may wait (1 s..4 s)."""
    return max(min(PROBE_TIMEOUT, interval), 1.0)


type IncomingCallHandler = Callable[["ExtensionAccount", Any], None]
type SourceCheck = Callable[[str, str], bool]


class ExtensionAccount(pj.Account):  # type: ignore[misc]
    """A registered extension."""

    def __init__(
        self,
        context: WorkerContext,
        params: AccountParams,
        transport_ids: dict[Transport, int],
        bind_host: str,
        on_incoming_call: IncomingCallHandler,
        check_source: SourceCheck,
    ) -> None:
        """Prepare the account; `register` creates it in pjsua."""
        super().__init__()
        self.context = context
        self.params = params
        self.registration = RegistrationRecord(params.account_id, registrar_uri(params))
        self._transport_ids = transport_ids
        self._bind_host = bind_host
        self._on_incoming_call = on_incoming_call
        self._check_source = check_source
        self.failures = 0
        self.created = False
        self.removing = False
        self.unregister_answered = False
        self._retry_timer: TimerHandle | None = None
        self._probe_timer: TimerHandle | None = None
        self._last_answer = 0.0  # monotonic time of the registrar's last answer
        self._connection_check: TimerHandle | None = None

    # --- registration ------------------------------------------------------------

    def register(self) -> None:
        """Send a REGISTER now (creating the pjsua account the first time)."""
        self._cancel_retry()
        config = None if self.created else self._config()
        self._set_status(
            RegistrationStatus.REGISTERING, None, "", self.registration.expires
        )
        if config is not None:
            self.create(config)
            self.created = True
            self._start_probe()
        else:
            self.setRegistration(True)

    def check_connection(self) -> None:
        """Re-register soon, quietly, after a TCP/TLS connection was lost.

        pjsua (with its own retry off) would wait for the next refresh. pjsua2 does
        not say which connection closed, so every registered TCP/TLS account checks;
        a successful REGISTER changes nothing visible, a failed one is reported.
        """
        if (
            self.removing
            or not self.created
            or self.registration.status is not RegistrationStatus.SUCCESSFUL
            or self.params.transport not in (Transport.TCP, Transport.TLS)
            or self._connection_check is not None
        ):
            return
        self._connection_check = self.context.scheduler.call_later(
            CONNECTION_CHECK_DELAY, self._check_registration
        )

    def _check_registration(self) -> None:
        self._connection_check = None
        if (
            self.removing
            or self.registration.status is not RegistrationStatus.SUCCESSFUL
        ):
            return
        try:
            self.setRegistration(True)
        except pj.Error as err:
            _LOGGER.info("REGISTER after a lost connection failed: %s", err.info())

    def unregister(self) -> None:
        """Send REGISTER with Expires: 0 if the extension is registered."""
        self.removing = True
        self._cancel_retry()
        self._cancel_probe()
        if self.created and self.registration.status is RegistrationStatus.SUCCESSFUL:
            self.setRegistration(False)
        else:
            self.unregister_answered = True

    def close(self) -> None:
        """Forget timers and delete the account from pjsua."""
        self._cancel_retry()
        self._cancel_probe()
        if self._connection_check is not None:
            self._connection_check.cancel()
            self._connection_check = None
        if self.created:
            self.shutdown()
            self.created = False

    def announce_unregistered(self) -> None:
        """Report the extension as unregistered."""
        self._set_status(
            RegistrationStatus.UNREGISTERED,
            self.registration.code,
            self.registration.reason,
            0,
        )

    def _config(self) -> Any:
        params = self.params
        config = pj.AccountConfig()
        config.idUri = id_uri(params)
        reg = config.regConfig
        reg.registrarUri = self.registration.registrar
        reg.registerOnAdd = True
        reg.timeoutSec = params.expiry
        reg.retryIntervalSec = 0  # the worker retries itself, with backoff
        reg.firstRetryIntervalSec = 0
        reg.randomRetryIntervalSec = 0
        reg.dropCallsOnFail = False
        reg.unregWaitMsec = 2000
        config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", params.auth_id, 0, params.password)
        )
        if proxy := proxy_uri(params):
            config.sipConfig.proxies.append(proxy)
        if params.transport is not Transport.AUTO:
            transport_id = self._transport_ids.get(params.transport)
            if transport_id is None:
                raise ValueError(
                    f"no {params.transport.value} transport in this worker"
                )
            config.sipConfig.transportId = transport_id
        if self._bind_host:
            # RTP on the same address as SIP, and SDP announcing exactly that.
            media = config.mediaConfig.transportConfig
            media.boundAddress = self._bind_host
            media.publicAddress = self._bind_host
        if ":" in self._bind_host:
            config.sipConfig.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
            config.mediaConfig.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
        nat = config.natConfig
        # Advertise the address the transport is bound to, never a rewritten one.
        nat.contactRewriteUse = 0
        nat.viaRewriteUse = 0
        nat.sdpNatRewriteUse = 0
        nat.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        nat.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        if params.keepalive is KeepaliveMethod.DOUBLE_CRLF:
            # UDP only: on TCP and TLS pjsip sends its own CRLF keep-alive instead.
            nat.udpKaIntervalSec = params.keepalive_interval
            nat.udpKaData = DOUBLE_CRLF
        else:
            nat.udpKaIntervalSec = 0
        return config

    @sip_callback
    def onRegState(self, prm: Any) -> None:
        """Classify a REGISTER's final answer, then retry or keep alive."""
        code = int(prm.code)
        from_server = bool(prm.rdata.wholeMsg)
        expires = int(prm.expiration)
        status = classify_registration_reply(
            code, from_server=from_server, expires=expires
        )
        reason = str(prm.reason)
        if not from_server and (refused := self._tls_refusal()) is not None:
            status, reason = RegistrationStatus.TLS_CERTIFICATE_INVALID, refused
        self.context.exchanges.append(
            RegistrationExchange(
                account_id=self.params.account_id,
                at=time.time(),
                code=code,
                reason=reason,
                from_server=from_server,
            )
        )
        if self.removing:
            self.registration.code, self.registration.reason = code, reason
            self.unregister_answered = True
            return
        if from_server:
            self._last_answer = time.monotonic()
        if status is RegistrationStatus.SUCCESSFUL:
            self.failures = 0
            self.registration.last_success = time.time()
        elif status in FAILURE_STATUSES:
            self.failures += 1
            self._schedule_retry(status)
        self._set_status(status, code, reason, expires)

    def _tls_refusal(self) -> str | None:
        """Return why the registrar's TLS certificate was refused just now, if it was."""
        if self.params.transport is not Transport.TLS:
            return None
        port = self.params.port or DEFAULT_TLS_PORT
        failure = self.context.tls_failures.find(port)
        return failure.reason if failure is not None else None

    def _set_status(
        self, status: RegistrationStatus, code: int | None, reason: str, expires: int
    ) -> None:
        state = self.registration.update(status, code, reason, expires)
        self.context.emit(EventName.REGISTRATION, state)

    @property
    def status(self) -> RegistrationStatus:
        """Return the last reported registration status."""
        return self.registration.status

    def _schedule_retry(self, status: RegistrationStatus) -> None:
        self._cancel_retry()
        delay = retry_delay(status, self.failures, self.params.retry_interval)
        self._retry_timer = self.context.scheduler.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._retry_timer = None
        if self.removing:
            return
        try:
            self.register()
        except pj.Error as err:
            _LOGGER.warning("REGISTER retry failed to start: %s", err.info())
            self.failures += 1
            self._schedule_retry(RegistrationStatus.NO_REPLY_FROM_SERVER)

    def _cancel_retry(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None

    # --- liveness probe ----------------------------------------------------------

    def _start_probe(self) -> None:
        """Probe the registrar every keep-alive interval from now on (unless off)."""
        if (
            self.params.keepalive is KeepaliveMethod.OFF
            or self.params.keepalive_interval <= 0
            or self._probe_timer is not None
            or self.removing
        ):
            return
        self._probe_timer = self.context.scheduler.call_later(
            self.params.keepalive_interval, self._probe
        )

    def _cancel_probe(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None

    def _probe(self) -> None:
        """Send OPTIONS to the registrar, to learn whether it is alive or back.

        Beside pjsua's double-CRLF keep-alive (which nothing answers over UDP) or as
        the OPTIONS keep-alive itself. The probe waits `PROBE_TIMEOUT` s for any
        final answer instead of Timer F's 32 s.
        """
        self._probe_timer = None
        if self.removing:
            return
        self._start_probe()
        if self.registration.status not in _PROBED_STATUSES:
            return  # a REGISTER is in flight, or the server refused us
        prm = pj.SendRequestParam()
        prm.method = "OPTIONS"
        prm.txOption.targetUri = self.registration.registrar
        try:
            self.sendRequest(prm)
        except pj.Error as err:
            _LOGGER.info("OPTIONS probe could not be sent: %s", err.info())
            self._probe_failed(503, "OPTIONS not sent")
            return
        sent_at = time.monotonic()
        self.context.scheduler.call_later(
            self._probe_timeout, lambda: self._probe_deadline(sent_at)
        )

    @property
    def _probe_timeout(self) -> float:
        return probe_timeout(self.params.keepalive_interval)

    def _probe_deadline(self, sent_at: float) -> None:
        if self.removing or self._last_answer >= sent_at:
            return
        self._probe_failed(
            408, f"No answer to OPTIONS within {self._probe_timeout:g} s"
        )

    @sip_callback
    def onSendRequest(self, prm: Any) -> None:
        """Handle the final answer (or the lack of one) to an OPTIONS probe."""
        tsx_state = prm.e.body.tsxState
        code = int(tsx_state.tsx.statusCode)
        try:
            from_server = bool(tsx_state.src.rdata.wholeMsg)
        except (AttributeError, TypeError):
            from_server = False
        if self.removing:
            return
        if from_server and code != 408:  # any answer: the server is alive
            self._last_answer = time.monotonic()
            self._probe_alive()
        elif time.monotonic() - self._last_answer > self._probe_timeout:
            # A late local 408 (Timer F) of an older probe changes nothing when
            # the server answered since.
            self._probe_failed(code, str(tsx_state.tsx.statusText))

    def _probe_alive(self) -> None:
        """Register again at once when a silent registrar answers again."""
        if self.registration.status is not RegistrationStatus.NO_REPLY_FROM_SERVER:
            return
        _LOGGER.info("%s: the registrar answers again", self.params.account_id)
        try:
            self.register()
        except pj.Error as err:
            _LOGGER.info("REGISTER after the registrar's return failed: %s", err.info())

    def _probe_failed(self, code: int, reason: str) -> None:
        if self.registration.status is RegistrationStatus.SUCCESSFUL:
            _LOGGER.info("%s: %s (%s)", self.params.account_id, reason, code)
            self._no_reply_from_server(code, reason)

    def _no_reply_from_server(self, code: int, reason: str) -> None:
        """Report a silent server now and schedule a REGISTER soon."""
        self.failures += 1
        self._set_status(RegistrationStatus.NO_REPLY_FROM_SERVER, code, reason, 0)
        self._schedule_retry(RegistrationStatus.NO_REPLY_FROM_SERVER)

    # --- inbound requests --------------------------------------------------------

    @sip_callback
    def onIncomingCall(self, prm: Any) -> None:
        """Hand an INVITE to the call manager."""
        self._on_incoming_call(self, prm)

    @sip_callback
    def onIncomingSubscribe(self, prm: Any) -> None:
        """Refuse SUBSCRIBE from sources outside the allowed list."""
        if not self._check_source(str(prm.rdata.srcAddress), "SUBSCRIBE"):
            prm.code = 403
            prm.reason = "Forbidden"
