"""The built-in worker's protocol channel on the asyncio loop (no threads).

Real pipes: the writer never blocks the loop when Home Assistant reads slowly (what
the pipe cannot take waits, in order, until it drains), and the reader cuts the
stream into lines however it arrives, then reports the end of input once.
"""

from __future__ import annotations

import asyncio
import os

from custom_components.sip_endpoint.protocol import wire
from custom_components.sip_endpoint.protocol.payloads import EventName, LogLine
from custom_components.sip_endpoint.worker.core.channel import (
    LoopProtocolReader,
    LoopProtocolWriter,
)


async def test_writer_buffers_what_a_full_pipe_cannot_take_and_keeps_order() -> None:
    """2000 events (far more than a pipe holds) are queued at once, then all arrive."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "wb")
    writer = LoopProtocolWriter(stream)
    writer.start()
    count = 2000
    for number in range(count):
        writer.event(EventName.LOG, LogLine(level=3, message=f"line {number:05d} " * 8))
    # The pipe is full and nobody reads: the loop went on regardless.
    os.set_blocking(read_fd, False)
    received = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while received.count(b"\n") < count and loop.time() < deadline:
        try:
            received += os.read(read_fd, 1 << 16)
        except BlockingIOError:
            await asyncio.sleep(0.001)  # the loop writes more once there is room
    writer.close()
    stream.close()
    os.close(read_fd)
    lines = received.splitlines()
    assert len(lines) == count
    messages = [wire.decode(line) for line in lines]
    assert all(isinstance(message, wire.Event) for message in messages)
    texts = [message.data["message"] for message in messages]  # type: ignore[union-attr]
    assert texts == [f"line {number:05d} " * 8 for number in range(count)]


async def test_writer_close_writes_what_is_pending() -> None:
    """Messages still buffered at close are written before it returns."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "wb")
    writer = LoopProtocolWriter(stream)
    writer.start()
    big = "x" * 1000
    for _ in range(100):  # about 100 KiB: more than the pipe holds
        writer.event(EventName.LOG, LogLine(level=3, message=big))
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []

    def drain() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            chunks.extend(iter(lambda: pipe.read(1 << 16), b""))

    reading = loop.run_in_executor(None, drain)
    writer.close()
    stream.close()  # the end of the stream: the reader's loop ends
    await reading
    assert b"".join(chunks).count(b"\n") == 100


async def test_reader_cuts_lines_across_chunks_and_reports_the_end_once() -> None:
    """Lines split over writes, blank lines skipped, then EOF once."""
    read_fd, write_fd = os.pipe()
    lines: list[bytes] = []
    ended: list[bool] = []
    done = asyncio.Event()

    def on_eof() -> None:
        ended.append(True)
        done.set()

    LoopProtocolReader(read_fd, lines.append, on_eof).start()
    for chunk in (b'{"a":1}\n{"b"', b":2}\n\n", b'{"c":3}\n'):
        os.write(write_fd, chunk)
        await asyncio.sleep(0.01)
    os.close(write_fd)
    async with asyncio.timeout(5):
        await done.wait()
    await asyncio.sleep(0.01)
    os.close(read_fd)
    assert lines == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert ended == [True]
