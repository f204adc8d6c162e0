"""A scripted UDP registrar on loopback, for answers Kamailio will not give (423, 3xx).

``answer`` is called with each REGISTER and returns the response to send (or None to
stay silent). Every received request is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.worker.builtin.sip.message import (
    SipRequest,
    SipResponse,
    make_response,
    new_tag,
    parse_message,
)

if TYPE_CHECKING:
    from typing import Self

type Answer = Callable[[SipRequest], SipResponse | None]


def reply(request: SipRequest, status: int, *headers: tuple[str, str]) -> SipResponse:
    """Return a response to ``request`` with a To tag and extra headers."""
    return make_response(request, status, to_tag=new_tag(), headers=headers)


def ok_with_contact(request: SipRequest, expires: int) -> SipResponse:
    """Return 200 echoing the request's Contact with ``expires``."""
    contact = request.headers.get("Contact") or ""
    return reply(request, 200, ("Contact", f"{contact};expires={expires}"))


class FakeRegistrar(asyncio.DatagramProtocol):
    """Answers REGISTER (and OPTIONS with 200) over UDP on 127.0.0.1."""

    def __init__(self, answer: Answer) -> None:
        """Keep the script."""
        self.answer = answer
        self.requests: list[SipRequest] = []
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def start(cls, answer: Answer) -> Self:
        """Bind a fresh port and serve."""
        registrar = cls(answer)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: registrar, local_addr=("127.0.0.1", 0)
        )
        registrar.port = int(transport.get_extra_info("sockname")[1])
        return registrar

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the socket."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """Answer one request."""
        message = parse_message(data)
        if not isinstance(message, SipRequest):
            return
        self.requests.append(message)
        if message.method == "OPTIONS":
            response: SipResponse | None = reply(message, 200)
        else:
            response = self.answer(message)
        if response is not None and self._transport is not None:
            self._transport.sendto(response.to_bytes(), addr)

    def registers(self) -> list[SipRequest]:
        """Return the REGISTER requests received (retransmissions included)."""
        return [r for r in self.requests if r.method == "REGISTER"]

    def close(self) -> None:
        """Stop serving."""
        if self._transport is not None:
            self._transport.close()
