"""A quick check that a SIP server answers at all, before the full registration test.

A wrong address or port on UDP otherwise shows only after the REGISTER transaction
times out (32 s and more). This check sends one SIP OPTIONS request over UDP
(retransmitted like a SIP client does) or opens a TCP connection (TCP and TLS), and
waits a few seconds: any SIP response, or an accepted connection, means something
listens there. A refused connection or an ICMP "port unreachable" shows at once.

The next hop is the outbound proxy when one is set, else the server; Auto is checked
over UDP, as both engines send over UDP first. The TLS handshake and the certificate
are left to the registration test, which reports them precisely.
"""

import asyncio
from dataclasses import dataclass
from enum import StrEnum
import ipaddress
import secrets
import socket
import time
from typing import Final

from ..protocol.payloads import Transport
from .models import ServerSettings

REACHABILITY_TIMEOUT: Final = 5.0  # seconds to wait for any answer
_RETRANSMIT_AFTER: Final = (0.5, 1.0, 2.0)  # RFC 3261 Timer E doubling from T1
_MAX_DATAGRAM: Final = 65535
_STANDARD_PORT: Final = 5060
_STANDARD_TLS_PORT: Final = 5061
_ANY_ADDRESSES: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104


class Reach(StrEnum):
    """What the check found at the server's address."""

    ANSWERED = "answered"  # a SIP response, or an accepted TCP connection
    REFUSED = "refused"  # nothing listens on that port (refused, port unreachable)
    SILENT = "silent"  # no answer in time: a wrong address, or packets dropped
    UNRESOLVED = "unresolved"  # the host name has no address
    SKIPPED = "skipped"  # the outbound proxy could not be read as host[:port]


