"""A hand-written SIP caller that calls through Kamailio (Record-Route and all).

Blocking and small: INVITE, wait for the final answer, ACK along the route set, BYE.
Used for load tests, where a baresip per call would cost more than the calls.
"""

from __future__ import annotations

import secrets
import socket
import time

from tests.sipbed.rawsip import SipResponse, parse_response

_SDP = (
    "v=0\r\n"
    "o=load 1 1 IN IP4 {host}\r\n"
    "s=load\r\n"
    "c=IN IP4 {host}\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=sendrecv\r\n"
)


class ProxyCaller:
    """One call from ``caller`` (a UDP socket on ``host``) to ``callee`` via a proxy."""

    def __init__(
        self, proxy: tuple[str, int], callee: str, *, host: str = "127.0.0.1"
    ) -> None:
        """Open the SIP socket and an RTP socket nobody reads."""
        self.proxy = proxy
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))
        self.port: int = self.sock.getsockname()[1]
        self.name = f"caller-{secrets.token_hex(4)}"  # the display name in From
        self.request_uri = f"sip:{callee}@{proxy[0]}:{proxy[1]}"
        self.call_id = f"load-{secrets.token_hex(8)}@{host}"
        self.from_tag = secrets.token_hex(4)
        self.to_header = f"<{self.request_uri}>"
        self.remote_target = self.request_uri
        self.route: list[str] = []
        self.invite_branch = ""

    def close(self) -> None:
        """Close both sockets."""
        self.sock.close()
        self.rtp.close()

    def _send(self, method: str, cseq: int, *, uri: str, body: str = "") -> str:
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        route = "".join(f"Route: {hop}\r\n" for hop in self.route)
        message = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f'From: "{self.name}" <sip:9009@{self.host}:{self.port}>;tag={self.from_tag}\r\n'
            f"To: {self.to_header}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:9009@{self.host}:{self.port}>\r\n"
            f"{route}"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )
        self.sock.sendto(message.encode(), self.proxy)
        return branch

    def invite(self) -> None:
        """Send the INVITE to the proxy."""
        body = _SDP.format(host=self.host, port=self.rtp.getsockname()[1])
        self.invite_branch = self._send("INVITE", 1, uri=self.request_uri, body=body)

    def wait_final(self, method: str = "INVITE", timeout: float = 10.0) -> SipResponse:
        """Wait for the final response to ``method``; answer the callee's BYE if any."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            if not data.startswith(b"SIP/2.0"):
                continue
            response = parse_response(data)
            if (response.header("cseq") or "").endswith(
                method
            ) and response.code >= 200:
                return response
        raise AssertionError(f"no final response to {method} for {self.call_id}")

    def ack(self, answer: SipResponse) -> None:
        """Acknowledge a 2xx along the route set it carried."""
        self.to_header = answer.header("to") or self.to_header
        self.route = list(reversed(answer.headers.get("record-route", [])))
        contact = answer.header("contact") or self.request_uri
        self.remote_target = contact.split("<", 1)[-1].split(">", 1)[0]
        self._send("ACK", 1, uri=self.remote_target)

    def bye(self) -> int:
        """Hang up; return the BYE's final status code."""
        self._send("BYE", 2, uri=self.remote_target)
        return self.wait_final("BYE").code

    def call(self) -> SipResponse:
        """INVITE and wait for the final answer (ACK it when it is a 2xx)."""
        self.invite()
        answer = self.wait_final()
        if answer.code < 300:
            self.ack(answer)
        return answer
