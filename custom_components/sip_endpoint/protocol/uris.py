"""SIP URIs both sides write the same way (the registrar of registration states)."""

from .payloads import Transport


def host_port(host: str, port: int | None) -> str:
    """Return ``host[:port]``, with an IPv6 literal in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def transport_param(transport: Transport) -> str:
    """Return the ``;transport=`` URI parameter (none for auto)."""
    return "" if transport is Transport.AUTO else f";transport={transport.value}"


def registrar_uri(host: str, port: int | None, transport: Transport) -> str:
    """Return the registrar, ``sip:<host>[:port][;transport=..]``."""
    return f"sip:{host_port(host, port)}{transport_param(transport)}"
