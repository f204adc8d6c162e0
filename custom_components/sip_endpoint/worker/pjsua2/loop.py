"""The worker's polling loop: it owns pjlib and runs every request and timer."""

from collections.abc import Callable
import gc
import logging
import os
import platform
import queue
import signal
import sys
import time
from typing import Any, BinaryIO

import pjsua2 as pj

from ...protocol import PROTOCOL_VERSION
from ...protocol.engines import EngineName
from ...protocol.payloads import EventName, Hello
from ..core.channel import ProtocolReader, ProtocolWriter
from ..core.dispatch import answer_error, read_request
from .call_table import CallTable
from .context import RETIRE_SECONDS, WorkerContext
from .guard import describe_error, mark_polling_thread
from .handlers import Pjsua2Handlers
from .stack import MAX_ACCOUNTS, MAX_CALLS_LIMIT, SipStack, WorkerEndpoint
from .waker import PollWaker

_LOGGER = logging.getLogger(__name__)

POLL_MSEC = 10
IDLE_WAIT = 0.05
TEARDOWN_WAIT = 2.0


class _EndOfInput:
    """Posted by the reader when stdin closes."""


class WorkerRuntime:
    """Reads requests, polls pjlib, runs timers; one thread does all of it."""

    def __init__(self, stdin_fd: int, protocol_out: BinaryIO) -> None:
        """Speak the protocol on ``stdin_fd`` and ``protocol_out``."""
        self.writer = ProtocolWriter(protocol_out)
        self.context = WorkerContext(self.writer)
        self.waker = PollWaker()
        self.context.wake = self.waker.wake
        self._reader = ProtocolReader(
            stdin_fd, self.context.deliver, lambda: self.context.deliver(_EndOfInput())
        )
        endpoint = WorkerEndpoint(self.context.tls_failures)
        self.stack = SipStack(endpoint, self.context)
        self.calls = CallTable()
        self.handlers = Pjsua2Handlers(self.context, self.stack, self.calls, self.pump)
        endpoint.on_connection_lost = self.handlers.connection_lost
        self.running = True
        self.shutdown_request: int | None = None

    def run(self) -> int:
        """Run until `shutdown` or the end of stdin; return the exit status."""
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        mark_polling_thread()
        self.writer.start()
        self.context.emit(
            EventName.HELLO,
            Hello(
                protocol=PROTOCOL_VERSION,
                engine=EngineName.PJSUA2,
                engine_version=str(self.stack.endpoint.libVersion().full),
                python=platform.python_version(),
                pid=os.getpid(),
                max_accounts=MAX_ACCOUNTS,
                max_calls=MAX_CALLS_LIMIT,
            ),
        )
        self._reader.start()
        # SIGTERM ends the worker like the end of stdin: hang up, unregister, exit 0.
        signal.signal(signal.SIGTERM, self._terminate)
        try:
            while self.running:
                self.turn()
        finally:
            self._teardown()
        return 0

    def _terminate(self, signum: int, frame: object) -> None:
        self.context.deliver(_EndOfInput())

    def turn(self, *, requests: bool = True) -> None:
        """One pass: poll pjlib, run posted work, requests and due timers."""
        if self.stack.started:
            self.stack.endpoint.libHandleEvents(POLL_MSEC)
            self._drain(requests, block=False)
        else:
            self._drain(requests, block=True)
        for callback in self.context.scheduler.due():
            self._run_safely(callback)
        self.calls.reap()
        self.context.drop_retired()

    def pump(self, done: Callable[[], bool], timeout: float) -> None:
        """Poll pjlib (without taking new requests) until ``done`` or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline and self.stack.started:
            self.turn(requests=False)

    def _drain(self, requests: bool, *, block: bool) -> None:
        inbox = self.context.inbox
        deferred: list[Any] = []
        try:
            item = inbox.get(timeout=IDLE_WAIT) if block else inbox.get_nowait()
            while True:
                if isinstance(item, bytes):
                    if requests:
                        self._handle_line(item)
                    else:
                        deferred.append(item)
                elif isinstance(item, _EndOfInput):
                    _LOGGER.info("stdin closed: shutting down")
                    self.running = False
                else:
                    self._run_safely(item)
                item = inbox.get_nowait()
        except queue.Empty:
            pass
        for item in deferred:
            inbox.put(item)

    def _run_safely(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            _LOGGER.exception("Error in worker task")

    def _handle_line(self, line: bytes) -> None:
        request = read_request(line, self.writer)
        if request is None:
            return
        try:
            result = self.handlers.handle(request.method, request.params)
        except Exception as err:  # noqa: BLE001 - every failure is answered
            answer_error(self.writer, request, err, self.context.scrub, _pj_error)
        else:
            if request.method == "start" and self.stack.started:
                self.waker.arm(self.stack.bind_host, self.stack.sip_port)
            if result is _DEFERRED:
                self.shutdown_request = request.id
                self.running = False
            else:
                self.writer.respond(request.id, result)

    def _teardown(self) -> None:
        """Hang up, unregister, delete accounts, destroy the library; then answer."""
        try:
            if self.stack.started:
                self.handlers.hang_up_all()
                self.pump(lambda: not self.calls.live, TEARDOWN_WAIT)
                self.calls.reap()
                self.handlers.unregister_all(self.pump, TEARDOWN_WAIT)
                self.pump(lambda: not self.context.retired, RETIRE_SECONDS + 0.5)
                self.calls.clear()
                self.context.refusals.flush()
                self.context.scheduler.clear()
                self.context.drop_retired(everything=True)
                # Destroy every pjsua2 object while the library is still alive: a Call
                # destructor running after libDestroy fails a C assert.
                gc.collect()
            if self.shutdown_request is not None:
                self.writer.respond(self.shutdown_request)
            self.waker.close()
            self.stack.destroy()
        except Exception:
            _LOGGER.exception("Error during shutdown")
        finally:
            self.writer.close()


_DEFERRED = Pjsua2Handlers.DEFERRED


def _pj_error(err: Exception) -> str | None:
    """Return the text of a pjsua2 error, None for any other exception."""
    return describe_error(err) if isinstance(err, pj.Error) else None
