"""Measure the built-in SIP stack in one process: memory per call, and CPU per call.

The worker-process figures of bench/engine.py depend on what else the machine runs;
these do not, or much less. The real `BuiltinStack` runs in this script's own asyncio
loop on 127.0.0.1, its events written by the real protocol writer (to /dev/null); each
`incoming_call` is answered at once, as the Home Assistant side does for a page
extension (without the pipe round trip). The caller is the bench's UDP caller
(bench/uac.py) in a child process, so that this process holds only the stack: INVITE,
200, ACK, 50 ms, BYE, 200, next call (as in bench/engine.py).

``memory``: after ``--warmup`` calls, ``--calls`` answered calls back to back, in
steps of ``--step``. Prints the RSS growth after each step; the allocated block count
and the transaction-layer entries while the finished transactions still linger
(64*T1 = 32 s); with ``--tracemalloc`` the bytes the stack holds per call then (the
allocations made by the worker's code, by line); pymalloc's size classes that grew
(``sys._debugmallocstats``: pools, blocks in use, free blocks), which shows whether
RSS growth is held objects or allocator high water; and, with ``--settle``, the RSS
once the finished transactions have ended.

``profile``: cProfile over ``--calls`` calls: the stack's CPU time per call (INVITE
in -> 200 out -> ACK -> BYE -> 200 out, ``time.process_time`` of this process) and the
functions with the most own time.

Run: ``.venv/bin/python bench/inprocess.py memory --calls 1000 --settle 35``,
``.venv/bin/python bench/inprocess.py profile --calls 300``.
"""

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
from pathlib import Path
import pstats
import re
import subprocess
import sys
import time
import tracemalloc
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.bootstrap import load_integration_modules  # noqa: E402

load_integration_modules()

from bench.uac import Uac, end_call, place_call  # noqa: E402
from custom_components.sip_endpoint.protocol.payloads import (  # noqa: E402
    AccountParams,
    EventName,
    Payload,
    StartParams,
)
from custom_components.sip_endpoint.worker.builtin.account import (  # noqa: E402
    BuiltinAccount,
)
from custom_components.sip_endpoint.worker.builtin.stack import (  # noqa: E402
    BuiltinStack,
)
from custom_components.sip_endpoint.worker.core.channel import (  # noqa: E402
    ProtocolWriter,
)

CALL_PAUSE = 0.05  # between ACK and BYE, as bench/engine.py
DEVNULL = open(os.devnull, "wb")
WORKER_CODE = str(REPO / "custom_components" / "sip_endpoint" / "worker")


class AnsweringStack(BuiltinStack):
    """The real stack; answers every incoming call as soon as it is announced."""

    def emit(self, name: EventName, payload: Payload) -> None:
        """Send the event, then answer an incoming call (on the next loop turn)."""
        super().emit(name, payload)
        if name is EventName.INCOMING_CALL:
            call_id: str = getattr(payload, "call_id")  # noqa: B009
            asyncio.get_running_loop().call_soon(self._answer, call_id)

    def _answer(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and not call.ended:
            call.answer()


async def started_stack(t1: float) -> AnsweringStack:
    """Start the stack on 127.0.0.1 with extension 2000 (not registered)."""
    writer = ProtocolWriter(DEVNULL)
    writer.start()
    stack = AnsweringStack(writer)
    stack.transactions.t1 = t1
    stack.set_sources(True, ["127.0.0.1"])
    await stack.start(
        StartParams(
            bind_host="127.0.0.1",
            port_min=0,
            port_max=0,
            allowed_sources=["127.0.0.1"],
        )
    )
    params = AccountParams(
        account_id="id-2000",
        extension="2000",
        auth_id="2000",
        password="bench-password-2000",
        domain="127.0.0.1",
        port=9,  # never registered: the calls come straight to the SIP port
    )
    stack.accounts[params.account_id] = BuiltinAccount(stack, params)
    return stack


async def run_caller(port: int, calls: int) -> None:
    """Place ``calls`` answered calls at ``port``; print INVITE -> 200 times (ms)."""
    loop = asyncio.get_running_loop()
    transport, uac = await loop.create_datagram_endpoint(
        Uac, local_addr=("127.0.0.1", 0)
    )
    rtp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    local = transport.get_extra_info("sockname")[1]
    rtp_port = rtp.get_extra_info("sockname")[1]
    target = ("127.0.0.1", port)
    times = []
    try:
        for _ in range(calls):
            elapsed, dialog = await place_call(uac, target, "2000", local, rtp_port)
            times.append(elapsed)
            await asyncio.sleep(CALL_PAUSE)
            await end_call(uac, target, dialog, local)
    finally:
        transport.close()
        rtp.close()
    print(json.dumps(times))


async def calls_from_child(stack: BuiltinStack, calls: int) -> list[float]:
    """Have a child process place ``calls`` calls; return its INVITE -> 200 times."""
    if calls <= 0:
        return []
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "caller",
        "--port",
        str(stack.sip_port),
        "--calls",
        str(calls),
        stdout=subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"the caller failed ({child.returncode})")
    times: list[float] = json.loads(out)
    return times


def rss_kib(field: str = "VmRSS") -> int:
    """Return this process's resident memory in KiB (or RssAnon, RssFile)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def entries(stack: BuiltinStack) -> int:
    """Return how many entries the transaction layer holds."""
    layer: Any = stack.transactions
    return len(layer._servers) + len(layer._clients)  # noqa: SLF001


def size_classes() -> dict[int, tuple[int, int, int]]:
    """Return pymalloc's pools, blocks in use and free blocks by size class."""
    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)
    try:
        sys._debugmallocstats()  # noqa: SLF001 - writes to fd 2
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    classes = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*", line):
            size, pools, used, free = map(int, match.groups())
            classes[size] = (pools, used, free)
    return classes


