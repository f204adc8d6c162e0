"""One SIP worker process, driven over its stdin/stdout (docs/protocol.md).

`WorkerClient` launches the worker (``<python> -I launch.py --engine <name>``), checks
its `hello` (protocol version, engine, limits), sends `start`, correlates
requests with responses, hands events to a callback and notices when the process goes
away, whatever the reason. A line it cannot parse is logged and skipped.
"""

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
import logging
from pathlib import Path
import signal
from typing import Any

from ..protocol import PROTOCOL_VERSION
from ..protocol.engines import EngineLimits, EngineName
from ..protocol.payloads import (
    EventName,
    Hello,
    Method,
    Payload,
    StartParams,
    StartResult,
)
from ..protocol.wire import (
    MAX_LINE_BYTES,
    Event,
    ProtocolError,
    Request,
    Response,
    decode,
    encode,
)
from .errors import (
    EngineError,
    EngineNotRunningError,
    RequestFailedError,
    WorkerStartError,
)

_LOGGER = logging.getLogger(__name__)

WORKER_LAUNCHER = Path(__file__).resolve().parent.parent / "worker" / "launch.py"
STREAM_LIMIT = MAX_LINE_BYTES + 64 * 1024
HELLO_TIMEOUT = 30.0
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 15.0
EXIT_TIMEOUT = 5.0
_STDERR_TAIL_LINES = 20


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended, naming the signal that killed it."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class WorkerClient:
    """A running worker process and the protocol spoken with it."""

    def __init__(
        self,
        python: str,
        *,
        name: str,
        on_event: Callable[[Event], None],
        launcher: Path = WORKER_LAUNCHER,
        engine: EngineName | None = None,
    ) -> None:
        """Prepare a client; `start` launches the process.

        With `engine`, the worker is asked for that engine and its hello must name it;
        without, the worker runs its default engine.
        """
        self._python = python
        self._launcher = launcher
        self._engine = engine
        self.name = name
        self._on_event = on_event
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._next_id = 1
        self._hello: asyncio.Future[Hello] | None = None
        self._closed: asyncio.Future[int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self.hello: Hello | None = None
        self.start_result: StartResult | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the worker, once launched."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """How the worker exited; None while it runs."""
        return self._process.returncode if self._process else None

    @property
    def limits(self) -> EngineLimits | None:
        """What this worker holds, as its hello said; None before the hello."""
        if self.hello is None:
            return None
        return EngineLimits(self.hello.max_accounts, self.hello.max_calls)

    @property
    def running(self) -> bool:
        """Whether the process is launched and has not exited."""
        return self._closed is not None and not self._closed.done()

    async def start(
        self,
        params: StartParams,
        *,
        start_lock: asyncio.Lock | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> StartResult:
        """Launch the worker, check its hello, start its SIP stack.

        Workers launch in parallel; `start_lock`, when given, serialises only the
        `start` request, so that workers sharing a port range bind one after another.
        Raises WorkerStartError; the process is gone when it does.
        """
        try:
            return await self._start(params, start_lock, start_timeout)
        except BaseException:
            await self.kill()
            raise

    async def _start(
        self, params: StartParams, start_lock: asyncio.Lock | None, start_timeout: float
    ) -> StartResult:
        loop = asyncio.get_running_loop()
        engine_args = ("--engine", str(self._engine)) if self._engine else ()
        try:
            self._process = await asyncio.create_subprocess_exec(
                self._python,
                "-I",
                str(self._launcher),
                *engine_args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=STREAM_LIMIT,
            )
        except OSError as err:
            raise WorkerStartError(f"cannot launch {self._python}: {err}") from err
        self._hello = loop.create_future()
        self._closed = loop.create_future()
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"{self.name} stdout"),
            asyncio.create_task(self._read_stderr(), name=f"{self.name} stderr"),
        ]
        self._tasks.append(
            asyncio.create_task(self._watch_exit(), name=f"{self.name} exit")
        )
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                hello = await self._hello
        except TimeoutError:
            raise WorkerStartError(
                f"{self.name} sent no hello within {HELLO_TIMEOUT:.0f} s"
            ) from None
        self._check_hello(hello)
        self.hello = hello
        try:
            async with start_lock or contextlib.nullcontext():
                result = await self.request(Method.START, params, timeout=start_timeout)
            self.start_result = StartResult.from_wire(result)
        except (EngineError, ProtocolError) as err:
            raise WorkerStartError(f"{self.name} did not start: {err}") from err
        return self.start_result

    def _check_hello(self, hello: Hello) -> None:
        """Refuse a worker of another protocol, another engine, or without room."""
        if hello.protocol != PROTOCOL_VERSION:
            raise WorkerStartError(
                f"{self.name} speaks protocol {hello.protocol}, this integration speaks "
                f"{PROTOCOL_VERSION}: a stale worker or a broken install"
            )
        if self._engine is not None and hello.engine != self._engine:
            raise WorkerStartError(
                f"{self.name} runs engine {hello.engine!r}, not {str(self._engine)!r}"
            )
        if hello.max_accounts < 1 or hello.max_calls < 1:
            raise WorkerStartError(
                f"{self.name} holds no accounts or calls "
                f"(max_accounts {hello.max_accounts}, max_calls {hello.max_calls})"
            )

    async def request(
        self,
        method: Method,
        params: Payload | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send a request and return its result.

        Raises RequestFailedError when the worker answers with an error, and
        EngineNotRunningError when it is gone or does not answer in time.
        """
        process = self._process
        if process is None or process.stdin is None or not self.running:
            raise EngineNotRunningError(f"{self.name} is not running")
        msg_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        body = params.to_wire() if params is not None else {}
        try:
            process.stdin.write(encode(Request(id=msg_id, method=method, params=body)))
            await process.stdin.drain()
            async with asyncio.timeout(timeout):
                response = await future
        except (BrokenPipeError, ConnectionResetError) as err:
            raise EngineNotRunningError(f"{self.name} is not running") from err
        except TimeoutError:
            raise EngineNotRunningError(
                f"{self.name} did not answer {method} within {timeout:.0f} s"
            ) from None
        finally:
            self._pending.pop(msg_id, None)
        if response.error is not None:
            raise RequestFailedError(response.error.code, response.error.message)
        return response.result or {}

    async def wait_closed(self) -> int:
        """Wait until the worker has exited and its output is read; return its code."""
        if self._closed is None:
            raise EngineNotRunningError(f"{self.name} was never started")
        return await asyncio.shield(self._closed)

    async def stop(self, *, timeout: float = SHUTDOWN_TIMEOUT) -> None:  # noqa: ASYNC109
        """Ask the worker to shut down (it unregisters), then make sure it is gone."""
        if self._closed is None:
            return
        if self.running:
            with contextlib.suppress(EngineError):
                await self.request(Method.SHUTDOWN, timeout=timeout)
            try:
                async with asyncio.timeout(EXIT_TIMEOUT):
                    await asyncio.shield(self._closed)
            except TimeoutError:
                _LOGGER.warning("%s did not exit after shutdown; killing it", self.name)
        await self.kill()

    async def kill(self) -> None:
        """Kill the process (by its pid) if it runs, and wait for all readers."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        if self._closed is not None:
            await asyncio.shield(self._closed)
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stderr_tail(self) -> str:
        """Return the last lines the worker wrote to stderr (never secrets, by protocol)."""
        return "\n".join(self._stderr_tail)

    async def _watch_exit(self) -> None:
        assert self._process is not None and self._closed is not None
        returncode = await self._process.wait()
        # Let the readers drain what the process wrote before it went away.
        await asyncio.wait(self._tasks[:2], timeout=2)
        how = describe_exit(returncode)
        _LOGGER.debug("%s (pid %s) exited: %s", self.name, self._process.pid, how)
        error = EngineNotRunningError(f"{self.name} exited ({how})")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        if self._hello is not None and not self._hello.done():
            tail = self.stderr_tail()
            detail = f"; its last output:\n{tail}" if tail else ""
            self._hello.set_exception(
                WorkerStartError(f"{self.name} exited before its hello ({how}){detail}")
            )
        self._closed.set_result(returncode)

    async def _read_stdout(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        while True:
            try:
                line = await stdout.readline()
            except ValueError:
                _LOGGER.warning(
                    "%s wrote a line over %s bytes; skipped", self.name, MAX_LINE_BYTES
                )
                continue
            if not line:
                return
            self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        try:
            message = decode(line)
        except ProtocolError as err:
            _LOGGER.warning(
                "%s wrote a line that is not protocol (%s); skipped", self.name, err
            )
            _LOGGER.debug("Skipped line: %.200r", line)
            return
        if isinstance(message, Response):
            future = self._pending.get(message.id)
            if future is None:
                _LOGGER.warning(
                    "%s answered unknown request %s: %s",
                    self.name,
                    message.id,
                    message.error,
                )
            elif not future.done():
                future.set_result(message)
        elif isinstance(message, Event):
            self._handle_event(message)
        else:
            _LOGGER.warning("%s sent a request; ignored", self.name)

    def _handle_event(self, event: Event) -> None:
        if event.name == EventName.HELLO:
            if self._hello is None or self._hello.done():
                _LOGGER.warning("%s sent a second hello; ignored", self.name)
                return
            try:
                self._hello.set_result(Hello.from_wire(event.data))
            except ProtocolError as err:
                self._hello.set_exception(
                    WorkerStartError(f"{self.name} sent a malformed hello: {err}")
                )
            return
        try:
            self._on_event(event)
        except Exception:
            _LOGGER.exception("Error handling event %s from %s", event.name, self.name)

    async def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        stderr = self._process.stderr
        while True:
            try:
                line = await stderr.readline()
            except ValueError:
                continue
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            self._stderr_tail.append(text)
            _LOGGER.debug("%s: %s", self.name, text)
