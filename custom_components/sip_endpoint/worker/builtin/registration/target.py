"""Where an extension's requests go, and the addresses it announces.

Requests go to the outbound proxy when one is set (a loose route: it is also the
top Route), otherwise to the registrar's host and port; the default port is 5060, or
5061 for TLS (RFC 3263's SRV lookup is not done). A host name is resolved with the
loop's ``getaddrinfo``, preferring the family of the worker's own address.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import ipaddress
import socket

from ....protocol.payloads import AccountParams, Transport
from ...core.uris import id_uri, proxy_uri, registrar_uri
from ..sip.message import SipParseError, SipUri, parse_uri

DEFAULT_PORT = 5060
DEFAULT_TLS_PORT = 5061


class TargetError(OSError):
    """The registrar or proxy cannot be reached: a bad URI or a failed lookup."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A resolved next hop: the address to send to and over which transport."""

    transport: Transport  # never AUTO
    host: str  # the name as configured, for TLS host name checks
    address: str  # resolved IP literal
    port: int

    @property
    def sockaddr(self) -> tuple[str, int]:
        """The ``(ip, port)`` to send to."""
        return self.address, self.port


def effective_transport(params: AccountParams) -> Transport:
    """Return the transport to use: AUTO means UDP."""
    return Transport.UDP if params.transport is Transport.AUTO else params.transport


@dataclass(frozen=True, slots=True)
class AccountAddresses:
    """The URIs one extension uses, derived from its settings."""

    aor: SipUri  # sip:<extension>@<domain>, To and From of REGISTER
    registrar: SipUri  # the REGISTER Request-URI
    registrar_text: str  # as reported in RegistrationState.registrar
    route_set: tuple[SipUri, ...]  # the outbound proxy as a loose route, if any
    next_hop: SipUri  # where requests are sent: the proxy, else the registrar
    transport: Transport

    @classmethod
    def from_params(cls, params: AccountParams) -> AccountAddresses:
        """Build the URIs; raises ``TargetError`` for a domain or proxy that is no URI."""
        try:
            aor = parse_uri(id_uri(params))
            registrar = parse_uri(registrar_uri(params))
            proxy_text = proxy_uri(params)
            proxy = parse_uri(proxy_text) if proxy_text else None
        except SipParseError as err:
            raise TargetError(f"bad registrar or proxy address: {err}") from err
        return cls(
            aor=aor,
            registrar=registrar,
            registrar_text=registrar_uri(params),
            route_set=(proxy,) if proxy else (),
            next_hop=proxy or registrar,
            transport=effective_transport(params),
        )


def _literal(host: str) -> str | None:
    """Return ``host`` as an IP literal without brackets, or None for a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


async def resolve(
    uri: SipUri, transport: Transport, *, prefer_ipv6: bool = False
) -> Destination:
    """Resolve the next hop ``uri`` to an address; raises ``TargetError``."""
    port = uri.port or (
        DEFAULT_TLS_PORT if transport is Transport.TLS else DEFAULT_PORT
    )
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    literal = _literal(uri.host)
    if literal is not None:
        return Destination(transport, host, literal, port)
    kind = socket.SOCK_DGRAM if transport is Transport.UDP else socket.SOCK_STREAM
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=kind)
    except (OSError, UnicodeError) as err:
        raise TargetError(f"cannot resolve {host}: {err}") from err
    preferred = socket.AF_INET6 if prefer_ipv6 else socket.AF_INET
    infos.sort(key=lambda info: info[0] != preferred)
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return Destination(transport, host, str(sockaddr[0]), port)
    raise TargetError(f"no address for {host}")


def local_address(destination: Destination) -> str:
    """Return the local IP the system would send from toward ``destination``.

    Used when the worker is bound to the any-address: a connected UDP socket sends
    nothing but learns its source address from the routing table.
    """
    family = socket.AF_INET6 if ":" in destination.address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(destination.sockaddr)
            return str(probe.getsockname()[0])
    except OSError:
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"
