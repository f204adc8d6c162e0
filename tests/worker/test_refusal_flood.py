"""A SIP scanner's flood: a bounded number of log lines and `refused` events.

127.0.0.2 is not an allowed source. It sends thousands of SUBSCRIBEs over UDP (both
engines refuse them with 403 in their own source filter); the built-in engine also
gets hundreds of TCP connections from it, and junk from both sources. What the worker
reports follows the summary rule of `worker/core/refusals.py` (per source and burst:
the first refusal, at most one summary per interval while it lasts, and what is
pending at shutdown), so the counts below are bounded by the number of intervals the
test ran, not by the number of packets. The refusal counts in the events add up to at
least the 403s the scanner received. Meanwhile a call through Kamailio still reaches
the extension, and the worker stays alive and exits cleanly.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Final

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    EndCause,
    EventName,
    IncomingCall,
    LogLine,
    Method,
    Refused,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.core.refusals import SUMMARY_INTERVAL

from .client import account_params, start_params

if TYPE_CHECKING:
    from tests.sipbed.baresip import Baresip, BaresipFactory
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

SCANNER: Final = "127.0.0.2"
EXT: Final = "2070"
ACCOUNT_ID: Final = f"ext-{EXT}"
FLOOD_REQUESTS: Final = 3000
BATCH: Final = 100
TCP_CONNECTIONS: Final = 200
JUNK_DATAGRAMS: Final = 500
NOBODY_INVITES: Final = 200
MIN_ANSWERED: Final = 100  # 403s the scanner must get, many times the reports allowed
OVERSIZED_HEAD: Final = (
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"
)


class Scanner(threading.Thread):
    """Sends SUBSCRIBEs from 127.0.0.2 over UDP and counts the answers."""

    def __init__(self, port: int, count: int) -> None:
        """Aim at the worker's ``port``."""
        super().__init__(name="scanner", daemon=True)
        self.port = port
        self.count = count
        self.sent = 0
        self.codes: dict[int, int] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((SCANNER, 0))
        self.local = self.sock.getsockname()[1]

    def run(self) -> None:
        """Send in batches, reading the answers in between; then the stragglers."""
        try:
            while self.sent < self.count:
                for _ in range(min(BATCH, self.count - self.sent)):
                    self.sock.sendto(self._request(self.sent), ("127.0.0.1", self.port))
                    self.sent += 1
                self._read(0.01)
            while self._read(1.0):
                pass
        finally:
            self.sock.close()

    def _request(self, index: int) -> bytes:
        return (
            f"SUBSCRIBE sip:{EXT}@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {SCANNER}:{self.local};branch=z9hG4bKscan{index};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:100@{SCANNER}>;tag=s{index}\r\n"
            f"To: <sip:{EXT}@127.0.0.1>\r\n"
            f"Call-ID: scan-{index}-{self.local}@{SCANNER}\r\n"
            f"CSeq: 1 SUBSCRIBE\r\n"
            f"Contact: <sip:100@{SCANNER}:{self.local}>\r\n"
            "Event: presence\r\nExpires: 60\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def _read(self, wait: float) -> bool:
        """Read every answer that comes within ``wait`` s; return whether any did."""
        got = False
        while select.select([self.sock], [], [], wait)[0]:
            data = self.sock.recv(65535)
            got = True
            wait = 0.0
            with contextlib.suppress(ValueError, IndexError):
                code = int(data.split(b" ", 2)[1])
                self.codes[code] = self.codes.get(code, 0) + 1
        return got


def _oversized_connections(host: str, port: int, count: int) -> None:
    """Open ``count`` TCP connections from ``host``; each sends a too-large head."""
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            with contextlib.suppress(OSError):
                sock.sendall(OVERSIZED_HEAD)
                sock.recv(1024)  # the worker closes it: b"" or a reset


def _junk(host: str, port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        for index in range(count):
            sock.sendto(b"NOT SIP %d\r\n\r\n" % index, ("127.0.0.1", port))


def _started(
    worker: WorkerClient, sip_ports: tuple[int, int], kamailio: Kamailio
) -> WorkerClient:
    """Start with INFO log events (level 3) and register the extension."""
    result = worker.request(
        Method.START,
        start_params(port_min=sip_ports[0], port_max=sip_ports[1], log_level=3),
    )
    worker.sip_port = result["sip_port"]
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(ACCOUNT_ID, RegistrationStatus.SUCCESSFUL)
    return worker


def _call_through_kamailio(
    worker: WorkerClient, caller: Baresip, *, lossy: bool = False
) -> None:
    """Call the extension through Kamailio: announced, answered, ended by BYE.

    ``lossy``: during a UDP flood the kernel drops datagrams at the worker's socket,
    the caller's ACK too; a BYE that overtakes the ACK's retransmission ends a call
    the worker never saw confirmed (pjsua2: `failed`, not answered). The call still
    got through and ended; that is what is checked then.
    """
    caller.dial(EXT)
    call = IncomingCall.from_wire(
        worker.wait_event(EventName.INCOMING_CALL, timeout=20).data
    )
    assert call.account_id == ACCOUNT_ID
    worker.request(Method.ANSWER, {"call_id": call.call_id})
    caller.wait_established(timeout=20)
    caller.hangup()
    ended = CallEnded.from_wire(
        worker.wait_event(
            EventName.CALL_ENDED, lambda d: d["call_id"] == call.call_id, timeout=20
        ).data
    )
    if not lossy:
        assert ended.cause == EndCause.BYE, ended
        assert ended.answered
    caller.wait_closed()


def _reports_allowed(elapsed: float) -> int:
    """Return how many reports one burst of ``elapsed`` s may give.

    The first refusal, a summary per interval that ended while it lasted (and one
    more for the interval it ended in), and the one at shutdown.
    """
    return 3 + math.ceil(elapsed / SUMMARY_INTERVAL)


def test_a_flood_from_a_stranger_is_summarised(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    engine: str,
) -> None:
    """Thousands of refusals: a handful of events and lines; calls still work."""
    worker = _started(launched_worker, sip_ports, kamailio)
    caller = baresip_factory(user="9001", password="pw-9001", registrar=kamailio)
    caller.wait_registered()
    began = time.monotonic()
    scanner = Scanner(worker.sip_port, FLOOD_REQUESTS)
    scanner.start()
    _call_through_kamailio(worker, caller, lossy=True)  # during the flood
    tcp_refusals = 0
    if engine == "builtin":
        # Closed at accept, unread: no "message too large" per connection.
        _oversized_connections(SCANNER, worker.sip_port, TCP_CONNECTIONS)
        tcp_refusals = TCP_CONNECTIONS
        _junk(SCANNER, worker.sip_port, JUNK_DATAGRAMS)
    scanner.join(120)
    assert not scanner.is_alive()
    assert scanner.sent == FLOOD_REQUESTS
    refused_403 = scanner.codes.get(403, 0)
    # Most of a flood is dropped by the kernel; enough is answered to be a flood.
    assert refused_403 >= MIN_ANSWERED, scanner.codes
    _call_through_kamailio(worker, caller)  # after it
    assert WorkerStatus.from_wire(worker.request(Method.STATUS)).accounts == 1
    assert worker.shutdown() == 0
    elapsed = time.monotonic() - began

    refused = [
        Refused.from_wire(event.data)
        for event in worker.events_named(EventName.REFUSED)
    ]
    assert {r.source for r in refused} == {SCANNER}
    assert refused[0] == Refused(source=SCANNER, method="SUBSCRIBE")
    assert len(refused) <= _reports_allowed(elapsed)
    total = sum(r.count for r in refused)
    # Each 403 the scanner got is counted (some of its requests the kernel dropped).
    assert refused_403 + tcp_refusals <= total <= FLOOD_REQUESTS + tcp_refusals
    if engine == "builtin":
        assert any("TCP" in r.method for r in refused[1:])

    messages = [
        LogLine.from_wire(event.data).message
        for event in worker.events_named(EventName.LOG)
    ]
    stderr = worker.stderr_path.read_text(errors="replace").splitlines()
    # `log` events carry the built-in engine's Python records, pjsua2's carry pjlib's;
    # stderr has both engines' Python records.
    worker_lines = [line for line in stderr if "sip_endpoint" in line]
    for lines, has_records in ((messages, engine == "builtin"), (worker_lines, True)):
        about_scanner = [line for line in lines if SCANNER in line]
        refusal_lines = [line for line in about_scanner if "efused" in line]
        junk_lines = [line for line in about_scanner if "Dropped" in line]
        assert len(refusal_lines) <= _reports_allowed(elapsed), refusal_lines
        assert bool(refusal_lines) == has_records
        assert len(about_scanner) <= 2 * _reports_allowed(elapsed), about_scanner
        if engine == "builtin":
            assert 1 <= len(junk_lines) <= _reports_allowed(elapsed), junk_lines
    assert not [line for line in stderr if "message too large" in line]


@pytest.mark.engines("builtin", reason="pjsua's transport logs what pjlib logs")
def test_malformed_streams_from_the_registrar_are_summarised(
    worker: WorkerClient,
) -> None:
    """Broken framing from an allowed source is logged per burst, not per connection."""
    began = time.monotonic()
    _oversized_connections("127.0.0.1", worker.sip_port, TCP_CONNECTIONS)
    assert worker.shutdown() == 0
    elapsed = time.monotonic() - began
    stderr = worker.stderr_path.read_text(errors="replace").splitlines()
    dropped = [line for line in stderr if "Dropped" in line and "127.0.0.1" in line]
    # The first ("... TCP message too large"), then summaries of the rest.
    assert 1 <= len(dropped) <= _reports_allowed(elapsed), dropped
    assert "too large" in dropped[0]
    assert not [line for line in stderr if "WARNING" in line and "too large" in line]
    assert not worker.events_named(EventName.REFUSED)


def _invites_for_nobody(port: int, count: int) -> dict[int, int]:
    """Send ``count`` INVITEs without SDP for unknown users; return the final codes."""
    codes: dict[int, int] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((SCANNER, 0))
        local = sock.getsockname()[1]
        for index in range(count):
            sock.sendto(
                (
                    f"INVITE sip:{9000 + index}@127.0.0.1:{port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {SCANNER}:{local};branch=z9hG4bKi{index};rport\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:100@{SCANNER}>;tag=i{index}\r\n"
                    f"To: <sip:{9000 + index}@127.0.0.1>\r\n"
                    f"Call-ID: nobody-{index}-{local}@{SCANNER}\r\n"
                    "CSeq: 1 INVITE\r\n"
                    f"Contact: <sip:100@{SCANNER}:{local}>\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", port),
            )
            # One at a time: a final answer (or none within the wait) before the next.
            while select.select([sock], [], [], 2.0)[0]:
                code = int(sock.recv(65535).split(b" ", 2)[1])
                if code >= 200:
                    codes[code] = codes.get(code, 0) + 1
                    break
    return codes


def test_invites_for_other_users_without_a_filter_are_summarised(
    launched_worker: WorkerClient, sip_ports: tuple[int, int], kamailio: Kamailio
) -> None:
    """No source filter: a scanner's INVITEs for guessed users, logged per burst."""
    result = launched_worker.request(
        Method.START,
        start_params(
            port_min=sip_ports[0],
            port_max=sip_ports[1],
            restrict_sources=False,
            allowed_sources=[],
            log_level=3,
        ),
    )
    worker = launched_worker
    worker.sip_port = result["sip_port"]
    worker.request(
        Method.ADD_ACCOUNT, account_params(EXT, kamailio.host, kamailio.port)
    )
    worker.wait_registration(ACCOUNT_ID, RegistrationStatus.SUCCESSFUL)
    began = time.monotonic()
    codes = _invites_for_nobody(worker.sip_port, NOBODY_INVITES)
    assert codes.get(404, 0) >= NOBODY_INVITES // 2, codes
    assert worker.shutdown() == 0
    elapsed = time.monotonic() - began
    stderr = worker.stderr_path.read_text(errors="replace").splitlines()
    lines = [line for line in stderr if "other user" in line]
    assert 1 <= len(lines) <= _reports_allowed(elapsed), lines
    assert not worker.events_named(EventName.INCOMING_CALL)
    assert not worker.events_named(EventName.REFUSED)
