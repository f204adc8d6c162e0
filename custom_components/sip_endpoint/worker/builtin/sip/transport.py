"""SIP transports over asyncio: UDP, TCP and TLS (RFC 3261 18, RFC 3581, RFC 5626 3.5.1).

Public API
----------
``SipTransportLayer(on_message, *, bind_host, port_min, port_max,
tls_server_context=None)``
    ``await start()`` binds UDP and TCP on the first port of ``port_min..port_max``
    free for both (0..0 picks any), and a TLS server on the next free port when
    ``tls_server_context`` is given. ``port`` (UDP and TCP), ``tls_port`` (or None),
    ``bind_host``, ``local_port(transport)``.
    ``await send(message, target) -> Connection | None`` sends a request (or raw
    bytes) to a :class:`Target`; TCP and TLS reuse an open connection to the same
    host:port (opened by us or by the peer) or open one. A connection we open
    leaves from our listening port (SO_REUSEADDR + SO_REUSEPORT on the listeners and
    on it), so the registrar finds it by our Contact's host:port and sends requests
    for us down it (no TLS listener needed); when that port cannot be used for it
    (the same 4-tuple is taken, TIME_WAIT) an ephemeral port is used and logged once.
    It raises
    :class:`TransportError` (a UDP datagram the kernel refuses to send too), or
    :class:`TlsVerificationError` when the server certificate is refused.
    ``await send_response(response, source=None)`` sends a response per RFC 3261
    18.2.2 and RFC 3581: over the connection the request came on while it is open,
    else to the top Via's ``received``/``rport``/sent-by (``maddr`` first).
    ``await send_keepalive(target)`` sends a CRLF CRLF ping (UDP datagram, or on the
    open connection; nothing when there is none).
    ``connection_for(target) -> Connection | None``; ``await close()`` (a dial in
    progress ends at once: its senders get a :class:`TransportError`).
``on_message(message, source)`` is called for each received
:class:`~.message.SipRequest` / :class:`~.message.SipResponse`; requests already have
``received`` (and ``rport`` when asked for) in their top Via. Exceptions raised by the
callback are logged, never propagated. A request that fails to parse but can be
answered gets a 400 (or 505/416/414/513) here; everything else malformed is dropped.
``source_filter`` (attribute, ``Callable[[str], bool] | None``): when set, a malformed
request from a host it refuses is dropped without that automatic answer, and a TCP/TLS
connection a peer opens from such a host is closed at once, before anything is read
from it, and reported to ``on_refused_connection(host, "TCP" | "TLS")`` (attribute).
Malformed input (broken framing, a message that does not parse, connections past
``MAX_CONNECTIONS``) is logged per source and burst (`core/refusals.py`): the first at
INFO, then one summary a minute, not one warning per packet.
``Source(transport, host, port, connection)`` is where a message came from (the
source filter uses ``host``). ``Target(transport, host, port, server_name=None,
tls_context=None)``: ``server_name`` is the TLS host name to verify and send as SNI.
``Connection``: ``transport``, ``remote`` (host, port), ``closed``, ``write(data)``,
``close()``.
``client_tls_context(verify=True, ca_file=None) -> ssl.SSLContext``.
``response_target(via, source) -> Target``: where a response goes without a
connection. ``via_for(layer, transport, host, branch) -> Via``: our top Via (listening
port of that transport, ``rport`` asked for). UDP targets given by name are resolved
with ``loop.getaddrinfo``; TCP/TLS names by ``create_connection``.
``TransportError(reason)``; ``TlsVerificationError(TransportError)`` carries the ssl
reason ("certificate verify failed: ...", hostname mismatch, expired).
``KEEPALIVE_PING``, ``KEEPALIVE_PONG``, ``MAX_CONNECTIONS`` (connections peers open
to us; ours are not limited), ``IDLE_TIMEOUT`` (a peer's connection that sends
nothing for that long is closed; attribute ``idle_timeout`` on the layer). A
``Connection`` also has ``inbound`` (True when the peer opened it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import errno
import ipaddress
import logging
import socket
import ssl
from typing import Any, Final

from ...core.refusals import BurstSummary, Summary
from .message import (
    MAX_MESSAGE_BYTES,
    SipParseError,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    parse_message,
    stream_length_from_head,
)

_LOGGER = logging.getLogger(__name__)

KEEPALIVE_PING: Final = b"\r\n\r\n"
KEEPALIVE_PONG: Final = b"\r\n"
MAX_CONNECTIONS: Final = 512
IDLE_TIMEOUT: Final = 900.0
CONNECT_TIMEOUT: Final = 10.0
_TRANSPORTS: Final = ("udp", "tcp", "tls")
_REUSE_PORT: Final = getattr(socket, "SO_REUSEPORT", None)
# connect()/bind() refusing the listening port: that 4-tuple or port is taken.
_PORT_TAKEN: Final = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL})


class TransportError(Exception):
    """A message could not be sent: connection refused, reset, TLS failure."""

    def __init__(self, reason: str) -> None:
        """Keep the reason."""
        super().__init__(reason)
        self.reason = reason


class TlsVerificationError(TransportError):
    """The TLS server certificate was refused (untrusted, wrong host, expired)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send: transport (udp, tcp, tls), host (no brackets) and port."""

    transport: str
    host: str
    port: int
    server_name: str | None = None
    tls_context: ssl.SSLContext | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, int]:
        """Return the connection key (transport, host, port)."""
        return (self.transport.lower(), _bare_host(self.host), self.port)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from; ``connection`` is None for UDP."""

    transport: str
    host: str
    port: int
    connection: Connection | None = None


