"""Bad input: malformed SIP on the worker's ports, and fuzzed protocol traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.sip_endpoint.engine.worker_client import WorkerClient
from custom_components.sip_endpoint.protocol import wire
from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    Method,
    Refused,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.protocol.test_fuzz import json_values
from tests.sipbed.rawsip import parse_response
from tests.worker.client import account_params

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.sipbed.kamailio import Kamailio
    from tests.worker.client import WorkerClient as TestWorkerClient

_SDP = (
    "v=0\r\no=x 1 1 IN IP4 {host}\r\ns=x\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _request(
    host: str,
    port: int,
    *,
    method: str = "INVITE",
    user: str = "2050",
    body: str = "",
    extra: str = "",
    tag: str = "1",
) -> bytes:
    content_type = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:5999;branch=z9hG4bKbad{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:9009@{host}:5999>;tag=t{tag}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: bad-{tag}@{host}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:9009@{host}:5999>\r\n"
        f"{extra}{content_type}Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def _final_code(host: str, port: int, message: bytes) -> int | None:
    """Send one datagram from ``host``; return the final status code, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        message = message.replace(b":5999", f":{sock.getsockname()[1]}".encode())
        sock.sendto(message, ("127.0.0.1", port))
        sock.settimeout(2)
        with contextlib.suppress(TimeoutError):
            while True:
                response = parse_response(sock.recvfrom(65535)[0])
                if response.code >= 200:
                    return response.code
    return None


