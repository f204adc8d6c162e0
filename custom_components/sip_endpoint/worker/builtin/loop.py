"""The built-in engine's main: one asyncio loop runs SIP, media, timers and requests.

The protocol channel runs on the loop too (`core/channel.py`: `LoopProtocolReader`,
`LoopProtocolWriter`): stdin is read and events are written without a thread, so a
request or an event never waits for another thread to be scheduled. Requests run one
at a time, in order (a request that waits, like `remove_account`, holds the ones
behind it, as in the pjsua2 engine). `shutdown`, the end of stdin and SIGTERM all stop
the same way: hang up every call, unregister every account (Expires: 0, about 2 s at
most), close the sockets, answer `shutdown`, exit 0.

Garbage collection: the objects made at start-up (modules, classes, functions) are
frozen (`gc.freeze`), so that a full collection looks only at what calls and accounts
made, in well under a millisecond; one runs every `COLLECT_INTERVAL` seconds. Calls
free their objects by reference counting, so the automatic collector, driven by
allocations minus deallocations, hardly ever runs a full collection, and only a full
one empties CPython's free lists (tuples, floats, dicts...), which otherwise fill over
the first thousand calls and stay (about 0.3 MiB).
"""

import asyncio
import gc
import inspect
import json
import logging
import os
from pathlib import Path
import platform
import signal
import sys
from typing import BinaryIO, Final

from ...protocol import PROTOCOL_VERSION
from ...protocol.engines import EngineName
from ...protocol.payloads import EventName, Hello
from ..core.channel import LoopProtocolReader, LoopProtocolWriter, ProtocolReader
from ..core.dispatch import DEFERRED, answer_error, read_request
from .handlers import BuiltinHandlers
from .limits import HANGUP_WAIT, MAX_ACCOUNTS, MAX_CALLS
from .logs import forward_logs
from .sip.transport import TransportError
from .stack import BuiltinStack

_LOGGER = logging.getLogger(__name__)

MANIFEST: Final = Path(__file__).resolve().parents[2] / "manifest.json"
COLLECT_INTERVAL: Final = 10.0  # seconds between full garbage collections


def run_builtin(stdin_fd: int, protocol_out: BinaryIO) -> int:
    """Run the built-in engine until it is told to stop; return the exit status."""
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.INFO)  # debug records go to `log` events only
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[stderr])
    gc.collect()
    gc.freeze()  # start-up objects live as long as the worker: never scan them again
    return asyncio.run(BuiltinWorker(stdin_fd, protocol_out).run())


def integration_version() -> str:
    """Return the integration's version from its manifest.json ("unknown" if unread)."""
    try:
        version = json.loads(MANIFEST.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return "unknown"
    return str(version) if version else "unknown"


class BuiltinWorker:
    """Reads requests, runs them on the loop, stops cleanly."""

    def __init__(self, stdin_fd: int, protocol_out: BinaryIO) -> None:
        """Speak the protocol on ``stdin_fd`` and ``protocol_out``."""
        self._stdin_fd = stdin_fd
        self.writer = LoopProtocolWriter(protocol_out)
        self.stack = BuiltinStack(self.writer)
        self.handlers = BuiltinHandlers(self.stack)
        self._collector: asyncio.TimerHandle | None = None

    async def run(self) -> int:
        """Serve requests until `shutdown`, the end of stdin or SIGTERM; return 0."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_log_loop_error)
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.writer.start()
        forward_logs(self.stack)
        self.stack.emit(
            EventName.HELLO,
            Hello(
                protocol=PROTOCOL_VERSION,
                engine=EngineName.BUILTIN,
                engine_version=integration_version(),
                python=platform.python_version(),
                pid=os.getpid(),
                max_accounts=MAX_ACCOUNTS,
                max_calls=MAX_CALLS,
            ),
        )

        def on_eof() -> None:
            lines.put_nowait(None)

        try:
            LoopProtocolReader(self._stdin_fd, lines.put_nowait, on_eof).start()
        except OSError:  # stdin is not a pipe (a file): a reader thread then

            def on_line_threaded(line: bytes) -> None:
                loop.call_soon_threadsafe(lines.put_nowait, line)

            def on_eof_threaded() -> None:
                loop.call_soon_threadsafe(lines.put_nowait, None)

            ProtocolReader(self._stdin_fd, on_line_threaded, on_eof_threaded).start()
        self._collector = loop.call_later(COLLECT_INTERVAL, self._collect_garbage)
        # SIGTERM ends the worker like the end of stdin: hang up, unregister, exit 0.
        loop.add_signal_handler(signal.SIGTERM, lines.put_nowait, None)
        shutdown_request: int | None = None
        try:
            shutdown_request = await self._serve(lines)
        finally:
            if self._collector is not None:
                self._collector.cancel()
            await self._teardown()
            if shutdown_request is not None:
                self.writer.respond(shutdown_request)
            self.writer.close()
        return 0

    async def _serve(self, lines: "asyncio.Queue[bytes | None]") -> int | None:
        """Run requests in order; return the id of `shutdown`, None at end of input."""
        while (line := await lines.get()) is not None:
            request = read_request(line, self.writer)
            if request is None:
                continue
            try:
                result = self.handlers.handle(request.method, request.params)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as err:  # noqa: BLE001 - every failure is answered
                answer_error(self.writer, request, err, self.stack.scrub, _engine_error)
                continue
            if result is DEFERRED:
                return request.id
            self.writer.respond(request.id, result)
        _LOGGER.info("stdin closed: shutting down")
        return None

    def _collect_garbage(self) -> None:
        """Run a full collection (it empties the free lists too); schedule the next."""
        gc.collect()
        self._collector = asyncio.get_running_loop().call_later(
            COLLECT_INTERVAL, self._collect_garbage
        )

    async def _teardown(self) -> None:
        """Hang up, unregister, close the sockets; never raise."""
        try:
            if self.stack.started:
                await self.handlers.hang_up_and_unregister_all(HANGUP_WAIT)
            await self.stack.close()
        except Exception:
            _LOGGER.exception("Error during shutdown")


def _engine_error(err: Exception) -> str | None:
    """Return the text of a SIP or network error (answered `sip_error`), else None."""
    if isinstance(err, TransportError):
        return err.reason
    if isinstance(err, OSError):
        return str(err) or type(err).__name__
    return None


def _log_loop_error(
    loop: asyncio.AbstractEventLoop, context: dict[str, object]
) -> None:
    """Log what escaped a callback or task; the loop carries on."""
    error = context.get("exception")
    _LOGGER.error(
        "Error in the worker's loop: %s",
        context.get("message"),
        exc_info=error if isinstance(error, BaseException) else None,
    )
