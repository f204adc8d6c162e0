"""The worker's side of the protocol channel: a reader thread and a writer thread."""

from collections.abc import Callable
import logging
import os
import queue
import threading
from typing import BinaryIO

from ...protocol import wire
from ...protocol.payloads import EventName, Payload

_LOGGER = logging.getLogger(__name__)

type LineHandler = Callable[[bytes], None]


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
        pending = b""
        try:
            while chunk := os.read(self._fd, 1 << 16):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._on_line(line)
                if len(pending) > wire.MAX_LINE_BYTES:
                    self._on_line(pending)  # answered as a bad request
                    pending = b""
        except OSError:
            _LOGGER.debug("stdin closed")
        finally:
            self._on_eof()