def _bare_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _via_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def client_tls_context(
    verify: bool = True, ca_file: str | None = None
) -> ssl.SSLContext:
    """Return a client TLS context.

    With ``verify`` the server certificate is checked against the system store and
    ``ca_file`` (when given), host name included. Without, any certificate is
    accepted (the caller logs a warning).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if verify:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _local_host(bind_host: str, family: int) -> str | None:
    """Return the address to bind an outgoing connection of ``family`` to.

    None when the bind host is of the other family (the kernel picks the source).
    """
    try:
        local = ipaddress.ip_address(bind_host)
    except ValueError:
        local = None
    if local is None or local.is_unspecified:
        return "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104
    return bind_host if (local.version == 6) == (family == socket.AF_INET6) else None


def _reusable_socket(family: int) -> socket.socket:
    """Return a non-blocking TCP socket that may share its port (SO_REUSE*)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if _REUSE_PORT is not None:
            sock.setsockopt(socket.SOL_SOCKET, _REUSE_PORT, 1)
    except OSError:
        sock.close()
        raise
    return sock


def _tls_error(err: BaseException) -> TransportError:
    if isinstance(err, ssl.SSLCertVerificationError):
        message = err.verify_message or err.reason or str(err)
        return TlsVerificationError(f"certificate verify failed: {message}")
    if isinstance(err, ssl.SSLError):
        return TransportError(f"TLS failed: {err.reason or err}")
    return TransportError(str(err) or type(err).__name__)


