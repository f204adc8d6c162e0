"""Benchmark both SIP engines side by side against a real Kamailio on loopback.

Measures, for each engine (pjsua2 and built-in) in one run:
- time from `SipEngine.start()` until 1, 8 and 60 extensions are `successful`, and the
  resident memory of the workers holding the 60;
- INVITE -> 200 OK of an auto-answered page call (the engine answers from its
  `incoming_call` event, as the Home Assistant side does), sent by a minimal UDP UAC
  (bench/uac.py) straight to the worker's SIP port from 127.0.0.1 (the registrar's
  address, so the source filter lets it in);
- up to 20 answered calls at once in one worker with audio both ways (a WAV longer
  than the run to the caller, the caller's RTP streamed to the engine): the gaps
  between the worker's RTP packets, and the worker's CPU time;
- the worker's resident memory before and after 1000 answered calls.

Run: ``.venv/bin/python bench/engine.py [--engine pjsua2,builtin] [--runs 5]``
(the pjsua2 worker's interpreter: ``--worker-python`` or SIP_ENDPOINT_WORKER_PYTHON).
"""

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
import math
import os
from pathlib import Path
import platform
import statistics
import struct
import sys
import tempfile
import time
import wave

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.bootstrap import load_integration_modules  # noqa: E402

load_integration_modules()

