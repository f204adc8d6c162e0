"""Benchmark the SIP engine against a real Kamailio and real pjsua2 workers on loopback.

Measures:
- time from `SipEngine.start()` until 1, 8 and 60 extensions are `successful`;
- INVITE -> 200 OK of an auto-answered page call (the engine answers from its
  `incoming_call` event, as the Home Assistant side does), sent by a minimal UDP UAC
  straight to the worker's SIP port from 127.0.0.1 (the registrar's address, so the
  source filter lets it in);
- resident memory per worker and in total (VmRSS from /proc).

Run: ``.venv/bin/python bench/engine.py [--worker-python PATH] [--runs 5] [--calls 25]``
"""

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
import os
from pathlib import Path
import platform
import secrets
import statistics
import sys
import tempfile
import time
import types
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for _name, _path in (
    ("custom_components", REPO / "custom_components"),
    ("custom_components.sip_endpoint", REPO / "custom_components" / "sip_endpoint"),
):
    if _name not in sys.modules:
        _module = types.ModuleType(_name)
        _module.__path__ = [str(_path)]
        sys.modules[_name] = _module

from custom_components.sip_endpoint.engine.models import (  # noqa: E402
    EngineEvent,
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import SipEngine  # noqa: E402
from custom_components.sip_endpoint.protocol.payloads import (  # noqa: E402
    CallEnded,
    IncomingCall,
    RegistrationState,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus  # noqa: E402
from tests.sipbed.kamailio import Kamailio  # noqa: E402
from tests.sipbed.users import TEST_USERS, password_for  # noqa: E402


@dataclass
class Collector:
    """Engine events, with a way to wait for a condition on them."""

    on_incoming: Callable[[IncomingCall], None] | None = None
    states: dict[str, RegistrationState] = field(default_factory=dict)
    ended: list[CallEnded] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: EngineEvent) -> None:
        """Record an event (the engine's on_event)."""
        if isinstance(event, RegistrationState):
            self.states[event.ext_id] = event
        elif isinstance(event, IncomingCall) and self.on_incoming:
            self.on_incoming(event)
        elif isinstance(event, CallEnded):
            self.ended.append(event)
        self.changed.set()

    async def wait(self, predicate: Callable[[], bool], limit: float = 60) -> None:
        """Wait until the predicate holds."""
        async with asyncio.timeout(limit):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def successful(self, ext_ids: list[str]) -> bool:
        """Tell whether all these extensions are registered."""
        return all(
            (state := self.states.get(ext_id)) is not None
            and state.status is RegistrationStatus.SUCCESSFUL
            for ext_id in ext_ids
        )


def extension(number: int) -> ExtensionSettings:
    """Return a standard test bed extension."""
    ext = str(2000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, password_for(ext))


def rss_kib(pid: int) -> int:
    """Return the resident memory of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def time_registrations(
    server: ServerSettings,
    options: EngineOptions,
    count: int,
    *,
    sequential: bool = False,
) -> tuple[float, list[int]]:
    """Start an engine, add `count` extensions; return seconds until all registered.

    `sequential` awaits each add_extension in turn, as Home Assistant's setup does.
    """
    collector = Collector()
    engine = SipEngine(server, options, collector)
    ext = [extension(number) for number in range(count)]
    started = time.perf_counter()
    await engine.start()
    if sequential:
        for item in ext:
            await engine.add_extension(item)
    else:
        await asyncio.gather(*(engine.add_extension(item) for item in ext))
    await collector.wait(lambda: collector.successful([item.ext_id for item in ext]))
    elapsed = time.perf_counter() - started
    rss = [rss_kib(worker.pid) for worker in engine.workers() if worker.pid]
    await engine.stop()
    return elapsed, rss


class Uac(asyncio.DatagramProtocol):
    """A minimal SIP UAC over UDP: INVITE, ACK, BYE; responses go to a queue."""

    def __init__(self) -> None:
        """Start without a transport."""
        self.transport: asyncio.DatagramTransport | None = None
        self.responses: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Queue a response with its arrival time; answer OPTIONS pings never."""
        if data.startswith(b"SIP/2.0 "):
            self.responses.put_nowait((time.perf_counter(), data))

    def send(self, text: str, target: tuple[str, int]) -> float:
        """Send one request; return when it was sent."""
        assert self.transport is not None
        sent = time.perf_counter()
        self.transport.sendto(text.replace("\n", "\r\n").encode(), target)
        return sent

    async def final(self, method: str) -> tuple[float, int, dict[str, str]]:
        """Wait for the final response to `method`; return time, code, headers."""
        while True:
            arrived, data = await self.responses.get()
            head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
            code = int(head[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            if code >= 200 and headers.get("cseq", "").endswith(method):
                return arrived, code, headers


SDP = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {rtp} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
"""


def request(
    method: str, uri: str, local: int, call_id: str, cseq: int, **extra: str
) -> str:
    """Build a SIP request (LF line ends; the sender turns them into CRLF)."""
    body = extra.pop("body", "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:9001@127.0.0.1>;tag={extra.pop('from_tag')}",
        f"To: {extra.pop('to')}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:9001@127.0.0.1:{local}>",
        *(f"{name}: {value}" for name, value in extra.items()),
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}")
    return "\n".join(lines) + "\n\n" + body


async def time_page_calls(
    server: ServerSettings, options: EngineOptions, calls: int
) -> tuple[list[float], int]:
    """Return INVITE -> 200 OK times (ms) of auto-answered calls, and worker RSS after."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    collector = Collector()
    engine = SipEngine(server, options, collector)

    def auto_answer(call: IncomingCall) -> None:
        task = loop.create_task(engine.answer(call.call_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    collector.on_incoming = auto_answer
    await engine.start()
    await engine.add_extension(extension(0))
    await collector.wait(lambda: collector.successful(["id-2000"]))
    (worker,) = engine.workers()
    assert worker.sip_port is not None and worker.pid is not None
    target = ("127.0.0.1", worker.sip_port)
    transport, uac = await loop.create_datagram_endpoint(
        Uac, local_addr=("127.0.0.1", 0)
    )
    rtp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    local = transport.get_extra_info("sockname")[1]
    rtp_port = rtp.get_extra_info("sockname")[1]
    uri = f"sip:2000@127.0.0.1:{worker.sip_port}"
    times: list[float] = []
    try:
        for number in range(calls):
            call_id = f"bench-{number}-{secrets.token_hex(4)}@127.0.0.1"
            from_tag = secrets.token_hex(4)
            body = SDP.format(rtp=rtp_port)
            sent = uac.send(
                request(
                    "INVITE",
                    uri,
                    local,
                    call_id,
                    1,
                    from_tag=from_tag,
                    to="<sip:2000@127.0.0.1>",
                    body=body,
                ),
                target,
            )
            arrived, code, headers = await uac.final("INVITE")
            if code != 200:
                raise RuntimeError(f"INVITE answered {code}")
            times.append((arrived - sent) * 1000)
            contact = headers["contact"].split("<", 1)[-1].split(">", 1)[0]
            ended = len(collector.ended)
            uac.send(
                request(
                    "ACK",
                    contact,
                    local,
                    call_id,
                    1,
                    from_tag=from_tag,
                    to=headers["to"],
                ),
                target,
            )
            await asyncio.sleep(0.05)
            uac.send(
                request(
                    "BYE",
                    contact,
                    local,
                    call_id,
                    2,
                    from_tag=from_tag,
                    to=headers["to"],
                ),
                target,
            )
            await uac.final("BYE")
            await collector.wait(partial(_more_than, collector.ended, ended))
        rss = rss_kib(worker.pid)
    finally:
        transport.close()
        rtp.close()
        await engine.stop()
    return times, rss


def _more_than(items: list[CallEnded], count: int) -> bool:
    return len(items) > count


def percentile(values: list[float], fraction: float) -> float:
    """Return a percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


async def run(args: argparse.Namespace) -> None:
    """Run every measurement and print the table."""
    workdir = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    kamailio = Kamailio(workdir / "kamailio", TEST_USERS)
    kamailio.start()
    try:
        server = ServerSettings(host=kamailio.host, port=kamailio.port)
        options = EngineOptions(worker_python=args.worker_python, bind_host="127.0.0.1")
        rows: list[tuple[str, str, str]] = []
        memory: list[int] = []
        for count, target in ((1, ""), (8, ""), (60, "< 2 s")):
            samples = []
            for _ in range(args.runs):
                elapsed, rss = await time_registrations(server, options, count)
                samples.append(elapsed)
                if count == 60:
                    memory = rss
            rows.append(
                (
                    f"start -> {count} extension(s) successful",
                    (
                        f"median {statistics.median(samples) * 1000:.0f} ms, "
                        f"max {max(samples) * 1000:.0f} ms ({args.runs} runs)"
                    ),
                    target,
                )
            )
        samples = [
            (await time_registrations(server, options, 60, sequential=True))[0]
            for _ in range(args.runs)
        ]
        rows.append(
            (
                "start -> 60 successful, added one after another",
                (
                    f"median {statistics.median(samples) * 1000:.0f} ms, "
                    f"max {max(samples) * 1000:.0f} ms ({args.runs} runs)"
                ),
                "< 2 s",
            )
        )
        times, call_rss = await time_page_calls(server, options, args.calls)
        rows.append(
            (
                "INVITE -> 200 OK, auto-answered page call",
                (
                    f"p50 {percentile(times, 0.5):.1f} ms, p95 {percentile(times, 0.95):.1f} ms"
                    f" ({len(times)} calls)"
                ),
                "< 20 ms p95",
            )
        )
        rows.append(
            (
                "RSS per worker, 60 extensions (8 workers)",
                (
                    f"max {max(memory) / 1024:.1f} MiB, mean "
                    f"{statistics.mean(memory) / 1024:.1f} MiB"
                ),
                "< 35 MiB",
            )
        )
        rows.append(("RSS total, 60 extensions", f"{sum(memory) / 1024:.1f} MiB", ""))
        rows.append(
            (
                "RSS of a worker after the calls",
                f"{call_rss / 1024:.1f} MiB",
                "< 35 MiB",
            )
        )
    finally:
        kamailio.stop()
    print(f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"Worker: {args.worker_python}")
    print("| measurement | result | target |")
    print("| --- | --- | --- |")
    for name, result, target in rows:
        print(f"| {name} | {result} | {target} |")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--worker-python",
        default=os.environ.get(
            "SIP_ENDPOINT_WORKER_PYTHON", str(REPO / ".venv-worker" / "bin" / "python")
        ),
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=25)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
