"""A hand-written SIP peer over UDP, for the dialog requests baresip cannot send.

It calls a worker's extension directly (INVITE with or without SDP, chosen headers),
acknowledges, sends re-INVITE, UPDATE, INFO, OPTIONS and BYE in the dialog, answers
the worker's own requests, and listens for RTP on sockets of its own. Its small
parser is independent of the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
import secrets
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

SDP_TEMPLATE = (
    "v=0\r\n"
    "o=raw {version} {version} IN IP4 127.0.0.1\r\n"
    "s=raw\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP {formats}\r\n"
    "{rtpmaps}"
    "a=sendrecv\r\n"
)
G711 = "0 101", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
G729_ONLY = "18", "a=rtpmap:18 G729/8000\r\n"
_MEDIA_RE = re.compile(r"^m=audio (\d+) ", re.MULTILINE)
_CONNECTION_RE = re.compile(r"^c=IN IP[46] (\S+)", re.MULTILINE)


@dataclass
class Message:
    """A received SIP message: start line, headers (lower-case names), body."""

    start: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""

    @property
    def is_response(self) -> bool:
        """Return whether this is a response."""
        return self.start.startswith("SIP/2.0 ")

    @property
    def code(self) -> int:
        """Return the status code of a response."""
        return int(self.start.split(" ", 2)[1])

    @property
    def method(self) -> str:
        """Return the method of a request, or the CSeq method of a response."""
        if self.is_response:
            return self.header("cseq").split()[-1]
        return self.start.split(" ", 1)[0]

    def header(self, name: str) -> str:
        """Return the first value of a header ("" when absent)."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def sdp_address(self) -> tuple[str, int]:
        """Return the connection address and audio port of the SDP body."""
        connection = _CONNECTION_RE.search(self.body)
        media = _MEDIA_RE.search(self.body)
        assert connection is not None, self.body
        assert media is not None, self.body
        return connection.group(1), int(media.group(1))


_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact"}


def parse(data: bytes) -> Message:
    """Parse one datagram."""
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    message = Message(lines[0], body=body)
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        message.headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    return message


def sdp(port: int, *, version: int = 1, formats: tuple[str, str] = G711) -> str:
    """Return an SDP body offering audio on 127.0.0.1:``port``."""
    return SDP_TEMPLATE.format(
        port=port, version=version, formats=formats[0], rtpmaps=formats[1]
    )


