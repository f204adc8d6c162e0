"""Edge paths of the built-in stack: before start, keep-alives, traces, failing routes.

The stack runs in the test's loop (``WatchedStack`` of the call tests: its events go
to a queue); requests reach it through a fake server transaction that records the
answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, BinaryIO

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallDirection,
    EventName,
    Transport,
)
from custom_components.sip_endpoint.worker.builtin import loop as loop_module
from custom_components.sip_endpoint.worker.builtin.loop import (
    BuiltinWorker,
    integration_version,
)
from custom_components.sip_endpoint.worker.builtin.registration.host import (
    TRANSPORT_ERROR_CODE,
    NoAnswer,
)
from custom_components.sip_endpoint.worker.builtin.registration.target import (
    Destination,
)
from custom_components.sip_endpoint.worker.builtin.sip import (
    transaction as transaction_module,
)
from custom_components.sip_endpoint.worker.builtin.sip.message import SipParseError
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    Source,
    TransportError,
)
from custom_components.sip_endpoint.worker.builtin.stack import TRACE_LEVEL

from .calls.test_call_edges import FakeTransaction, _request, refuse_invalid_names
from .calls.test_call_guards import Call, FakeAccount
from .calls.test_call_release import WatchedStack, _started

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

LOOP_LOGGER = "custom_components.sip_endpoint.worker.builtin.loop"
STACK_LOGGER = "custom_components.sip_endpoint.worker.builtin.stack"
SOURCE = Source("udp", "127.0.0.1", 5062)


@pytest.fixture
async def stack(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WatchedStack]:
    """Return a started in-process stack (sources: 127.0.0.1; no DNS)."""
    refuse_invalid_names(monkeypatch)
    started, _ = await _started()
    try:
        yield started
    finally:
        await started.close()


def _logged(stack: WatchedStack) -> list[str]:
    lines: list[str] = []
    while not stack.events.empty():
        name, payload = stack.events.get_nowait()
        if name is EventName.LOG:
            lines.append(payload.message)
    return lines


async def test_before_start_there_is_no_port_and_no_keepalive() -> None:
    """An unstarted stack reports its configured port and sends no keep-alive."""
    idle = WatchedStack()
    assert idle.transport is None
    assert idle.contact_port(Transport.UDP) == idle.sip_port
    idle.send_keepalive(Destination(Transport.UDP, "127.0.0.1", "127.0.0.1", 9))
    assert not idle.transactions._tasks
    assert idle.account_for_user(None) is None
    assert idle.account_for_user("2040") is None


async def test_a_keepalive_is_not_traced_but_a_message_is(stack: WatchedStack) -> None:
    """At level 5, CRLF CRLF is not traced as a message; a request is, as text."""
    stack.log_level = TRACE_LEVEL
    stack.trace("Received from", b"\r\n\r\n", "udp:127.0.0.1:5062")
    assert _logged(stack) == []
    stack.trace("Received from", _request("OPTIONS"), "udp:127.0.0.1:5062")
    [line] = _logged(stack)
    assert line.startswith("Received from udp:127.0.0.1:5062:\nOPTIONS sip:1@")


async def test_a_response_for_no_transaction_is_dropped(
    stack: WatchedStack, caplog: pytest.LogCaptureFixture
) -> None:
    """A stray 200 reaching the stack is logged at debug level and answered by nothing."""
    response = (
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\n"
        "From: <sip:2040@127.0.0.1>;tag=a\r\n"
        "To: <sip:9@127.0.0.1>;tag=b\r\n"
        "Call-ID: stray@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    with (
        caplog.at_level(logging.DEBUG, STACK_LOGGER),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        peer.bind(("127.0.0.1", 0))
        peer.sendto(response.encode(), ("127.0.0.1", stack.sip_port))
        await stack.wait_until(lambda: "matched no transaction" in caplog.text, 5)
    assert "A 200 from 127.0.0.1 matched no transaction" in caplog.text
    assert not stack.calls


@pytest.mark.parametrize(
    ("error", "status"),
    [(SipParseError("bad From"), 400), (RuntimeError("bug"), 500)],
)
async def test_a_request_whose_routing_fails_is_answered(
    stack: WatchedStack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    status: int,
) -> None:
    """A malformed header found late: 400; any other failure: 500, logged."""

    def failing(*args: Any) -> None:
        raise error

    monkeypatch.setattr(stack, "route_request", failing)
    transaction = FakeTransaction(_request("INFO"))
    with caplog.at_level(logging.DEBUG, STACK_LOGGER):
        stack._on_request(transaction.request, SOURCE, transaction)  # type: ignore[arg-type]
        # An ACK has no transaction: nothing is answered, nothing raises.
        stack._on_request(_request("ACK"), SOURCE, None)
    assert [answer.status for answer in transaction.answers] == [status]
    assert transaction.answers[0].to_addr.tag
    expected = "Refusing a malformed request" if status == 400 else "Handling a INFO"
    assert expected in caplog.text


async def test_a_failing_keepalive_stays_quiet(
    stack: WatchedStack, caplog: pytest.LogCaptureFixture
) -> None:
    """A keep-alive to a name that does not resolve fails only into the debug log."""
    with caplog.at_level(logging.DEBUG, STACK_LOGGER):
        stack.send_keepalive(
            Destination(Transport.UDP, "host.invalid", "host.invalid", 5060)
        )
        await stack.wait_until(lambda: "Keep-alive not sent" in caplog.text, 5)
    assert "Keep-alive not sent" in caplog.text
    assert not stack.transactions._tasks


def test_an_unreadable_manifest_gives_an_unknown_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hello` says engine_version "unknown" when manifest.json is missing or odd."""
    monkeypatch.setattr(loop_module, "MANIFEST", tmp_path / "missing.json")
    assert integration_version() == "unknown"
    odd = tmp_path / "odd.json"
    odd.write_text("[1, 2]", encoding="utf-8")
    monkeypatch.setattr(loop_module, "MANIFEST", odd)
    assert integration_version() == "unknown"
    good = tmp_path / "manifest.json"
    good.write_text('{"version": "1.2.3"}', encoding="utf-8")
    monkeypatch.setattr(loop_module, "MANIFEST", good)
    assert integration_version() == "1.2.3"


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (TransportError("connection refused"), "connection refused"),
        (OSError(111, "Connection refused"), "[Errno 111] Connection refused"),
        (OSError(), "OSError"),
        (ValueError("bad value"), None),
    ],
)
def test_network_errors_are_answered_as_sip_errors(
    error: Exception, text: str | None
) -> None:
    """Transport and OS errors give the text of a `sip_error`; others are not SIP."""
    assert loop_module._engine_error(error) == text


