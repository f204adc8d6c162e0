"""The pjsua2 endpoint: library settings, log forwarding and transports."""

import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from ...protocol.engines import ENGINE_LIMITS, EngineName
from ...protocol.payloads import EventName, LogLine, StartParams, Transport
from .context import WorkerContext
from .tls import TlsFailures, TlsTrust

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

# PJSUA_MAX_CALLS of the pjsua2-python 2.15.1 wheel is 4 (measured: maxCalls above 4
# still allows only 4 calls; the 5th INVITE gets 486 Busy Here from pjsua), and
# PJSUA_MAX_ACC is 8 (a 9th account aborts the process): protocol/engines.py.
MAX_CALLS_LIMIT = ENGINE_LIMITS[EngineName.PJSUA2].max_calls
MAX_ACCOUNTS = ENGINE_LIMITS[EngineName.PJSUA2].max_accounts
USER_AGENT = "Home Assistant SIP Endpoint"
_ANY_ADDRESSES = frozenset({"", "0.0.0.0", "::"})  # noqa: S104


class LogForwarder(pj.LogWriter):  # type: ignore[misc]
    """Sends pjlib's log lines as `log` events, with credentials removed."""

    def __init__(self, context: WorkerContext) -> None:
        """Forward to ``context``'s writer."""
        super().__init__()
        self._context = context

    def write(self, entry: Any) -> None:
        """Format and queue one log line (runs on whichever thread logs)."""
        try:
            message = self._context.scrub(str(entry.msg).rstrip())
            self._context.emit(
                EventName.LOG, LogLine(level=int(entry.level), message=message)
            )
        except Exception:  # never let a log line kill the process
            _LOGGER.debug("Log line dropped", exc_info=True)


