"""Build the worker's request parameters from the engine's settings."""

import asyncio
import ipaddress
import logging
import socket

from ..protocol.payloads import AccountParams, StartParams
from ..protocol.uris import registrar_uri as protocol_registrar_uri
from .models import EngineOptions, ExtensionSettings, ServerSettings, auth_id_for

_LOGGER = logging.getLogger(__name__)


def uri_host(uri: str) -> str:
    """Return the host part of a SIP URI or of a plain host[:port]."""
    value = uri.strip().strip("<>")
    scheme, sep, rest = value.partition(":")
    if sep and scheme.lower() in ("sip", "sips"):
        value = rest
    value = value.split(";", 1)[0].split("?", 1)[0]
    value = value.rsplit("@", 1)[-1]
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") > 1:  # a bare IPv6 address
        return value
    return value.split(":", 1)[0]


def source_hosts(server: ServerSettings) -> list[str]:
    """Hosts whose addresses may send SIP requests to the workers."""
    hosts = [uri_host(server.host)]
    if server.outbound_proxy:
        hosts.append(uri_host(server.outbound_proxy))
    return [host for host in dict.fromkeys(hosts) if host]


async def resolve_allowed_sources(server: ServerSettings) -> list[str]:
    """Resolve the registrar's and outbound proxy's addresses, without blocking."""
    loop = asyncio.get_running_loop()
    addresses: list[str] = []
    for host in source_hosts(server):
        if _is_ip_address(host):  # no lookup (and no executor thread) needed
            if host not in addresses:
                addresses.append(host)
            continue
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError as err:
            _LOGGER.warning("Cannot resolve %s: %s", host, err)
            continue
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
    return addresses


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104


def bind_host_toward(bind_host: str, registrar_addresses: list[str]) -> str:
    """Return the address the workers bind and advertise in Contact and Via.

    A wildcard bind would let pjsua2 advertise whichever interface it likes, which the
    registrar may not reach. Instead the workers bind the address this machine uses
    to reach the registrar (a UDP connect sends nothing). An explicit address is kept.
    """
    if bind_host not in _WILDCARD_HOSTS:
        return bind_host
    for address in registrar_addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((address, 5060))
            except OSError:
                continue
            return str(probe.getsockname()[0])
    return bind_host


def start_params(options: EngineOptions, allowed_sources: list[str]) -> StartParams:
    """Build the `start` request for one worker.

    Every worker gets the whole port range and binds the first free port in it; the
    engine sends `start` requests one at a time, so its workers never race for a port.
    The registrar's addresses come first in `allowed_sources`.
    """
    return StartParams(
        bind_host=bind_host_toward(options.bind_host, allowed_sources),
        port_min=options.port_min,
        port_max=options.port_max,
        restrict_sources=options.restrict_sources,
        allowed_sources=allowed_sources,
        tls_verify=options.tls_verify,
        tls_ca_file=options.tls_ca_file,
    )


def account_params(
    server: ServerSettings, options: EngineOptions, extension: ExtensionSettings
) -> AccountParams:
    """Build the `add_account` request for one extension."""
    return AccountParams(
        account_id=extension.account_id,
        extension=extension.extension,
        auth_id=auth_id_for(extension.extension, extension.auth_id),
        password=extension.password,
        domain=server.host,
        port=server.port,
        transport=server.transport,
        outbound_proxy=server.outbound_proxy,
        expiry=options.expiry,
        keepalive=options.keepalive,
        keepalive_interval=options.keepalive_interval,
        retry_interval=options.retry_interval,
    )


def registrar_uri(server: ServerSettings) -> str:
    """Return the registrar as a SIP URI, for states the engine reports itself.

    Written as the workers write it (`protocol.uris.registrar_uri`).
    """
    return protocol_registrar_uri(server.host, server.port, server.transport)