def _registered(worker: TestWorkerClient, kamailio: Kamailio) -> None:
    worker.request(
        Method.ADD_ACCOUNT, account_params("2050", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2050", RegistrationStatus.SUCCESSFUL)


def _still_registers(worker: TestWorkerClient) -> None:
    """Check the worker is alive, answers the protocol and registers again."""
    assert worker.process.poll() is None, worker.stderr()
    worker.request(Method.REREGISTER, {"account_id": "ext-2050"})
    worker.wait_registration("ext-2050", RegistrationStatus.SUCCESSFUL)
    status = WorkerStatus.from_wire(worker.request(Method.STATUS))
    assert (status.accounts, status.calls) == (1, 0)


@pytest.mark.parametrize(
    ("user", "code"), [("2050", 403), ("4444", 403)], ids=["own", "other-user"]
)
def test_invite_without_sdp_from_a_stranger(
    worker: TestWorkerClient, kamailio: Kamailio, user: str, code: int
) -> None:
    """An offerless INVITE from 127.0.0.2 is refused (it used to abort the worker)."""
    _registered(worker, kamailio)
    for number in range(3):
        message = _request("127.0.0.2", worker.sip_port, user=user, tag=f"s{number}")
        assert _final_code("127.0.0.2", worker.sip_port, message) == code
    refused = Refused.from_wire(worker.wait_event(EventName.REFUSED).data)
    assert refused == Refused(source="127.0.0.2", method="INVITE")
    _still_registers(worker)


def test_invite_without_sdp_for_another_user(
    worker: TestWorkerClient, kamailio: Kamailio
) -> None:
    """An offerless INVITE from the registrar for a user the worker lacks gets 404."""
    _registered(worker, kamailio)
    message = _request("127.0.0.1", worker.sip_port, user="4444", tag="o")
    assert _final_code("127.0.0.1", worker.sip_port, message) == 404
    _still_registers(worker)


BAD_SDP = [
    "garbage",
    "v=0\r\nm=audio notaport RTP/AVP 0\r\n",
    (
        "v=0\r\no=x 1 1 IN IP4 999.1.1.1\r\ns=x\r\nc=IN IP4 999.1.1.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    ),
    (
        "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=video 4000 RTP/AVP 31\r\n"
    ),
    "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    + "m=audio 4000 RTP/AVP 0\r\n" * 40,
]


def test_invalid_sdp_from_the_registrar(
    worker: TestWorkerClient, kamailio: Kamailio
) -> None:
    """INVITEs with broken SDP from an allowed source: rejected, or a call to hang up.

    pjsua rejects what it cannot parse (400, 488); SDP it can parse but that is odd
    (an address like 999.1.1.1, forty audio lines) becomes an ordinary incoming call,
    which Home Assistant's side may refuse like any other.
    """
    _registered(worker, kamailio)
    codes = [
        _final_code(
            "127.0.0.1", worker.sip_port, _request("127.0.0.1", worker.sip_port,
            body=body, tag=f"sdp{number}")
        )
        for number, body in enumerate(BAD_SDP)
    ]  # fmt: skip
    worker.drain(0.5)
    announced = worker.events_named(EventName.INCOMING_CALL)
    print(f"\ninvalid SDP answers: {codes}; calls announced: {len(announced)}")  # noqa: T201
    assert codes[:2] == [400, 400]
    assert len([code for code in codes if code is None]) == len(announced)
    assert all(code is None or code >= 400 for code in codes)
    _hang_up_announced(worker)
    _still_registers(worker)


def _hang_up_announced(worker: TestWorkerClient) -> None:
    """End the calls the worker announced (as Home Assistant would refuse them)."""
    for event in worker.events_named(EventName.INCOMING_CALL):
        call_id: str = event.data["call_id"]
        worker.request(Method.HANGUP, {"call_id": call_id, "code": 486})
        worker.wait_event(EventName.CALL_ENDED, _call_matcher(call_id))
        worker.events.remove(event)


def _call_matcher(call_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda data: bool(data["call_id"] == call_id)


def _garbage(port: int) -> list[bytes]:
    big = "X-Big: " + "a" * 60000 + "\r\n"
    return [
        b"",
        b"\r\n\r\n",
        b"\x00\xff" * 700,
        b"INVITE",
        b"INVITE sip:2050@127.0.0.1 SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
        _request("127.0.0.1", port, extra="CSeq: banana\r\n", tag="g1"),
        _request("127.0.0.1", port, extra="Via: \r\nTo: <>>\r\n", tag="g2"),
        _request(
            "127.0.0.1", port, body=_SDP.format(host="127.0.0.1"), tag="g3"
        ).replace(b"Content-Length: ", b"Content-Length: 99999"),
        _request("127.0.0.1", port, method="OPTIONS", extra=big, tag="g4"),
        _request("127.0.0.1", port, method="NOTIFY", extra="Event: x\r\n", tag="g5"),
        _request("127.0.0.1", port, method="MESSAGE", body="hi", tag="g6"),
        "INVITE sip:ü@127.0.0.1 SIP/2.0\r\nVia: ☃\r\n\r\n".encode(),
    ]


def test_garbage_on_udp_and_tcp(worker: TestWorkerClient, kamailio: Kamailio) -> None:
    """Garbage, truncated and oversized SIP on UDP and TCP: dropped or answered."""
    _registered(worker, kamailio)
    datagrams = _garbage(worker.sip_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", worker.sip_port))
    for datagram in [*datagrams, b"A" * 300000 + b"\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", worker.sip_port), 2) as stream:
            with contextlib.suppress(OSError):
                stream.sendall(datagram.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
            time.sleep(0.05)
    worker.drain(1.0)
    # Some of these are valid enough to be a call (e.g. a second CSeq is ignored).
    _hang_up_announced(worker)
    _still_registers(worker)


# --- the protocol between Home Assistant and the worker ---------------------------

# Methods that never reach the network with random parameters (add_account and
# make_call could look up random host names; start and shutdown end the test).
FUZZED_METHODS = [
    str(method)
    for method in Method
    if method
    not in (Method.ADD_ACCOUNT, Method.MAKE_CALL, Method.START, Method.SHUTDOWN)
]


def test_worker_answers_random_requests(
    worker: TestWorkerClient, kamailio: Kamailio
) -> None:
    """Random (valid JSON) requests each get an answer; the worker keeps registering."""
    _registered(worker, kamailio)
    answered: dict[str, int] = {"error": 0, "result": 0}

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        method=st.sampled_from(FUZZED_METHODS) | st.text(max_size=12),
        params=st.dictionaries(
            st.sampled_from(["account_id", "call_id", "path", "enable", "code", "tone"])
            | st.text(max_size=8),
            json_values,
            max_size=5,
        ),
    )
    def exchange(method: str, params: dict[str, Any]) -> None:
        if method in ("add_account", "make_call", "start", "shutdown"):
            return
        response = worker.wait_response(worker.send(method, params))
        if response.error is not None:
            answered["error"] += 1
            if not method:  # not a request at all, but its id was readable
                assert response.error.code == wire.ErrorCode.BAD_REQUEST
            elif method not in FUZZED_METHODS:
                assert response.error.code == wire.ErrorCode.UNKNOWN_METHOD
        else:
            answered["result"] += 1
            assert method in FUZZED_METHODS

    exchange()
    print(f"\nfuzzed requests: {answered}")  # noqa: T201
    assert answered["error"] > 0
    _still_registers(worker)


# Lines that are not requests, with the id and the `bad_request` message each gets.
BROKEN_LINES: list[tuple[bytes, int, str]] = [
    (b"{", 0, "not JSON"),
    (b"[]", 0, "not a JSON object"),
    (b"null", 0, "not a JSON object"),
    (b'{"type": "request"}', 0, "id must be a non-negative integer"),
    (
        b'{"type": "request", "id": "x", "method": 5, "params": []}',
        0,
        "id must be a non-negative integer",
    ),
    # A second hello, once misspelt (no "event" key), once well formed.
    (
        b'{"type": "event", "name": "hello", "data": {}}',
        0,
        "event must be a non-empty string",
    ),
    (b'{"type": "event", "event": "hello", "data": {}}', 0, "expected a request"),
    # A response where a request belongs keeps its id.
    (b'{"type": "response", "id": 7, "result": {}}', 7, "expected a request"),
    (
        json.dumps({"type": "request", "id": 10**30, "method": "status"}).encode(),
        0,
        "id must be a non-negative integer",
    ),
    (b"\xff\xfe\x00", 0, "not JSON"),
    (b'"' + b"a" * 100000 + b'"', 0, "not a JSON object"),
]


def test_worker_answers_broken_lines(
    worker: TestWorkerClient, kamailio: Kamailio
) -> None:
    """Lines that are not requests get a bad_request error each; the worker lives on."""
    _registered(worker, kamailio)
    for line, answer_id, message in BROKEN_LINES:
        worker.send_raw(line + b"\n")
        response = worker.wait_response(answer_id)
        assert response.result is None, line[:60]
        assert response.error is not None, line[:60]
        assert (response.error.code, response.error.message) == (
            wire.ErrorCode.BAD_REQUEST,
            message,
        ), line[:60]
    worker.drain(0.5)
    assert not worker.responses  # one answer per line, no more
    _still_registers(worker)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=200)
        | json_values.map(lambda value: json.dumps(value).encode())
        | st.builds(
            lambda name, data: json.dumps(
                {"type": "event", "name": name, "data": data}
            ).encode(),
            st.sampled_from([str(name) for name in EventName]) | st.text(max_size=8),
            st.dictionaries(st.text(max_size=10), json_values, max_size=6),
        )
        | st.builds(
            lambda msg_id, data: json.dumps(
                {"type": "response", "id": msg_id, "result": data}
            ).encode(),
            st.integers(-5, 5),
            json_values,
        ),
        max_size=8,
    )
)
def test_engine_reader_survives_random_lines(lines: list[bytes]) -> None:
    """The engine's reader takes any line a worker could write without raising."""

    async def feed() -> list[wire.Event]:
        events: list[wire.Event] = []
        client = WorkerClient(
            "/nonexistent/python", name="fuzz", on_event=events.append
        )
        for line in lines:
            client._handle_line(line)  # the line handler under test
        return events

    for event in asyncio.run(feed()):
        assert isinstance(event, wire.Event)
        assert event.name != EventName.HELLO


def test_unreadable_request_is_answered_under_its_id(
    launched_worker: TestWorkerClient,
) -> None:
    """A request whose id can be read but whose method cannot is answered by its id."""
    launched_worker.send_raw(b'{"type": "request", "id": 7, "method": ""}\n')
    response = launched_worker.wait_response(7)
    assert response.error is not None
    assert response.error.code == wire.ErrorCode.BAD_REQUEST