class Connection(asyncio.Protocol):
    """One TCP or TLS connection, framed by Content-Length."""

    def __init__(
        self, layer: SipTransportLayer, transport_name: str, *, inbound: bool = True
    ) -> None:
        """Belong to ``layer``; ``transport_name`` is tcp or tls.

        ``inbound`` connections (opened by the peer) count against
        :data:`MAX_CONNECTIONS` and are closed after :data:`IDLE_TIMEOUT` seconds
        without a byte received.
        """
        self._layer = layer
        self.transport = transport_name
        self.inbound = inbound
        self.remote: tuple[str, int] = ("", 0)
        self.closed = False
        self._stream: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._need: int | None = None  # length of the message being read, once known
        self._scanned = 0  # bytes of the buffer already searched for the blank line
        self._last_data = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._refused = False  # closed at accept: never registered with the layer

    def __repr__(self) -> str:
        """Return a short description."""
        return f"<Connection {self.transport} {self.remote[0]}:{self.remote[1]}>"

    @property
    def key(self) -> tuple[str, str, int]:
        """Return (transport, host, port) of the peer."""
        return (self.transport, self.remote[0], self.remote[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the stream and register the connection."""
        try:
            assert isinstance(transport, asyncio.Transport)
            self._stream = transport
            peer = transport.get_extra_info("peername")
            self.remote = (str(peer[0]), int(peer[1])) if peer else ("", 0)
            if self.inbound and not self._layer.accepts(self):
                self._refused = True
                self.close()
                return
            self._layer.connection_opened(self)
            if self.inbound and not self.closed:
                loop = asyncio.get_running_loop()
                self._last_data = loop.time()
                self._idle_handle = loop.call_later(
                    self._layer.idle_timeout, self._check_idle
                )
        except Exception:
            _LOGGER.exception("SIP connection setup failed")
            self.close()

    def _check_idle(self) -> None:
        self._idle_handle = None
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_data
        if idle >= self._layer.idle_timeout:
            _LOGGER.debug("Closing idle %r", self)
            self.close()
            return
        self._idle_handle = loop.call_later(
            self._layer.idle_timeout - idle, self._check_idle
        )

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        try:
            if self._idle_handle is not None:
                self._idle_handle.cancel()
                self._idle_handle = None
            self.closed = True
            self._buffer.clear()
            if not self._refused:
                self._layer.connection_closed(self)
        except Exception:
            _LOGGER.exception("SIP connection teardown failed")

    def write(self, data: bytes) -> None:
        """Send bytes (raises :class:`TransportError` when closed)."""
        if self.closed or self._stream is None or self._stream.is_closing():
            raise TransportError("connection closed")
        self._stream.write(data)

    def close(self) -> None:
        """Close the connection."""
        if self._stream is not None and not self.closed:
            self._stream.close()
        self.closed = True

    def data_received(self, data: bytes) -> None:
        """Frame messages: skip keep-alives, answer pings, drop broken framing."""
        try:
            if self.inbound:
                self._last_data = asyncio.get_running_loop().time()
            self._buffer += data
            self._drain()
        except Exception:
            _LOGGER.exception("SIP stream handling failed; closing %r", self)
            self.close()

    def _drain(self) -> None:
        """Cut whole messages off the buffer.

        Work per read is bounded: the blank line is searched only in new bytes, and
        a message's length is computed once, when its head is complete.
        """
        buffer = self._buffer
        while buffer and not self.closed:
            if self._need is None:
                if not self._scanned:
                    if buffer.startswith(KEEPALIVE_PING):
                        del buffer[:4]
                        self.write(KEEPALIVE_PONG)
                        continue
                    if len(buffer) <= 2 and bytes(buffer) in (b"\r\n", b"\r"):
                        return
                    if buffer.startswith(b"\r\n"):
                        del buffer[:2]
                        continue
                end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if end < 0:
                    if len(buffer) > MAX_MESSAGE_BYTES:
                        self._refuse_stream("message head too long")
                        return
                    self._scanned = len(buffer)
                    return
                self._scanned = 0
                try:
                    self._need = stream_length_from_head(buffer[:end])
                except SipParseError as err:
                    self._refuse_stream(err.reason)
                    return
            if len(buffer) < self._need:
                return
            data = bytes(buffer[: self._need])
            del buffer[: self._need]
            self._need = None
            self._layer.received(
                data, Source(self.transport, self.remote[0], self.remote[1], self)
            )

    def _refuse_stream(self, reason: str) -> None:
        self._layer.note_malformed(self.remote[0], f"{self.transport.upper()} {reason}")
        _LOGGER.debug("Closing %r: %s", self, reason)
        self.close()


class _Datagram(asyncio.DatagramProtocol):
    """The UDP socket."""

    def __init__(self, layer: SipTransportLayer) -> None:
        self._layer = layer
        self.transport: asyncio.DatagramTransport | None = None
        self._sending = False
        self._send_error: OSError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            if not data.strip(b"\r\n"):
                return  # keep-alive
            self._layer.received(data, Source("udp", str(addr[0]), int(str(addr[1]))))
        except Exception:
            _LOGGER.exception("SIP datagram handling failed")

    def error_received(self, exc: Exception) -> None:
        if self._sending and isinstance(exc, OSError):
            self._send_error = exc  # sendto's own failure: `sendto` raises it
            return
        _LOGGER.debug("UDP error: %s", exc)

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        """Send one datagram; raise the OSError the kernel gave for it.

        asyncio hands a failed ``sendto`` (EACCES, ENETUNREACH, EPERM...) to
        :meth:`error_received` before it returns, instead of raising: it is caught
        here so that the sender sees it (RFC 3261 18.4: a transport error).
        """
        assert self.transport is not None
        self._sending = True
        self._send_error = None
        try:
            self.transport.sendto(data, address)
        finally:
            self._sending = False
        error, self._send_error = self._send_error, None
        if error is not None:
            raise error


MessageCallback = Callable[[SipRequest | SipResponse, Source], None]


class SipTransportLayer:
    """UDP, TCP and TLS sockets of one SIP endpoint."""

    def __init__(
        self,
        on_message: MessageCallback,
        *,
        bind_host: str,
        port_min: int,
        port_max: int,
        tls_server_context: ssl.SSLContext | None = None,
    ) -> None:
        """Keep the settings; nothing is bound before :meth:`start`."""
        self._on_message = on_message
        self.bind_host = bind_host
        self._port_min = port_min
        self._port_max = port_max
        self._tls_server_context = tls_server_context
        self.port = 0
        self.tls_port: int | None = None
        self._udp: _Datagram | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[tuple[str, str, int], Connection] = {}
        self._all: set[Connection] = set()
        self._connecting: dict[tuple[str, str, int], asyncio.Task[Connection]] = {}
        self._closing = False
        self.source_filter: Callable[[str], bool] | None = None
        self.on_refused_connection: Callable[[str, str], None] | None = None
        self.idle_timeout = IDLE_TIMEOUT
        self._fallback_logged = False
        self._malformed = BurstSummary(
            _first_malformed, _malformed_summary, _call_later
        )

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on one port, TLS on the next free one."""
        loop = asyncio.get_running_loop()
        candidates = (
            [0] * 20
            if self._port_min == 0
            else list(range(self._port_min, self._port_max + 1))
        )
        for candidate in candidates:
            try:
                udp_transport, protocol = await loop.create_datagram_endpoint(
                    lambda: _Datagram(self), local_addr=(self.bind_host, candidate)
                )
            except OSError:
                continue
            port = int(udp_transport.get_extra_info("sockname")[1])
            try:
                server = await loop.create_server(
                    lambda: Connection(self, "tcp"),
                    self.bind_host,
                    port,
                    reuse_port=_REUSE_PORT is not None,
                )
            except OSError:
                udp_transport.close()
                continue
            self._udp = protocol
            self._servers.append(server)
            self.port = port
            break
        else:
            raise TransportError(
                f"no port free for UDP and TCP in {self._port_min}-{self._port_max}"
            )
        if self._tls_server_context is not None:
            await self._start_tls(loop)

    async def _start_tls(self, loop: asyncio.AbstractEventLoop) -> None:
        tls_candidates = (
            [0]
            if self._port_min == 0
            else list(range(self.port + 1, self._port_max + 1))
        )
        for candidate in tls_candidates:
            try:
                server = await loop.create_server(
                    lambda: Connection(self, "tls"),
                    self.bind_host,
                    candidate,
                    ssl=self._tls_server_context,
                    reuse_port=_REUSE_PORT is not None,
                )
            except OSError:
                continue
            self._servers.append(server)
            self.tls_port = int(server.sockets[0].getsockname()[1])
            return
        _LOGGER.warning("No free port for the TLS server")

    def local_port(self, transport: str) -> int:
        """Return the listening port for ``transport`` (udp, tcp or tls)."""
        if transport.lower() == "tls":
            return self.tls_port or self.port
        return self.port

    async def close(self) -> None:
        """Close every socket and connection."""
        self._closing = True
        self._malformed.flush()
        dials = list(self._connecting.values())
        for dial in dials:
            dial.cancel()
        if dials:
            # Each dial closes its socket as it ends; the senders fail at once.
            await asyncio.wait(dials)
        for connection in list(self._all):
            connection.close()
        for server in self._servers:
            server.close()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        for server in self._servers:
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        self._connections.clear()
        self._all.clear()

    # --- connections ----------------------------------------------------------------

    def accepts(self, connection: Connection) -> bool:
        """Return whether a connection a peer opened may stay; report it if not."""
        host = connection.remote[0]
        if self.source_filter is None or self.source_filter(host):
            return True
        _LOGGER.debug("Refusing %r: source not allowed", connection)
        if self.on_refused_connection is not None:
            try:
                self.on_refused_connection(host, connection.transport.upper())
            except Exception:
                _LOGGER.exception("Reporting a refused connection failed")
        return False

    def note_malformed(self, host: str, what: str) -> None:
        """Count malformed input from ``host`` (logged per burst, not per packet)."""
        self._malformed.note(host, what)

    def connection_opened(self, connection: Connection) -> None:
        """Register a new connection (ours or the peer's)."""
        if self._closing:
            connection.close()
            return
        if (
            connection.inbound
            and sum(1 for other in self._all if other.inbound) >= MAX_CONNECTIONS
        ):
            self.note_malformed(connection.remote[0], "too many connections")
            _LOGGER.debug("Refusing %r: too many connections", connection)
            connection.close()
            return
        self._all.add(connection)
        current = self._connections.get(connection.key)
        if current is None or current.closed:
            self._connections[connection.key] = connection

    def connection_closed(self, connection: Connection) -> None:
        """Forget a closed connection."""
        self._all.discard(connection)
        for key in [k for k, v in self._connections.items() if v is connection]:
            del self._connections[key]

    def connection_for(self, target: Target) -> Connection | None:
        """Return an open connection to the target, or None."""
        connection = self._connections.get(target.key)
        if connection is None or connection.closed:
            return None
        return connection

    async def _connect(self, target: Target) -> Connection:
        """Return the open connection to ``target``, dialling it when there is none.

        The dial runs as a task of its own that every sender to the same target
        waits on: a sender that is cancelled leaves it to the others, and
        :meth:`close` cancels it, which fails every waiting sender at once.
        """
        if self._closing:
            raise TransportError("transport closed")
        existing = self.connection_for(target)
        if existing is not None:
            return existing
        key = target.key
        dial = self._connecting.get(key)
        if dial is None:
            dial = asyncio.get_running_loop().create_task(
                self._open(target), name=f"SIP dial {key[0]}:{key[1]}:{key[2]}"
            )
            self._connecting[key] = dial
            dial.add_done_callback(lambda task: self._dial_done(key, task))
        try:
            return await asyncio.shield(dial)
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if dial.cancelled() and (this is None or not this.cancelling()):
                raise TransportError("transport closed") from None
            raise  # the sender itself is being cancelled

    def _dial_done(
        self, key: tuple[str, str, int], dial: asyncio.Task[Connection]
    ) -> None:
        # Until this runs, later senders to ``key`` take the dial's result too.
        self._connecting.pop(key, None)
        if not dial.cancelled():
            dial.exception()  # retrieved: the senders re-raise it

    async def _open(self, target: Target) -> Connection:
        transport = target.transport.lower()
        host = _bare_host(target.host)
        context: ssl.SSLContext | None = None
        server_name: str | None = None
        if transport == "tls":
            context = target.tls_context or client_tls_context()
            server_name = target.server_name or host
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                protocol = await self._dial(
                    transport, host, target.port, context, server_name
                )
        except TimeoutError as err:
            raise TransportError("connection timed out") from err
        except (OSError, ssl.SSLError) as err:
            raise _tls_error(err) from err
        if protocol.closed:
            raise TransportError("connection closed")
        # Key the connection by the name we dialled too, so later sends reuse it.
        self._connections[target.key] = protocol
        return protocol

    async def _dial(
        self,
        transport: str,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        server_name: str | None,
    ) -> Connection:
        """Connect from our listening port (the Contact's) to the first address.

        A registrar sends requests for our Contact down the connection that comes
        from the Contact's host:port (RFC 5923 style reuse, as Kamailio, Asterisk and
        FreeSWITCH do), so we need no listener of our own for TLS.
        """
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:
            raise TransportError(f"cannot resolve {host}")
        error: OSError | None = None
        for family, _, _, _, address in infos:
            remote = (transport, str(address[0]), int(address[1]))
            existing = self._connections.get(remote)
            if existing is not None and not existing.closed:
                return existing  # the same server, dialled by another name
            try:
                sock = await self._connected_socket(transport, family, address)
            except OSError as err:
                error = err
                continue
            try:
                _, protocol = await loop.create_connection(
                    lambda: Connection(self, transport, inbound=False),
                    sock=sock,
                    ssl=context,
                    server_hostname=server_name,
                )
            except BaseException:
                sock.close()
                raise
            return protocol
        assert error is not None
        raise error

    async def _connected_socket(
        self, transport: str, family: int, address: tuple[Any, ...]
    ) -> socket.socket:
        """Return a socket connected to ``address``, from our port when it can be."""
        loop = asyncio.get_running_loop()
        local_host = _local_host(self.bind_host, family)
        local_port = self.local_port(transport)
        if local_host is not None and local_port:
            sock = _reusable_socket(family)
            try:
                sock.bind((local_host, local_port))
                await loop.sock_connect(sock, address)
            except OSError as err:
                sock.close()
                if err.errno not in _PORT_TAKEN:
                    raise
                self._note_fallback(local_port, err)
            except BaseException:
                sock.close()
                raise
            else:
                return sock
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if local_host is not None and local_host != _local_host("", family):
                sock.bind((local_host, 0))
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        return sock

    def _note_fallback(self, port: int, err: OSError) -> None:
        """Log (once) that a connection leaves from another port than ours."""
        if self._fallback_logged:
            _LOGGER.debug("Connecting from port %d failed (%s)", port, err)
            return
        self._fallback_logged = True
        _LOGGER.warning(
            "Cannot connect from SIP port %d (%s); using another port: requests"
            " for our Contact may not reach us over TCP/TLS",
            port,
            err.strerror or err,
        )

    # --- sending --------------------------------------------------------------------

    async def send(
        self, message: SipRequest | SipResponse | bytes, target: Target
    ) -> Connection | None:
        """Send to ``target``; return the connection used (None for UDP)."""
        data = message if isinstance(message, bytes) else message.to_bytes()
        if len(data) > MAX_MESSAGE_BYTES:
            raise TransportError("message too large")
        transport = target.transport.lower()
        if transport not in _TRANSPORTS:
            raise TransportError(f"unknown transport {target.transport}")
        if transport == "udp":
            host = await self._resolve(_bare_host(target.host), target.port)
            self._send_datagram(data, host, target.port)
            return None
        connection = await self._connect(target)
        connection.write(data)
        return connection

    async def _resolve(self, host: str, port: int) -> str:
        """Return an address for ``host`` (names resolved off the loop's thread)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return host
        loop = asyncio.get_running_loop()
        family = socket.AF_UNSPEC
        if self._udp is not None and self._udp.transport is not None:
            sock = self._udp.transport.get_extra_info("socket")
            if sock is not None:
                family = sock.family  # an IPv4 socket cannot send to IPv6
        try:
            infos = await loop.getaddrinfo(
                host, port, family=family, type=socket.SOCK_DGRAM
            )
        except OSError as err:
            raise TransportError(f"cannot resolve {host}: {err}") from err
        if not infos:
            raise TransportError(f"cannot resolve {host}")
        return str(infos[0][4][0])

    def _send_datagram(self, data: bytes, host: str, port: int) -> None:
        if self._udp is None or self._udp.transport is None:
            raise TransportError("UDP not started")
        if self._udp.transport.is_closing():
            raise TransportError("UDP closed")
        try:
            self._udp.sendto(data, (host, port))
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
            raise TransportError(f"cannot send to {host}:{port}: {reason}") from err

    async def send_keepalive(self, target: Target) -> None:
        """Send a CRLF CRLF keep-alive to the target (streams: only when connected)."""
        if target.transport.lower() == "udp":
            host = await self._resolve(_bare_host(target.host), target.port)
            self._send_datagram(KEEPALIVE_PING, host, target.port)
            return
        connection = self.connection_for(target)
        if connection is not None:
            connection.write(KEEPALIVE_PING)

    async def send_response(
        self, response: SipResponse, source: Source | None = None
    ) -> None:
        """Send a response (RFC 3261 18.2.2, RFC 3581 4)."""
        data = response.to_bytes()
        connection = source.connection if source is not None else None
        if connection is not None and not connection.closed:
            connection.write(data)
            return
        via = response.top_via
        await self.send(data, response_target(via, source))

    # --- receiving ------------------------------------------------------------------

    def received(self, data: bytes, source: Source) -> None:
        """Parse and deliver one message (called by the protocols)."""
        try:
            message = parse_message(data)
        except SipParseError as err:
            _LOGGER.debug(
                "Malformed SIP from %s:%s (%s): %s",
                source.host,
                source.port,
                source.transport,
                err.reason,
            )
            self.note_malformed(source.host, f"malformed {source.transport.upper()}")
            self._refuse(err, source)
            return
        try:
            if isinstance(message, SipRequest):
                _stamp_via(message, source)
            self._on_message(message, source)
        except Exception:
            _LOGGER.exception("SIP message handler failed")

    def _refuse(self, err: SipParseError, source: Source) -> None:
        request = err.answerable
        if request is None or self._closing:
            return
        if self.source_filter is not None and not self.source_filter(source.host):
            return  # a refused source gets no answer from here either
        try:
            _stamp_via(request, source)
            response = make_response(request, err.status, headers=[])
            if err.status == 400:
                response.reason = f"Bad Request ({err.reason[:60]})"
            task = asyncio.get_running_loop().create_task(
                self.send_response(response, source)
            )
            task.add_done_callback(_log_task_error)
        except Exception:  # never raise out of a protocol callback
            _LOGGER.debug("Cannot answer a malformed request", exc_info=True)


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    """Run ``callback`` on the running loop after ``delay`` seconds."""
    return asyncio.get_running_loop().call_later(delay, callback)


def _first_malformed(host: str, what: str) -> None:
    _LOGGER.info("Dropped SIP input from %s: %s", host, what)


def _malformed_summary(summary: Summary) -> None:
    _LOGGER.info(
        "Dropped %d more malformed SIP inputs from %s in the last %.0f s (%s)",
        summary.count,
        summary.source,
        summary.seconds,
        summary.kinds_text,
    )


def _log_task_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        _LOGGER.debug("Sending an error response failed: %s", error)


def _stamp_via(request: SipRequest, source: Source) -> None:
    """Add ``received`` and fill ``rport`` in the top Via (RFC 3261 18.2.1, RFC 3581)."""
    via = request.top_via
    changed = False
    if via.has_rport:
        via.params["rport"] = str(source.port)
        via.params["received"] = source.host
        changed = True
    elif _bare_host(via.host) != source.host:
        via.params["received"] = source.host
        changed = True
    if changed:
        request.replace_top_via(via)


def response_target(via: Via, source: Source | None) -> Target:
    """Return where a response goes when no connection carries it (18.2.2, RFC 3581)."""
    transport = via.transport.lower()
    if transport not in _TRANSPORTS:
        transport = "udp"
    default_port = 5061 if transport == "tls" else 5060
    if via.maddr:
        return Target(transport, via.maddr, via.port or default_port)
    host = via.received or _bare_host(via.host)
    if transport != "udp":
        # A new connection goes to the sent-by port: rport is the peer's ephemeral
        # port of the connection that is gone (RFC 3261 18.2.2, RFC 3581 4).
        return Target(transport, host, via.port or default_port)
    if source is not None and via.has_rport:
        return Target("udp", source.host, source.port)
    return Target(transport, host, via.rport or via.port or default_port)


def via_for(layer: SipTransportLayer, transport: str, host: str, branch: str) -> Via:
    """Return a top Via for a request we send (rport asked for, RFC 3581)."""
    return Via(
        transport.upper(),
        _via_host(host),
        layer.local_port(transport),
        {"branch": branch, "rport": None},
    )
