"""Small loopback network helpers for the SIP test bed."""

from __future__ import annotations

import contextlib
import secrets
import socket
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import ssl

_BIND_ATTEMPTS: Final = 50


def _port_is_free(host: str, port: int) -> bool:
    """Return whether ``port`` can be bound on ``host`` for both UDP and TCP."""
    with contextlib.ExitStack() as stack:
        try:
            udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            udp.bind((host, port))
            tcp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, preferred: int | None = None) -> int:
    """Return a port that is free for both UDP and TCP on ``host``.

    ``preferred`` is returned when it is free; otherwise the kernel picks one.
    """
    if preferred is not None and _port_is_free(host, preferred):
        return preferred
    for _ in range(_BIND_ATTEMPTS):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
        if _port_is_free(host, port):
            return port
    raise OSError(f"no free UDP+TCP port on {host}")


def free_tcp_port(host: str = "127.0.0.1", *, avoid: int | None = None) -> int:
    """Return a free TCP port on ``host`` (never ``avoid``)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
        if port != avoid:
            return port


def parse_status_code(response: bytes) -> int | None:
    """Return the status code of a SIP response, or None if it is not one."""
    first_line = response.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = first_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("SIP/2.0"):
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


def _options_request(
    local: tuple[str, int],
    host: str,
    port: int,
    user: str | None,
    tag: str,
    transport: str = "udp",
) -> bytes:
    """Return an OPTIONS for ``user@host:port`` (or ``host:port``) sent from ``local``.

    Over another ``transport`` than UDP the Request-URI names it.
    """
    target = f"{user}@{host}:{port}" if user else f"{host}:{port}"
    to = f"{user}@{host}" if user else target
    uri_params = "" if transport == "udp" else f";transport={transport}"
    local_host, local_port = local[:2]
    return (
        f"OPTIONS sip:{target}{uri_params} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {local_host}:{local_port}"
        f";branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{local_host}>;tag={tag}\r\n"
        f"To: <sip:{to}>\r\n"
        f"Call-ID: probe-{tag}@{local_host}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def sip_options(
    host: str, port: int, *, timeout: float = 1.0, source: str | None = None
) -> bytes | None:
    """Send one OPTIONS over UDP to ``host:port``; return the raw response or None.

    The request is sent from ``source`` (default: ``host`` itself, i.e. loopback use).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source or host, 0))
        request = _options_request(
            sock.getsockname(), host, port, None, secrets.token_hex(6)
        )
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            data, _ = sock.recvfrom(65535)
        except OSError:
            return None
    return data


def options_for_user(host: str, port: int, user: str, *, timeout: float) -> int | None:
    """Send OPTIONS for ``user`` through the proxy at ``host:port`` (UDP).

    Return the first final answer's code (provisional ones are skipped), or None when
    none comes within ``timeout`` of the last answer. A registrar such as Kamailio
    answers 480 at once when ``user`` has no contact; otherwise it forwards the
    OPTIONS to the contact.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        request = _options_request(
            sock.getsockname(), host, port, user, secrets.token_hex(6)
        )
        sock.settimeout(timeout)
        sock.sendto(request, (host, port))
        try:
            while True:
                code = parse_status_code(sock.recvfrom(65535)[0])
                if code is not None and code >= 200:
                    return code
        except OSError:
            return None


def sip_options_tls(
    host: str, port: int, context: ssl.SSLContext, *, timeout: float = 5.0
) -> bytes:
    """Send one OPTIONS over TLS to ``host:port``; return the raw response.

    The server's certificate is checked by ``context`` for ``host`` (an
    ``ssl.SSLError`` says why it is refused).
    """
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tag = secrets.token_hex(6)
        tls.sendall(_options_request(tls.getsockname(), host, port, None, tag, "tls"))
        return tls.recv(65535)


def sip_options_ping(
    host: str, port: int, *, timeout: float = 1.0, source: str | None = None
) -> int | None:
    """Send one OPTIONS over UDP to ``host:port``; return the status code or None."""
    response = sip_options(host, port, timeout=timeout, source=source)
    return None if response is None else parse_status_code(response)