@pytest.fixture
def protocol_out() -> Iterator[BinaryIO]:
    """Return the write end of a pipe, as the worker's protocol output is."""
    read_fd, write_fd = os.pipe()
    with open(read_fd, "rb"), open(write_fd, "wb") as stream:
        yield stream


async def test_a_failing_teardown_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    protocol_out: BinaryIO,
) -> None:
    """If closing the stack fails at shutdown, the worker logs it and goes on."""
    worker = BuiltinWorker(0, protocol_out)

    async def broken_close() -> None:
        raise RuntimeError("close failed")

    monkeypatch.setattr(worker.stack, "close", broken_close)
    with caplog.at_level(logging.ERROR, LOOP_LOGGER):
        await worker._teardown()
    assert "Error during shutdown" in caplog.text


async def test_what_escapes_a_callback_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker loop's exception handler logs the message and the traceback."""
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR, LOOP_LOGGER):
        loop_module._log_loop_error(
            loop, {"message": "callback broke", "exception": RuntimeError("boom")}
        )
    [record] = [r for r in caplog.records if r.name == LOOP_LOGGER]
    assert record.getMessage() == "Error in the worker's loop: callback broke"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_a_request_the_layer_cannot_take_is_answered_by_the_stack(
    stack: WatchedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """send_request never raises: a full transaction layer is a transport error."""
    monkeypatch.setattr(transaction_module, "MAX_CLIENT_TRANSACTIONS", 0)
    outcome = await stack.send_request(
        _request("OPTIONS"),
        Destination(Transport.UDP, "127.0.0.1", "127.0.0.1", 9),
        1.0,
    )
    assert isinstance(outcome, NoAnswer)
    assert outcome.code == TRANSPORT_ERROR_CODE
    assert outcome.reason == "too many transactions"


class _BrokenAccount:
    """An account whose reaction to a closed connection fails."""

    def __init__(self) -> None:
        """Count the calls."""
        self.lost = 0

    def connection_lost(self, key: tuple[str, str, int]) -> None:
        """Fail."""
        self.lost += 1
        raise RuntimeError("connection_lost broke")

    def close(self) -> None:
        """Nothing to stop."""


async def test_a_failure_on_a_closed_connection_stays_inside(
    stack: WatchedStack, caplog: pytest.LogCaptureFixture
) -> None:
    """A TCP peer that hangs up: a failing reaction to it is logged, not raised."""
    broken = _BrokenAccount()
    stack.accounts["ext-broken"] = broken  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, STACK_LOGGER):
        _, writer = await asyncio.open_connection("127.0.0.1", stack.sip_port)
        writer.write(b"\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await stack.wait_until(lambda: broken.lost > 0, 5)
    del stack.accounts["ext-broken"]
    assert broken.lost == 1
    assert "Handling a closed connection failed" in caplog.text


async def test_an_ack_of_no_call_and_a_call_forgotten_twice_change_nothing(
    stack: WatchedStack,
) -> None:
    """An ACK no call owns is dropped silently; forgetting an unknown call is a no-op."""
    stack._on_request(_request("ACK"), SOURCE, None)
    assert stack.events.empty()
    assert not stack.calls
    stranger = Call(stack, FakeAccount(), CallDirection.INBOUND, "udp")  # type: ignore[arg-type]
    stack.calls["someone-else"] = stranger
    stack.forget_call(stranger)  # its own id is not in calls: the other entry stays
    assert stack.calls == {"someone-else": stranger}
    del stack.calls["someone-else"]