@dataclass(frozen=True, slots=True)
class ReachabilityCheck:
    """The outcome of one check, with what a form needs to explain it."""

    reach: Reach
    host: str  # the host checked: the outbound proxy's or the server's
    port: int
    transport: Transport  # the transport checked (never AUTO)
    via_proxy: bool  # True when the outbound proxy was checked
    detail: str  # e.g. "connection refused", for logs and error texts

    @property
    def target(self) -> str:
        """Return `host:port` (IPv6 literals in brackets); the text alone if skipped."""
        if self.reach is Reach.SKIPPED:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def next_hop(server: ServerSettings) -> tuple[str, int, bool] | None:
    """Return the host, port and whether it is the outbound proxy; None if unreadable."""
    transport = checked_transport(server.transport)
    default = _STANDARD_TLS_PORT if transport is Transport.TLS else _STANDARD_PORT
    if not server.outbound_proxy:
        return _bare_host(server.host), server.port or default, False
    text = server.outbound_proxy.strip().strip("<>")
    for scheme in ("sips:", "sip:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    text = text.split(";", 1)[0].split(">", 1)[0]
    host, port = _split_host_port(text)
    if not host or port is None:
        return None
    return host, port or default, True


def checked_transport(transport: Transport) -> Transport:
    """Return the transport the check uses: Auto is checked over UDP."""
    return Transport.UDP if transport is Transport.AUTO else transport


async def check_reachable(
    server: ServerSettings,
    bind_host: str = "",
    *,
    timeout: float = REACHABILITY_TIMEOUT,  # noqa: ASYNC109
) -> ReachabilityCheck:
    """Tell whether anything answers SIP at the server's next hop within `timeout`."""
    transport = checked_transport(server.transport)
    hop = next_hop(server)
    if hop is None:
        return ReachabilityCheck(
            Reach.SKIPPED, server.outbound_proxy or "", 0, transport, True, ""
        )
    host, port, via_proxy = hop
    local = "" if bind_host in _ANY_ADDRESSES else bind_host

    def result(reach: Reach, detail: str) -> ReachabilityCheck:
        return ReachabilityCheck(reach, host, port, transport, via_proxy, detail)

    kind = socket.SOCK_DGRAM if transport is Transport.UDP else socket.SOCK_STREAM
    try:
        address, family = await _resolve(host, port, kind, local)
    except OSError as err:
        return result(Reach.UNRESOLVED, f"cannot resolve {host}: {err}")
    try:
        if transport is Transport.UDP:
            return result(
                *await _udp_options(host, address, port, family, local, timeout)
            )
        return result(*await _tcp_connect(address, port, local, timeout))
    except OSError as err:
        return result(Reach.SILENT, str(err) or type(err).__name__)


def _bare_host(host: str) -> str:
    """Return a host without IPv6 brackets."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _split_host_port(text: str) -> tuple[str, int | None]:
    """Split `host[:port]` (IPv6 in brackets); port 0 means none given, None bad."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, 0
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return host, None
    return host, int(port_text)


async def _resolve(
    host: str, port: int, kind: socket.SocketKind, local: str
) -> tuple[str, socket.AddressFamily]:
    """Return an address of `host` (the local address's family first) and its family."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return str(literal), family
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=kind)
    preferred = socket.AF_INET6 if ":" in local else socket.AF_INET
    infos.sort(key=lambda info: info[0] != preferred)
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return str(sockaddr[0]), family
    raise OSError(f"no address for {host}")


class _OptionsClient(asyncio.DatagramProtocol):
    """Waits for a response carrying our Call-ID, or for an ICMP error."""

    def __init__(self, call_id: bytes) -> None:
        self.call_id = call_id
        self.outcome: asyncio.Future[tuple[Reach, str]] = (
            asyncio.get_running_loop().create_future()
        )

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        head = data[:4096]
        if head.startswith(b"SIP/2.0 ") and self.call_id in head:
            status = head.split(b"\r\n", 1)[0][8:].decode(errors="replace")
            self._finish(Reach.ANSWERED, f"answered {status[:80]}")

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self._finish(Reach.REFUSED, "port unreachable")

    def _finish(self, reach: Reach, detail: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result((reach, detail))


def _options_request(
    host: str, port: int, local: tuple[str, int], call_id: str
) -> bytes:
    """Return a minimal OPTIONS request for `host:port`, sent from `local`."""
    uri_host = f"[{host}]" if ":" in host else host
    local_host = f"[{local[0]}]" if ":" in local[0] else local[0]
    lines = [
        f"OPTIONS sip:{uri_host}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {local_host}:{local[1]};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:sip-endpoint-check@{local_host}>;tag={secrets.token_hex(4)}",
        f"To: <sip:{uri_host}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        "Accept: application/sdp",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


async def _udp_options(
    host: str,
    address: str,
    port: int,
    family: socket.AddressFamily,
    local: str,
    timeout: float,  # noqa: ASYNC109
) -> tuple[Reach, str]:
    """Send OPTIONS over a connected UDP socket until an answer or `timeout`."""
    loop = asyncio.get_running_loop()
    call_id = f"{secrets.token_hex(12)}@sip-endpoint-check"
    transport, client = await loop.create_datagram_endpoint(
        lambda: _OptionsClient(call_id.encode()),
        remote_addr=(address, port),
        local_addr=(local, 0) if local else None,
        family=family,
    )
    try:
        sockname = transport.get_extra_info("sockname")
        request = _options_request(host, port, (sockname[0], sockname[1]), call_id)
        deadline = time.monotonic() + timeout
        waits = iter(_RETRANSMIT_AFTER)
        while (left := deadline - time.monotonic()) > 0:
            transport.sendto(request)
            wait = min(next(waits, 4.0), left)
            done, _ = await asyncio.wait({client.outcome}, timeout=wait)
            if done:
                return client.outcome.result()
        return Reach.SILENT, f"no SIP answer within {timeout:g} s"
    finally:
        transport.close()


async def _tcp_connect(
    address: str,
    port: int,
    local: str,
    timeout: float,  # noqa: ASYNC109
) -> tuple[Reach, str]:
    """Open (and close) a TCP connection to `address:port`."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                asyncio.Protocol,
                address,
                port,
                local_addr=(local, 0) if local else None,
            )
    except ConnectionRefusedError:
        return Reach.REFUSED, "connection refused"
    except TimeoutError:
        return Reach.SILENT, f"no TCP connection within {timeout:g} s"
    transport.close()
    return Reach.ANSWERED, "connection accepted"