from bench.uac import RtpPeer, Uac, end_call, place_call  # noqa: E402
from custom_components.sip_endpoint.engine.models import (  # noqa: E402
    EngineChoice,
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
            self.states[event.account_id] = event
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

    def successful(self, account_ids: list[str]) -> bool:
        """Tell whether all these extensions are registered."""
        return all(
            (state := self.states.get(account_id)) is not None
            and state.status is RegistrationStatus.SUCCESSFUL
            for account_id in account_ids
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
    await collector.wait(
        lambda: collector.successful([item.account_id for item in ext])
    )
    elapsed = time.perf_counter() - started
    rss = [rss_kib(worker.pid) for worker in engine.workers() if worker.pid]
    await engine.stop()
    return elapsed, rss


async def registered_engine(
    server: ServerSettings, options: EngineOptions, collector: Collector
) -> SipEngine:
    """Start an engine with extension 2000 registered."""
    engine = SipEngine(server, options, collector)
    await engine.start()
    await engine.add_extension(extension(0))
    await collector.wait(lambda: collector.successful(["id-2000"]))
    return engine


def only_worker(engine: SipEngine) -> tuple[tuple[str, int], int, int]:
    """Return the SIP target, pid and call limit of the engine's one worker."""
    (worker,) = engine.workers()
    assert worker.sip_port is not None and worker.pid is not None
    return ("127.0.0.1", worker.sip_port), worker.pid, worker.max_calls


@dataclass
class CallRun:
    """What a run of calls one after another measured."""

    times: list[float]  # INVITE -> 200 OK of the measured calls, ms
    memory: list[int]  # worker RSS (KiB): after the warm-up, after the calls, idle
    failure: str | None = None  # the call that failed, and why
    cpu_ms: float = 0.0  # the worker's CPU time per measured call (whole call), ms


async def sequential_calls(
    server: ServerSettings,
    options: EngineOptions,
    calls: int,
    *,
    warmup: int = 0,
    settle: float = 0.0,
) -> CallRun:
    """Place auto-answered calls one after another; stop at the first that fails.

    Memory is the worker's RSS after the warm-up calls, after the last call and, with
    ``settle``, once the worker has been idle that long (SIP keeps finished
    transactions 32 s: Timer J/L).
    """
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    collector = Collector()

    def auto_answer(call: IncomingCall) -> None:
        task = loop.create_task(engine.answer(call.call_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        # A refused answer shows as the caller's final response; don't log it twice.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

    collector.on_incoming = auto_answer
    engine = await registered_engine(server, options, collector)
    target, pid, _ = only_worker(engine)
    transport, uac = await loop.create_datagram_endpoint(
        Uac, local_addr=("127.0.0.1", 0)
    )
    rtp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    local = transport.get_extra_info("sockname")[1]
    rtp_port = rtp.get_extra_info("sockname")[1]
    run = CallRun([], [rss_kib(pid)])
    cpu = cpu_seconds(pid)
    try:
        for number in range(warmup + calls):
            if number == warmup:
                run.memory = [rss_kib(pid)]
                cpu = cpu_seconds(pid)
            ended = len(collector.ended)
            try:
                elapsed, dialog = await place_call(uac, target, "2000", local, rtp_port)
            except (RuntimeError, TimeoutError) as err:
                run.failure = f"call {number + 1} failed: {err or 'no answer'}"
                break
            if number >= warmup:
                run.times.append(elapsed)
            await asyncio.sleep(CALL_PAUSE)
            await end_call(uac, target, dialog, local)
            await collector.wait(partial(_more_than, collector.ended, ended))
        run.memory.append(rss_kib(pid))
        if run.times:
            run.cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / len(run.times)
        if settle:
            await asyncio.sleep(settle)
            run.memory.append(rss_kib(pid))
    finally:
        transport.close()
        rtp.close()
        await engine.stop()
    return run


# Between ACK and BYE. Back to back, the bench's calls came fast enough that the
# pjsua2 worker aborted (SIGABRT): pjlib's media ioqueue has 64 slots, and a call's
# closed RTP and RTCP sockets give theirs back only 500 ms later (49 calls/s is known to
# pass, tests/reliability/test_load.py). A paging endpoint never sees such a rate, so
# both engines get this pace.
CALL_PAUSE = 0.05


def _more_than(items: list[CallEnded], count: int) -> bool:
    return len(items) > count


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class AudioLoad:
    """What the concurrent-audio run measured."""

    calls: int
    intervals: list[float]
    cpu_percent: float


async def concurrent_audio(
    server: ServerSettings,
    options: EngineOptions,
    wav: Path,
    wanted: int,
    seconds: float,
) -> AudioLoad:
    """Hold up to ``wanted`` answered calls in one worker with audio both ways.

    Each call is answered, plays a WAV that outlasts the run (worker -> caller) and
    streams the caller's RTP to the engine (caller -> worker), as a live page does.
    Measured over ``seconds``: the gaps between the worker's RTP packets at each
    caller, and the worker's CPU time.
    """
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    collector = Collector()

    async def page(call: IncomingCall) -> None:
        await engine.answer(call.call_id)
        await engine.play(call.call_id, str(wav))
        await engine.stream(call.call_id, enable=True)

    def on_incoming(call: IncomingCall) -> None:
        task = loop.create_task(page(call))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    collector.on_incoming = on_incoming
    engine = await registered_engine(server, options, collector)
    target, pid, max_calls = only_worker(engine)
    count = min(wanted, max_calls)
    transport, uac = await loop.create_datagram_endpoint(
        Uac, local_addr=("127.0.0.1", 0)
    )
    local = transport.get_extra_info("sockname")[1]
    peers: list[tuple[asyncio.DatagramTransport, RtpPeer]] = []
    dialogs = []
    try:
        for _ in range(count):
            peer_transport, peer = await loop.create_datagram_endpoint(
                RtpPeer, local_addr=("127.0.0.1", 0)
            )
            peers.append((peer_transport, peer))
            port = peer_transport.get_extra_info("sockname")[1]
            dialogs.append((await place_call(uac, target, "2000", local, port))[1])
        await asyncio.sleep(2.0)  # let every stream settle
        since, cpu_start = time.perf_counter(), cpu_seconds(pid)
        await asyncio.sleep(seconds)
        cpu = cpu_seconds(pid) - cpu_start
        intervals = [gap for _, peer in peers for gap in peer.intervals_ms(since)]
        for dialog in dialogs:
            await end_call(uac, target, dialog, local)
    finally:
        for _, peer in peers:
            peer.close()
        transport.close()
        await engine.stop()
    return AudioLoad(count, intervals, 100 * cpu / seconds)


def tone_wav(path: Path, seconds: float = 1.0, frequency: float = 440.0) -> Path:
    """Write a 8 kHz 16-bit mono sine tone."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(int(rate * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def percentile(values: list[float], fraction: float) -> float:
    """Return a percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def _median_max(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples) * 1000:.0f} ms, "
        f"max {max(samples) * 1000:.0f} ms"
    )


async def measure(
    engine_name: str, args: argparse.Namespace, server: ServerSettings, wav: Path
) -> dict[str, str]:
    """Run every measurement on one engine; return the results by row name."""
    options = EngineOptions(
        engine=EngineChoice(engine_name),
        worker_python=args.worker_python,
        bind_host="127.0.0.1",
    )
    results: dict[str, str] = {}
    memory: list[int] = []
    for count in (1, 8, 60):
        samples = []
        for _ in range(args.runs):
            elapsed, rss = await time_registrations(server, options, count)
            samples.append(elapsed)
            if count == 60:
                memory = rss
        results[f"start -> {count} extension(s) successful"] = _median_max(samples)
    samples = [
        (await time_registrations(server, options, 60, sequential=True))[0]
        for _ in range(args.runs)
    ]
    results["start -> 60 successful, added one after another"] = _median_max(samples)
    results["RSS per worker, 60 extensions"] = (
        f"{len(memory)} worker(s), max {max(memory) / 1024:.1f} MiB"
    )
    results["RSS total, 60 extensions"] = f"{sum(memory) / 1024:.1f} MiB"
    calls = await sequential_calls(server, options, args.calls)
    times = calls.times
    results["INVITE -> 200 OK, auto-answered page call"] = (
        f"p50 {percentile(times, 0.5):.1f} ms, p95 {percentile(times, 0.95):.1f} ms"
        f" ({len(times)} calls)"
        if times
        else "no call answered"
    ) + (f"; {calls.failure}" if calls.failure else "")
    results["worker CPU per answered call"] = f"{calls.cpu_ms:.2f} ms"
    load = await concurrent_audio(server, options, wav, args.concurrent, args.seconds)
    gaps = load.intervals
    results["concurrent calls with audio both ways, one worker"] = (
        f"{load.calls} calls (the worker's limit)"
        if load.calls < args.concurrent
        else f"{load.calls} calls"
    )
    results["RTP send interval, those calls"] = (
        f"p1 {percentile(gaps, 0.01):.1f} ms, p50 {percentile(gaps, 0.5):.1f} ms, "
        f"p99 {percentile(gaps, 0.99):.1f} ms ({len(gaps)} gaps)"
        if gaps
        else "no RTP received"
    )
    results["worker CPU, those calls"] = f"{load.cpu_percent:.0f} % of one core"
    churn = await sequential_calls(
        server, options, args.churn, warmup=args.warmup, settle=args.settle
    )
    before, after, idle = churn.memory[0], churn.memory[1], churn.memory[-1]
    results[f"RSS growth over {args.churn} answered calls"] = (
        f"{(after - before) / 1024:+.2f} MiB right after, "
        f"{(idle - before) / 1024:+.2f} MiB after {args.settle:.0f} s idle "
        f"(from {before / 1024:.1f} MiB)"
    ) + (f"; {churn.failure}" if churn.failure else "")
    return results


TARGETS = {
    "start -> 60 extension(s) successful": "builtin < 500 ms",
    "start -> 60 successful, added one after another": "< 2 s",
    "RSS per worker, 60 extensions": "builtin < 40 MiB (one worker)",
    "INVITE -> 200 OK, auto-answered page call": "builtin p95 < 5 ms",
    "concurrent calls with audio both ways, one worker": "builtin 20",
    "RTP send interval, those calls": "builtin p99 within 20 +- 5 ms",
    "worker CPU, those calls": "builtin < 50 %",
    "RSS growth over 1000 answered calls": "builtin < 1 MiB",
}


async def run(args: argparse.Namespace) -> None:
    """Run every measurement on every engine asked for, and print one table."""
    workdir = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    engines = [name.strip() for name in args.engine.split(",") if name.strip()]
    kamailio = Kamailio(workdir / "kamailio", TEST_USERS)
    kamailio.start()
    columns: dict[str, dict[str, str]] = {}
    try:
        server = ServerSettings(host=kamailio.host, port=kamailio.port)
        # Played once per call (the protocol has no looped play): it outlasts the
        # concurrent-audio run, calls placed one after another included.
        wav = tone_wav(workdir / "tone.wav", seconds=args.seconds + 60.0)
        for name in engines:
            columns[name] = await measure(name, args, server, wav)
    finally:
        kamailio.stop()
    print(f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"Load average after the run: {os.getloadavg()}")
    print(f"pjsua2 worker: {args.worker_python}; built-in worker: {sys.executable}")
    print(f"| measurement | {' | '.join(engines)} | target |")
    print(f"| --- | {' | '.join('---' for _ in engines)} | --- |")
    for row in columns[engines[0]]:
        cells = " | ".join(columns[name].get(row, "") for name in engines)
        print(f"| {row} | {cells} | {TARGETS.get(row, '')} |")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        default="pjsua2,builtin",
        help="engines to measure, side by side (comma-separated)",
    )
    parser.add_argument(
        "--worker-python",
        default=os.environ.get(
            "SIP_ENDPOINT_WORKER_PYTHON", str(REPO / ".venv-worker" / "bin" / "python")
        ),
        help="the pjsua2 worker's interpreter",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--churn", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--settle", type=float, default=35.0, help="idle seconds before the last RSS"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