class RawPeer:
    """One dialog from a UDP socket on 127.0.0.1 to ``sip:<user>@127.0.0.1:<port>``."""

    def __init__(self, user: str, port: int) -> None:
        """Open the SIP socket and two RTP sockets."""
        self.target = ("127.0.0.1", port)
        self.request_uri = f"sip:{user}@127.0.0.1:{port}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.rtp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for rtp in self.rtp:
            rtp.bind(("127.0.0.1", 0))
        self.local_port = self.sock.getsockname()[1]
        self.call_id = f"peer-{secrets.token_hex(8)}"
        self.from_tag = secrets.token_hex(4)
        self.to_header = f"<{self.request_uri}>"
        self.remote_target = self.request_uri
        self.invite_branch = ""
        self.invite_uri = self.request_uri
        self.invite_cseq = 1
        self.cseq = 1
        self._inbox: list[Message] = []

    def close(self) -> None:
        """Close every socket."""
        self.sock.close()
        for rtp in self.rtp:
            rtp.close()

    def rtp_port(self, index: int = 0) -> int:
        """Return the port of RTP socket ``index``."""
        return int(self.rtp[index].getsockname()[1])

    # --- sending -------------------------------------------------------------------

    def send(
        self,
        method: str,
        cseq: int,
        *,
        extra: str = "",
        body: str = "",
        content_type: str = "application/sdp",
        branch: str | None = None,
        uri: str | None = None,
        contact: bool = True,
    ) -> str:
        """Send a request; return its branch (``contact``: with a Contact header)."""
        branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
        message = (
            f"{method} {uri or self.request_uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local_port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f'From: "Raw Peer" <sip:9009@127.0.0.1:{self.local_port}>'
            f";tag={self.from_tag}\r\n"
            f"To: {self.to_header}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            + (
                f"Contact: <sip:9009@127.0.0.1:{self.local_port}>\r\n"
                if contact
                else ""
            )
            + f"{extra}"
            + (f"Content-Type: {content_type}\r\n" if body else "")
            + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )
        self.sock.sendto(message.encode(), self.target)
        return branch

    def invite(self, extra: str = "", *, body: str | None = None) -> None:
        """Send the INVITE (default: SDP for RTP socket 0; "" for none)."""
        offer = sdp(self.rtp_port(0)) if body is None else body
        self.invite_branch = self.send("INVITE", 1, extra=extra, body=offer)

    def ack(self, final: Message, body: str = "") -> None:
        """Acknowledge a final answer to the INVITE (the 2xx's: with its To tag)."""
        if final.code < 300:
            self.to_header = final.header("to")
            contact = final.header("contact")
            self.remote_target = contact.strip("<>").split(">")[0]
        branch = self.invite_branch if final.code >= 300 else None
        self.send(
            "ACK",
            self.invite_cseq,
            body=body,
            branch=branch,
            uri=self.invite_uri if final.code >= 300 else self.remote_target,
        )

    def in_dialog(
        self,
        method: str,
        *,
        extra: str = "",
        body: str = "",
        content_type: str = "application/sdp",
    ) -> int:
        """Send a request in the dialog with the next CSeq; return the CSeq."""
        self.cseq += 1
        branch = self.send(
            method,
            self.cseq,
            extra=extra,
            body=body,
            content_type=content_type,
            uri=self.remote_target,
        )
        if method == "INVITE":
            self.invite_cseq = self.cseq
            self.invite_branch = branch
            self.invite_uri = self.remote_target
        return self.cseq

    def respond(
        self,
        request: Message,
        code: int,
        reason: str = "OK",
        *,
        tag: str | None = None,
        extra: str = "",
        body: str = "",
    ) -> None:
        """Answer one of the worker's requests (``tag``: add it to To)."""
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {via}" for via in request.headers.get("via", [])]
        for name in ("from", "call-id", "cseq"):
            lines.append(f"{name.title()}: {request.header(name)}")
        to = request.header("to")
        lines.append(
            f"To: {to};tag={tag}" if tag and ";tag=" not in to else f"To: {to}"
        )
        head = "\r\n".join(lines) + "\r\n" + extra
        if body:
            head += "Content-Type: application/sdp\r\n"
        message = f"{head}Content-Length: {len(body.encode())}\r\n\r\n{body}"
        self.sock.sendto(message.encode(), self.target)

    def answer(self, invite: Message, tag: str, body: str | None = None) -> None:
        """Answer the worker's ``invite`` 200 with To tag ``tag`` and our Contact.

        ``body`` is the SDP answer (default: audio to RTP socket 0).
        """
        self.respond(
            invite,
            200,
            tag=tag,
            extra=f"Contact: <sip:9009@127.0.0.1:{self.local_port}>\r\n",
            body=sdp(self.rtp_port(0)) if body is None else body,
        )

    def accept_bye(self, timeout: float = 5.0) -> Message:
        """Wait for the worker's BYE (up to ``timeout`` s), answer it 200; return it."""
        bye = self.wait("BYE", request=True, timeout=timeout)
        self.respond(bye, 200)
        return bye

    # --- receiving -----------------------------------------------------------------

    def _receive(self, deadline: float) -> Message | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return parse(data)

    def wait(
        self,
        method: str,
        *,
        code: int | None = None,
        request: bool = False,
        timeout: float = 5.0,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        """Wait for a response to ``method`` (final, or ``code``), or a request.

        ``where`` narrows the choice further.
        """

        def wanted(message: Message) -> bool:
            if message.method != method or message.is_response == request:
                return False
            if where is not None and not where(message):
                return False
            if request:
                return True
            return message.code == code if code is not None else message.code >= 200

        deadline = time.monotonic() + timeout
        while True:
            for message in self._inbox:
                if wanted(message):
                    self._inbox.remove(message)
                    return message
            received = self._receive(deadline)
            if received is None:
                kind = "request" if request else f"{code or 'final'} response to"
                raise AssertionError(f"no {kind} {method}")
            self._inbox.append(received)

    def count(self, method: str, code: int, seconds: float) -> int:
        """Collect messages for ``seconds``; return how many ``code`` answers came."""
        deadline = time.monotonic() + seconds
        while (message := self._receive(deadline)) is not None:
            self._inbox.append(message)
        return sum(
            1
            for message in self._inbox
            if message.is_response and message.method == method and message.code == code
        )

    def rtp_arrives(self, index: int, timeout: float = 3.0) -> bool:
        """Return whether an RTP packet arrives on socket ``index`` within ``timeout``."""
        sock = self.rtp[index]
        sock.settimeout(0)
        try:  # forget what arrived before
            while sock.recv(2048):
                pass
        except BlockingIOError:
            pass
        sock.settimeout(timeout)
        try:
            data = sock.recv(2048)
        except TimeoutError:
            return False
        return len(data) >= 12 and data[0] >> 6 == 2
