"""A minimal SIP REGISTER client over UDP, to check exactly what the registrar answers."""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import re
import secrets
import socket
from typing import Final, Self

from .netutil import parse_status_code

_CHALLENGE_RE: Final = re.compile(r'(\w+)="?([^",]*)"?')


@dataclass
class SipResponse:
    """A parsed SIP response: status line and headers (names lower-cased)."""

    code: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Return the first value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_response(data: bytes) -> SipResponse:
    """Parse a SIP response datagram."""
    code = parse_status_code(data)
    if code is None:
        raise ValueError("not a SIP response")
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    lines = head.split("\r\n")
    reason = lines[0].split(" ", 2)[2] if lines[0].count(" ") >= 2 else ""
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return SipResponse(code, reason, headers)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class RawRegisterClient:
    """Sends REGISTER requests from a UDP socket on ``bind_host`` to a registrar."""

    def __init__(
        self, registrar_host: str, registrar_port: int, *, bind_host: str = "127.0.0.1"
    ) -> None:
        """Open the UDP socket."""
        self._target = (registrar_host, registrar_port)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((bind_host, 0))
        self._sock.settimeout(3.0)
        self._local = self._sock.getsockname()
        self._call_id = f"{secrets.token_hex(8)}@{bind_host}"
        self._cseq = 0

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def __enter__(self) -> Self:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on exit."""
        self.close()

    def _request(
        self, user: str, expires: int, authorization: str | None
    ) -> SipResponse:
        self._cseq += 1
        host, port = self._target
        local_host, local_port = self._local
        lines = [
            f"REGISTER sip:{host}:{port} SIP/2.0",
            f"Via: SIP/2.0/UDP {local_host}:{local_port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{host}>;tag={secrets.token_hex(4)}",
            f"To: <sip:{user}@{host}>",
            f"Call-ID: {self._call_id}",
            f"CSeq: {self._cseq} REGISTER",
            f"Contact: <sip:{user}@{local_host}:{local_port}>",
            f"Expires: {expires}",
        ]
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        lines += ["Content-Length: 0", "", ""]
        self._sock.sendto("\r\n".join(lines).encode(), self._target)
        while True:
            data, _ = self._sock.recvfrom(65535)
            response = parse_response(data)
            if response.code >= 200:
                return response

    def register(
        self, user: str, password: str, *, expires: int = 60
    ) -> list[SipResponse]:
        """Register ``user``; return every final response (challenge, then result)."""
        first = self._request(user, expires, None)
        responses = [first]
        challenge = first.header("WWW-Authenticate")
        if first.code != 401 or challenge is None:
            return responses
        params = dict(_CHALLENGE_RE.findall(challenge))
        realm, nonce = params["realm"], params["nonce"]
        host, port = self._target
        uri = f"sip:{host}:{port}"
        ha1 = _md5(f"{user}:{realm}:{password}")
        ha2 = _md5(f"REGISTER:{uri}")
        digest = _md5(f"{ha1}:{nonce}:{ha2}")
        authorization = (
            f'Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{digest}", algorithm=MD5'
        )
        responses.append(self._request(user, expires, authorization))
        return responses