def port_is_free(host: str, port: int, kinds: tuple[int, ...]) -> bool:
    """Return whether ``port`` can be bound on ``host`` for every socket kind given."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        try:
            for kind in kinds:
                sock = stack.enter_context(socket.socket(family, kind))
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host or "0.0.0.0", port))  # noqa: S104
        except OSError:
            return False
    return True


def _check_free_port(params: StartParams) -> None:
    both = (socket.SOCK_DGRAM, socket.SOCK_STREAM)
    for port in range(params.port_min, params.port_max + 1):
        if port_is_free(params.bind_host, port, both):
            return
    raise _no_free_port(params)


def _no_free_port(params: StartParams) -> OSError:
    return OSError(f"no free UDP+TCP port in {params.port_min}..{params.port_max}")


class WorkerEndpoint(pj.Endpoint):  # type: ignore[misc]
    """The pjsua2 endpoint, reporting lost TCP/TLS connections."""

    def __init__(self, tls_failures: TlsFailures) -> None:
        """Create the (single) endpoint object, recording TLS refusals there."""
        super().__init__()
        self.on_connection_lost: Callable[[], None] | None = None
        self.tls_failures = tls_failures

    def onTransportState(self, prm: Any) -> None:
        """Tell the worker when a connection-oriented transport goes down.

        A TLS connection refused for its certificate is recorded first, so the
        REGISTER that failed on it is reported as `tls_certificate_invalid`.
        """
        try:
            self.tls_failures.observe(prm)
            if (
                prm.state == pj.PJSIP_TP_STATE_DISCONNECTED
                and str(prm.type).upper().startswith(("TCP", "TLS"))
                and self.on_connection_lost is not None
            ):
                self.on_connection_lost()
        except Exception:
            _LOGGER.exception("Error handling a transport state change")


class SipStack:
    """Owns `pj.Endpoint` and the transports; lives on the polling thread."""

    def __init__(self, endpoint: Any, context: WorkerContext) -> None:
        """Wrap an `Endpoint` that is not created yet."""
        self.endpoint = endpoint
        self._context = context
        self._log_writer = LogForwarder(context)
        self.transport_ids: dict[Transport, int] = {}
        self.sip_port = 0
        self.tls_port: int | None = None
        self.max_calls = MAX_CALLS_LIMIT
        self.bind_host = ""
        self.started = False
        self.tls_trust: TlsTrust | None = None

    def start(self, params: StartParams) -> None:
        """Create and start the library, then bind the transports."""
        # Refuse a taken range before creating the library: after libCreate a
        # second `start` (with another range) would fail a C assert.
        _check_free_port(params)
        self.tls_trust = TlsTrust(params.tls_verify, params.tls_ca_file)
        config = pj.EpConfig()
        ua = config.uaConfig
        ua.threadCnt = 0
        ua.mainThreadOnly = True
        self.max_calls = max(
            1, min(params.max_calls or MAX_CALLS_LIMIT, MAX_CALLS_LIMIT)
        )
        ua.maxCalls = self.max_calls
        ua.userAgent = USER_AGENT
        # Media gets its own ioqueue and "media" thread. Sharing the SIP ioqueue
        # would make that thread poll SIP too, so SIP callbacks would run on it as
        # well as on the polling thread; RTP sockets would also take SIP's slots.
        config.medConfig.hasIoqueue = True
        config.medConfig.threadCnt = 1
        config.medConfig.noVad = True
        log = config.logConfig
        # pjsua hands the LogWriter exactly the lines at or below consoleLevel (the
        # writer replaces pjlib's console output, so nothing reaches stdout).
        log.level = max(0, min(params.log_level, 6))
        log.consoleLevel = log.level
        log.msgLogging = params.log_level >= 4
        log.writer = self._log_writer
        self.endpoint.libCreate()
        self.endpoint.libInit(config)
        self.endpoint.audDevManager().setNullDev()
        self._bind(params)
        self.endpoint.libStart()
        self.started = True

    def _bind(self, params: StartParams) -> None:
        host = params.bind_host
        self.bind_host = "" if host in _ANY_ADDRESSES else host
        both = (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        for port in range(params.port_min, params.port_max + 1):
            if not port_is_free(host, port, both):
                continue
            try:
                udp = self._create(Transport.UDP, host, port)
            except pj.Error:
                continue
            try:
                tcp = self._create(Transport.TCP, host, port)
            except pj.Error:
                self.endpoint.transportClose(udp)
                continue
            self.transport_ids = {Transport.UDP: udp, Transport.TCP: tcp}
            self.sip_port = port
            break
        else:
            raise _no_free_port(params)
        for port in range(self.sip_port + 1, params.port_max + 1):
            if not port_is_free(host, port, (socket.SOCK_STREAM,)):
                continue
            try:
                self.transport_ids[Transport.TLS] = self._create(
                    Transport.TLS, host, port
                )
            except pj.Error as err:
                _LOGGER.info("No TLS transport: %s", err.info())
            else:
                self.tls_port = port
            break

    def _create(self, transport: Transport, host: str, port: int) -> int:
        ipv6 = ":" in host
        kind = {
            Transport.UDP: pj.PJSIP_TRANSPORT_UDP6 if ipv6 else pj.PJSIP_TRANSPORT_UDP,
            Transport.TCP: pj.PJSIP_TRANSPORT_TCP6 if ipv6 else pj.PJSIP_TRANSPORT_TCP,
            Transport.TLS: pj.PJSIP_TRANSPORT_TLS6 if ipv6 else pj.PJSIP_TRANSPORT_TLS,
        }[transport]
        config = pj.TransportConfig()
        config.port = port
        if host not in _ANY_ADDRESSES:
            config.boundAddress = host
            # Contact and Via advertise exactly the bound address.
            config.publicAddress = host
        if transport is Transport.TLS and self.tls_trust is not None:
            # Outgoing TLS connections use the listener's settings.
            self.tls_trust.configure(config.tlsConfig)
        return int(self.endpoint.transportCreate(kind, config))

    def destroy(self) -> None:
        """Destroy the library (blocks about a second)."""
        if self.started:
            self.started = False
            self.endpoint.libDestroy()
        if self.tls_trust is not None:
            self.tls_trust.close()
            self.tls_trust = None
