"""A hand-written SIP caller over UDP, for what baresip cannot send.

It sends an INVITE straight to the worker (with chosen headers), then CANCEL with a
Reason header, or ACK, INFO (DTMF) and BYE. Just enough SIP for those tests.
`send_request` sends one out-of-dialog request from a chosen source address.
"""

from __future__ import annotations

import secrets
import socket
import time

from tests.sipbed.rawsip import SipResponse, parse_response

SDP = (
    "v=0\r\n"
    "o=raw 1 1 IN IP4 127.0.0.1\r\n"
    "s=raw\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)


def send_request(
    host: str,
    port: int,
    method: str,
    *,
    user: str,
    to_tag: str | None = None,
    extra: str = "",
    timeout: float = 3.0,
) -> SipResponse | None:
    """Send one request from ``host`` to the worker on 127.0.0.1:``port``.

    Return its final response, or None when none came within ``timeout`` s.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        local = sock.getsockname()[1]
        to = f"<sip:{user}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        message = (
            f"{method} sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{method}{local};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:9009@{host}:{local}>;tag=f{local}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {method}-{local}@{host}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:9009@{host}:{local}>\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), ("127.0.0.1", port))
        sock.settimeout(timeout)
        try:
            while True:
                response = parse_response(sock.recvfrom(65535)[0])
                if response.code >= 200:
                    return response
        except TimeoutError:
            return None


class RawCaller:
    """One call from a UDP socket on 127.0.0.1 to ``sip:<user>@127.0.0.1:<port>``."""

    def __init__(self, user: str, port: int) -> None:
        """Open the SIP socket and a dummy RTP socket."""
        self.target = ("127.0.0.1", port)
        self.request_uri = f"sip:{user}@127.0.0.1:{port}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.local_port = self.sock.getsockname()[1]
        self.call_id = f"raw-{secrets.token_hex(8)}"
        self.from_tag = secrets.token_hex(4)
        self.branch = ""
        self.to_header = f"<{self.request_uri}>"
        self.cseq = 1

    def close(self) -> None:
        """Close the sockets."""
        self.sock.close()
        self.rtp.close()

    def _send(
        self,
        method: str,
        cseq: int,
        extra: str = "",
        body: str = "",
        *,
        branch: str | None = None,
    ) -> str:
        branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
        content_type = (
            "application/sdp" if method == "INVITE" else "application/dtmf-relay"
        )
        message = (
            f"{method} {self.request_uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local_port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f'From: "Raw Caller" <sip:9009@127.0.0.1:{self.local_port}>;tag={self.from_tag}\r\n'
            f"To: {self.to_header}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:9009@127.0.0.1:{self.local_port}>\r\n"
            f"{extra}"
            + (f"Content-Type: {content_type}\r\n" if body else "")
            + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )
        self.sock.sendto(message.encode(), self.target)
        return branch

    def invite(self, extra_headers: str = "") -> None:
        """Send the INVITE."""
        body = SDP.format(port=self.rtp.getsockname()[1])
        self.branch = self._send("INVITE", 1, extra_headers, body)

    def cancel(self, reason: str | None = None) -> None:
        """Send CANCEL for the INVITE (same branch), optionally with a Reason."""
        extra = f"Reason: {reason}\r\n" if reason else ""
        self._send("CANCEL", 1, extra, branch=self.branch)

    def ack(self, *, to_tag_from: SipResponse) -> None:
        """Acknowledge a final answer to the INVITE."""
        self.to_header = to_tag_from.header("to") or self.to_header
        self._send("ACK", 1, branch=self.branch if to_tag_from.code >= 300 else None)

    def info_dtmf(self, digit: str) -> None:
        """Send a DTMF digit as SIP INFO (application/dtmf-relay)."""
        self.cseq += 1
        self._send("INFO", self.cseq, body=f"Signal={digit}\r\nDuration=160\r\n")

    def bye(self) -> None:
        """Hang up an answered call."""
        self.cseq += 1
        self._send("BYE", self.cseq)

    def wait_response(
        self, method: str, code: int | None = None, timeout: float = 5.0
    ) -> SipResponse:
        """Wait for a (final, or ``code``) response to ``method``."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            if not data.startswith(b"SIP/2.0"):
                continue  # a request from the worker (e.g. its BYE)
            response = parse_response(data)
            if not (response.header("cseq") or "").endswith(method):
                continue
            if (code is None and response.code >= 200) or response.code == code:
                return response
        raise AssertionError(f"no {code or 'final'} response to {method}")