def print_grown_classes(
    before: dict[int, tuple[int, int, int]], after: dict[int, tuple[int, int, int]]
) -> None:
    """Print the size classes whose pools changed (16 KiB each)."""
    rows = []
    for size in sorted(before.keys() | after.keys()):
        old, new = before.get(size, (0, 0, 0)), after.get(size, (0, 0, 0))
        if old[0] != new[0]:
            rows.append((size, new[0] - old[0], new[1] - old[1], new[2] - old[2]))
    rows.sort(key=lambda row: -row[1])
    print("pymalloc size classes that changed (size: pools, blocks in use, free):")
    for size, pools, used, free in rows[:12]:
        print(f"  {size:4d} B: {pools:+d} pools, {used:+d} in use, {free:+d} free")


async def memory(args: argparse.Namespace) -> None:
    """RSS growth over the calls, and what the stack holds per call."""
    stack = await started_stack(args.t1)
    try:
        await calls_from_child(stack, args.warmup)
        await asyncio.sleep(0.2)
        if args.collect:
            gc.collect()
        if args.freeze:
            gc.freeze()
        classes = size_classes()
        rss_before = rss_kib()
        anon_before, file_before = rss_kib("RssAnon"), rss_kib("RssFile")
        blocks_before = sys.getallocatedblocks()
        if args.tracemalloc:
            tracemalloc.start(args.frames)
        started = time.perf_counter()
        steps = []
        done = 0
        while done < args.calls:
            count = min(args.step, args.calls - done)
            await calls_from_child(stack, count)
            done += count
            steps.append(f"{(rss_kib() - rss_before) / 1024:+.2f}")
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.2)
        gc.collect()
        rss_after = rss_kib()
        blocks = sys.getallocatedblocks() - blocks_before
        print(f"{args.calls} calls in {elapsed:.1f} s ({args.calls / elapsed:.1f}/s)")
        print(f"RSS growth after every {args.step} calls (MiB): {' '.join(steps)}")
        print(f"transaction-layer entries: {entries(stack)}")
        print(f"allocated blocks: {blocks:+d} ({blocks / args.calls:+.1f} per call)")
        if args.tracemalloc:
            report_tracemalloc(args)
        print(
            f"RSS: {rss_before / 1024:.2f} MiB -> {rss_after / 1024:.2f} MiB"
            f" ({(rss_after - rss_before) / 1024:+.2f} MiB)"
        )
        print(
            f"of which anonymous {(rss_kib('RssAnon') - anon_before) / 1024:+.2f} MiB,"
            f" file-backed {(rss_kib('RssFile') - file_before) / 1024:+.2f} MiB"
        )
        print_grown_classes(classes, size_classes())
        if args.settle:
            await asyncio.sleep(args.settle)
            gc.collect()
            idle = rss_kib()
            print(
                f"after {args.settle:.0f} s idle: {entries(stack)} entries,"
                f" blocks {sys.getallocatedblocks() - blocks_before:+d},"
                f" RSS {(idle - rss_before) / 1024:+.2f} MiB"
            )
    finally:
        await stack.close()
        stack.writer.close()


def report_tracemalloc(args: argparse.Namespace) -> None:
    """Print what the worker's code allocated and still holds, per call and by line."""
    current, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, f"{WORKER_CODE}/*", all_frames=True)]
    )
    tracemalloc.stop()
    held = sum(stat.size for stat in snapshot.statistics("filename"))
    print(
        f"tracemalloc: the worker's code holds {held / 1024:.0f} KiB"
        f" ({held / args.calls:.0f} B per call); all code {current / 1024:.0f} KiB,"
        f" peak {peak / 1024:.0f} KiB"
    )
    for stat in snapshot.statistics("traceback")[: args.top]:
        frames = [
            f"{Path(frame.filename).name}:{frame.lineno}"
            for frame in stat.traceback
            if frame.filename.startswith(WORKER_CODE)
        ]
        print(f"  {stat.size / 1024:7.1f} KiB {stat.count:6d} blocks  {frames[-1]}")


async def profile(args: argparse.Namespace) -> None:
    """CPU time of the stack per call, and where it goes."""
    stack = await started_stack(args.t1)
    try:
        await calls_from_child(stack, args.warmup)
        profiler = cProfile.Profile()
        cpu = time.process_time()
        if args.profile:
            profiler.enable()
        times = await calls_from_child(stack, args.calls)
        profiler.disable()
        cpu = time.process_time() - cpu
        times.sort()
        print(
            f"{args.calls} calls: INVITE -> 200 p50 {times[len(times) // 2]:.2f} ms,"
            f" p95 {times[int(len(times) * 0.95)]:.2f} ms (no pipe round trip)"
        )
        print(f"the stack's CPU per call: {cpu / args.calls * 1e3:.2f} ms")
        if args.profile:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
    finally:
        await stack.close()
        stack.writer.close()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("memory", "profile", "caller"))
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--settle", type=float, default=0.0)
    parser.add_argument(
        "--t1", type=float, default=0.5, help="SIP T1 (finished transactions: 64*T1)"
    )
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--collect", action="store_true", help="gc.collect() first")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() first")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--port", type=int, help="(caller) the stack's SIP port")
    args = parser.parse_args()
    if args.what == "caller":
        asyncio.run(run_caller(args.port, args.calls))
    elif args.what == "memory":
        asyncio.run(memory(args))
    else:
        asyncio.run(profile(args))


if __name__ == "__main__":
    main()
