"""The worker's side of the protocol channel.

`ProtocolReader` and `ProtocolWriter` each run a thread (the pjsua2 worker, whose
library runs threads of its own). `LoopProtocolReader` and `LoopProtocolWriter` do the
same on an asyncio loop without threads (the built-in worker): a request line or an
event then needs no hand-over between threads, which on a busy machine waited for the
other thread to be scheduled and to take the GIL.
"""

import asyncio
from collections.abc import Callable
import logging
import os
import queue
import select
import threading
import time
from typing import BinaryIO

from ...protocol import wire
from ...protocol.payloads import EventName, Payload

_LOGGER = logging.getLogger(__name__)

type LineHandler = Callable[[bytes], None]

READ_SIZE = 1 << 16


class ProtocolWriter:
    """Writes protocol messages from any thread, in order, on its own thread.

    Callers never block on the pipe: a slow reader on the Home Assistant side cannot
    stall the SIP stack's polling thread or the conference bridge's clock thread.
    """

    def __init__(self, stream: BinaryIO) -> None:
        """Write to ``stream`` (the duplicated original stdout)."""
        self._stream = stream
        self._lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name="protocol-writer", daemon=True
        )
        self._broken = False

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def send(self, message: wire.Message) -> None:
        """Queue one message."""
        self._lines.put(wire.encode(message))

    def event(self, name: EventName, payload: Payload) -> None:
        """Queue one event."""
        self.send(wire.Event(name=name, data=payload.to_wire()))

    def respond(self, request_id: int, result: Payload | None = None) -> None:
        """Queue a successful response."""
        data = result.to_wire() if result is not None else {}
        self.send(wire.Response(id=request_id, result=data))

    def fail(self, request_id: int, code: wire.ErrorCode, message: str) -> None:
        """Queue an error response."""
        self.send(
            wire.Response(
                id=request_id, error=wire.ErrorInfo(code=code, message=message)
            )
        )

    def close(self, timeout: float = 5.0) -> None:
        """Write everything queued, then stop the writer thread."""
        self._lines.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while (line := self._lines.get()) is not None:
            if self._broken:
                continue
            try:
                self._stream.write(line)
                self._stream.flush()
            except OSError:
                # The Home Assistant side went away; stdin EOF ends the worker.
                self._broken = True


class ProtocolReader:
    """Reads request lines from stdin on its own thread."""

    def __init__(
        self, fd: int, on_line: LineHandler, on_eof: Callable[[], None]
    ) -> None:
        """Call ``on_line`` for each line of ``fd`` and ``on_eof`` once at the end.

        The reader uses ``os.read`` rather than a buffered file: a daemon thread
        blocked inside a buffered reader would abort the interpreter at exit.
        """
        self._fd = fd
        self._on_line = on_line
        self._on_eof = on_eof
        self._thread = threading.Thread(
            target=self._run, name="protocol-reader", daemon=True
        )

    def start(self) -> None:
        """Start the reader thread."""
        self._thread.start()

    def _run(self) -> None:
        lines = LineSplitter(self._on_line)
        try:
            while chunk := os.read(self._fd, READ_SIZE):
                lines.feed(chunk)
        except OSError:
            _LOGGER.debug("stdin closed")
        finally:
            self._on_eof()


class LineSplitter:
    """Cuts a byte stream into lines for ``on_line`` (blank lines skipped).

    A line longer than the protocol allows is handed on as it is (answered as a bad
    request) rather than kept growing.
    """

    def __init__(self, on_line: LineHandler) -> None:
        """Call ``on_line`` for each complete line fed."""
        self._on_line = on_line
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream."""
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            if line.strip():
                self._on_line(line)
        if len(self._pending) > wire.MAX_LINE_BYTES:
            self._on_line(self._pending)
            self._pending = b""


class LoopProtocolReader:
    """Reads request lines from stdin on the running asyncio loop (no thread)."""

    def __init__(
        self, fd: int, on_line: LineHandler, on_eof: Callable[[], None]
    ) -> None:
        """Call ``on_line`` for each line of ``fd`` and ``on_eof`` once at the end."""
        self._fd = fd
        self._lines = LineSplitter(on_line)
        self._on_eof = on_eof
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Watch ``fd`` on the running loop (a pipe; raises OSError for a file)."""
        loop = asyncio.get_running_loop()
        os.set_blocking(self._fd, False)
        loop.add_reader(self._fd, self._readable)
        self._loop = loop

    def _readable(self) -> None:
        try:
            chunk = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            _LOGGER.debug("stdin closed")
            chunk = b""
        if chunk:
            self._lines.feed(chunk)
            return
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None
            self._on_eof()


class LoopProtocolWriter(ProtocolWriter):
    """Writes protocol messages from the asyncio loop's thread, without a thread.

    Each message is written at once with a non-blocking write; what the pipe cannot
    take yet is kept in order and written when the loop sees the pipe writable, so a
    slow reader on the Home Assistant side never blocks the loop. Messages sent from
    another thread are handed to the loop. Before `start` they are kept.
    """

    def __init__(self, stream: BinaryIO) -> None:  # noqa: D107 - see the class
        # The threaded writer's queue and thread are not made: nothing here uses them.
        self._stream = stream
        self._fd = stream.fileno()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._pending = bytearray()
        self._waiting = False  # the loop watches the pipe for room
        self._broken = False

    def start(self) -> None:
        """Write from the running loop from now on."""
        self._stream.flush()
        os.set_blocking(self._fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self._pending:
            self._wait_for_room()

    def send(self, message: wire.Message) -> None:
        """Write one message now, or as soon as the pipe takes it."""
        data = wire.encode(message)
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._write, data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._broken:
            return
        if self._pending or self._loop is None:
            self._pending += data
            return
        try:
            written = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:
            self._broken = True  # the Home Assistant side went away: stdin EOF ends us
            return
        if written < len(data):
            self._pending += data[written:]
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        if not self._waiting and self._loop is not None:
            self._loop.add_writer(self._fd, self._flush)
            self._waiting = True

    def _flush(self) -> None:
        try:
            written = os.write(self._fd, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._broken = True
            written = len(self._pending)
        del self._pending[:written]
        if not self._pending and self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._waiting = False

    def close(self, timeout: float = 5.0) -> None:
        """Write what is still pending (waiting at most ``timeout``), then stop."""
        if self._waiting and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(self._fd)
        self._waiting = False
        self._loop = None
        deadline = time.monotonic() + timeout
        while self._pending and not self._broken:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._fd], [], left)[1]:
                break
            self._flush()
