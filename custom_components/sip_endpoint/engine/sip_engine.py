"""SipEngine: registers one SIP server's extensions through worker processes."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import logging
import time

from ..protocol.engines import EngineLimits
from ..protocol.payloads import (
    AccountRef,
    AudioFrame,
    CallDirection,
    CallEnded,
    CallPhase,
    CallRef,
    CallStarted,
    CallStateChanged,
    DtmfDigit,
    EndCause,
    EventName,
    HangupParams,
    IncomingCall,
    LogLine,
    MakeCallParams,
    Method,
    Payload,
    PlaybackDone,
    PlayParams,
    RecordingDone,
    RecordParams,
    Refused,
    RegistrationState,
    StreamParams,
    WorkerStatus,
)
from ..protocol.status import RegistrationStatus
from ..protocol.wire import Event, ProtocolError
from .errors import (
    EngineError,
    EngineNotRunningError,
    ExtensionLimitError,
    RequestFailedError,
)
from .models import (
    EngineEvent,
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
    WorkerInfo,
)
from .params import (
    account_params,
    registrar_uri,
    resolve_allowed_sources,
    start_params,
)
from .probe import probe_registration
from .selection import SelectedEngine, select_engine
from .worker_client import WorkerClient, describe_exit

__all__ = ["SipEngine", "probe_registration"]

_LOGGER = logging.getLogger(__name__)

RESTART_DELAY_MIN = 1.0
RESTART_DELAY_MAX = 60.0
STABLE_UPTIME = 60.0  # a worker up this long restarts without delay growth
RESTARTING_REASON = "SIP worker restarting"
WORKER_GONE_REASON = "SIP worker stopped"
PORTS_PER_WORKER = 2  # UDP and TCP share one port, TLS takes the next
_EARLY_ENDS_KEPT = 64

_PAYLOADS: dict[str, type[Payload]] = {
    EventName.REGISTRATION: RegistrationState,
    EventName.INCOMING_CALL: IncomingCall,
    EventName.CALL_STATE: CallStateChanged,
    EventName.CALL_ENDED: CallEnded,
    EventName.DTMF: DtmfDigit,
    EventName.AUDIO: AudioFrame,
    EventName.PLAYBACK_DONE: PlaybackDone,
    EventName.RECORDING_DONE: RecordingDone,
    EventName.REFUSED: Refused,
    EventName.LOG: LogLine,
}


@dataclass(slots=True)
class _Call:
    """A call the engine knows about, and the worker that holds it."""

    slot: "_WorkerSlot"
    account_id: str
    direction: CallDirection
    answered_at: float | None = None


class _WorkerSlot:
    """One worker position: its extensions, its current process and its supervisor."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.extensions: dict[str, ExtensionSettings] = {}
        self.client: WorkerClient | None = None
        self.accounts: set[str] = set()  # extensions added to the current process
        self.first_launch: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )
        # Nobody may await a failed first launch (the engine stopped): don't warn.
        self.first_launch.add_done_callback(
            lambda future: future.cancelled() or future.exception()
        )
        self.supervisor: asyncio.Task[None] | None = None
        self.restarts = 0
        self.started_at: float | None = None
        self.sip_port: int | None = None
        self.retired = False

    def is_retired(self) -> bool:
        """Tell whether the slot is being stopped for good (checked after awaits)."""
        return self.retired

    @property
    def up(self) -> bool:
        """Whether the worker process runs and is started."""
        return (
            self.client is not None
            and self.client.running
            and self.started_at is not None
        )

    def running_client(self) -> WorkerClient:
        """Return the worker's client; EngineNotRunningError while it is down."""
        if self.client is None or not self.up:
            raise EngineNotRunningError(f"SIP worker {self.index} is not running")
        return self.client


class SipEngine:
    """Shards extensions over workers, supervises and restarts them.

    `start` chooses the engine (`EngineOptions.engine`, engine/selection.py). A worker
    holds as many extensions as its hello's `max_accounts` says; until the first hello
    arrives, the engine goes by the chosen engine's known limits (ENGINE_LIMITS) and
    places nothing beside the first extension.

    Events (registration changes, incoming calls, DTMF, call ends, audio frames, ...) are
    delivered to `on_event`, always from the event loop the engine was started on, as
    they happen. On a worker crash the engine restarts it with backoff, reports its
    extensions as `unregistered` (reason "SIP worker restarting") meanwhile, ends its
    calls with cause `failed`, and registers them again once the worker is back.

    Every worker is given the whole port range `options.port_min..port_max` and binds
    the first free port in it; `start` requests go out one at a time, so workers of
    one engine never race for a port.
    """

    def __init__(
        self,
        server: ServerSettings,
        options: EngineOptions,
        on_event: Callable[[EngineEvent], None],
        *,
        worker_python_candidates: tuple[str, ...] = (),
    ) -> None:
        """Prepare an engine; nothing runs until `start`."""
        self._server = server
        self._options = options
        self._on_event = on_event
        self._candidates = worker_python_candidates
        self._selected: SelectedEngine | None = None
        self._limits = EngineLimits(max_accounts=1, max_calls=1)  # set by `start`
        self._limits_from_hello = False
        self._running = False
        self._slots: list[_WorkerSlot] = []
        self._ext_slots: dict[str, _WorkerSlot] = {}
        self._states: dict[str, RegistrationState] = {}
        self._calls: dict[str, _Call] = {}
        self._call_waiters: dict[str, asyncio.Future[CallEnded]] = {}
        self._early_ends: dict[str, CallEnded] = {}
        self._start_lock = asyncio.Lock()

    @property
    def selected_engine(self) -> SelectedEngine | None:
        """The engine and interpreter the workers run on, once started."""
        return self._selected

    @property
    def limits(self) -> EngineLimits:
        """What one worker holds: from the last hello, else the engine's known limits."""
        return self._limits

    async def start(self) -> None:
        """Choose the engine and its interpreter, and get ready to add extensions.

        Raises WorkerPythonNotFoundError when the engine option is `pjsua2` and no
        interpreter with pjsua2 exists (`auto` runs the built-in engine then).
        """
        if self._running:
            return
        self._selected = await select_engine(
            self._options.engine, self._options.worker_python, self._candidates
        )
        self._limits = self._selected.limits
        self._limits_from_hello = False
        _LOGGER.debug(
            "SIP workers run the %s engine on %s (Python %s)",
            self._selected.name,
            self._selected.python,
            self._selected.python_version,
        )
        self._running = True

    async def stop(self) -> None:
        """Unregister everything (Expires: 0), end all workers; nothing lingers."""
        self._running = False
        slots, self._slots = self._slots, []
        await asyncio.gather(*(self._retire(slot) for slot in slots))
        for slot in slots:
            self._end_calls(slot)
        self._ext_slots.clear()
        self._early_ends.clear()

    async def add_extension(self, extension: ExtensionSettings) -> None:
        """Register an extension (status events follow). ExtensionLimitError past the cap."""
        self._ensure_running()
        await self._limits_known()
        self._ensure_running()
        if extension.account_id in self._ext_slots:
            await self.update_extension(extension)
            return
        if len(self._ext_slots) >= self._capacity():
            raise ExtensionLimitError(
                f"at most {self._capacity()} extensions fit in ports "
                f"{self._options.port_min}-{self._options.port_max}"
            )
        slot = self._slot_with_room()
        slot.extensions[extension.account_id] = extension
        self._ext_slots[extension.account_id] = slot
        try:
            await asyncio.shield(slot.first_launch)
        except EngineError:
            self._forget(extension.account_id)
            raise
        if not slot.up:
            self._report_restarting(slot, [extension.account_id])
            return
        try:
            await self._add_account(slot, extension)
        except RequestFailedError:
            self._forget(extension.account_id)
            raise
        except EngineNotRunningError as err:
            # The worker went away meanwhile; its restart registers the extension.
            _LOGGER.debug("Adding %s: %s", extension.account_id, err)

    async def update_extension(self, extension: ExtensionSettings) -> None:
        """Replace an extension's credentials and register again."""
        self._ensure_running()
        slot = self._ext_slots.get(extension.account_id)
        if slot is None:
            await self.add_extension(extension)
            return
        slot.extensions[extension.account_id] = extension
        if extension.account_id in slot.accounts and slot.client is not None:
            slot.accounts.discard(extension.account_id)
            try:
                await slot.client.request(
                    Method.REMOVE_ACCOUNT, AccountRef(extension.account_id)
                )
            except EngineError as err:
                _LOGGER.debug("Replacing %s: %s", extension.account_id, err)
        if slot.up:
            try:
                await self._add_account(slot, extension)
            except EngineNotRunningError as err:
                _LOGGER.debug("Replacing %s: %s", extension.account_id, err)

    async def remove_extension(self, account_id: str) -> None:
        """Unregister an extension and forget it."""
        slot = self._ext_slots.get(account_id)
        if slot is None:
            return
        self._forget(account_id)
        if account_id in slot.accounts and slot.client is not None:
            slot.accounts.discard(account_id)
            try:
                await slot.client.request(Method.REMOVE_ACCOUNT, AccountRef(account_id))
            except EngineError as err:
                _LOGGER.debug(
                    "Removing %s from SIP worker %s: %s", account_id, slot.index, err
                )
        if not slot.extensions and slot in self._slots:
            self._slots.remove(slot)
            await self._retire(slot)

    async def reregister(self, account_id: str) -> None:
        """Send a fresh REGISTER now."""
        slot = self._ext_slots.get(account_id)
        if slot is None:
            raise RequestFailedError("unknown_extension", f"no extension {account_id}")
        await slot.running_client().request(Method.REREGISTER, AccountRef(account_id))

    async def ring(self, call_id: str) -> None:
        """Answer 180 Ringing and keep the call unanswered."""
        await self._call_request(call_id, Method.RING, CallRef(call_id))

    async def answer(self, call_id: str) -> None:
        """Answer 200 OK."""
        await self._call_request(call_id, Method.ANSWER, CallRef(call_id))

    async def play(self, call_id: str, path: str) -> None:
        """Play a WAV file into a call once; a `PlaybackDone` event follows its end."""
        await self._call_request(call_id, Method.PLAY, PlayParams(call_id, path))

    async def record(self, call_id: str, path: str) -> None:
        """Record the caller to a WAV file until the call ends."""
        await self._call_request(call_id, Method.RECORD, RecordParams(call_id, path))

    async def stream(self, call_id: str, *, enable: bool) -> None:
        """Start or stop AudioFrame events with the caller's audio."""
        await self._call_request(call_id, Method.STREAM, StreamParams(call_id, enable))

    async def hangup(self, call_id: str, code: int = 603) -> None:
        """End a call."""
        await self._call_request(call_id, Method.HANGUP, HangupParams(call_id, code))

    async def make_call(
        self,
        account_id: str,
        target: str,
        play: str | None = None,
        timeout: int = 30,  # noqa: ASYNC109
    ) -> CallEnded:
        """Call a number or SIP URI, play a file once answered, hang up; return how it ended."""
        slot = self._ext_slots.get(account_id)
        if slot is None:
            raise RequestFailedError("unknown_extension", f"no extension {account_id}")
        result = await slot.running_client().request(
            Method.MAKE_CALL, MakeCallParams(account_id, target, play, timeout)
        )
        call_id = CallStarted.from_wire(result).call_id
        if (ended := self._early_ends.pop(call_id, None)) is not None:
            return ended
        self._calls.setdefault(call_id, _Call(slot, account_id, CallDirection.OUTBOUND))
        waiter: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
        self._call_waiters[call_id] = waiter
        try:
            return await waiter
        finally:
            self._call_waiters.pop(call_id, None)

    def workers(self) -> list[WorkerInfo]:
        """Describe the worker processes (for diagnostics)."""
        return [self._describe(slot) for slot in self._slots]

    async def worker_statuses(self) -> dict[int, WorkerStatus]:
        """Return the `status` of every running worker, by worker index.

        Accounts, calls, memory and the recent REGISTER answers (without secrets) of
        each worker that answers (for diagnostics).
        """
        slots = [slot for slot in self._slots if slot.up]
        statuses = await asyncio.gather(*(self._worker_status(slot) for slot in slots))
        return {
            slot.index: status
            for slot, status in zip(slots, statuses, strict=True)
            if status is not None
        }

    # --- workers ----------------------------------------------------------------------

    def _describe(self, slot: _WorkerSlot) -> WorkerInfo:
        """Describe a worker by its hello, or by the chosen engine before one."""
        hello = slot.client.hello if slot.client is not None else None
        if hello is not None:
            engine, version, python = hello.engine, hello.engine_version, hello.python
            limits = EngineLimits(hello.max_accounts, hello.max_calls)
        else:
            selected = self._selected
            engine = str(selected.name) if selected else ""
            version = selected.engine_version if selected else ""
            python = selected.python_version if selected else ""
            limits = self._limits
        return WorkerInfo(
            index=slot.index,
            pid=slot.client.pid if slot.up and slot.client else None,
            engine=engine,
            engine_version=version,
            python=python,
            max_accounts=limits.max_accounts,
            max_calls=limits.max_calls,
            started_at=slot.started_at if slot.up else None,
            restarts=slot.restarts,
            sip_port=slot.sip_port if slot.up else None,
            account_ids=list(slot.extensions),
        )

    def _capacity(self) -> int:
        """Extensions the port range holds: one worker per PORTS_PER_WORKER ports."""
        ports = self._options.port_max - self._options.port_min + 1
        return max(1, ports // PORTS_PER_WORKER) * self._limits.max_accounts

    async def _limits_known(self) -> None:
        """Wait until a worker's hello has told the limits, while one is on its way."""
        while not self._limits_from_hello:
            launching = [
                slot.first_launch
                for slot in self._slots
                if not slot.first_launch.done()
            ]
            if not launching:
                return
            await asyncio.wait(launching, return_when=asyncio.FIRST_COMPLETED)

    def _take_limits(self, client: WorkerClient) -> None:
        """Go by the limits a worker's hello states."""
        limits = client.limits
        if limits is None:
            return
        if limits != self._limits:
            _LOGGER.debug(
                "SIP workers hold %s extensions and %s calls each",
                limits.max_accounts,
                limits.max_calls,
            )
        self._limits = limits
        self._limits_from_hello = True

    def _slot_with_room(self) -> _WorkerSlot:
        """Return the first worker with room for one more extension, or a new one."""
        for slot in self._slots:
            if not slot.retired and len(slot.extensions) < self._limits.max_accounts:
                return slot
        used = {slot.index for slot in self._slots}
        index = next(i for i in range(len(used) + 1) if i not in used)
        slot = _WorkerSlot(index)
        self._slots.append(slot)
        self._slots.sort(key=lambda item: item.index)
        slot.supervisor = asyncio.create_task(
            self._supervise(slot), name=f"SIP worker {index} supervisor"
        )
        return slot

    async def _supervise(self, slot: _WorkerSlot) -> None:
        """Run a worker; restart it with growing delays whenever it goes away."""
        delay = RESTART_DELAY_MIN
        try:
            while not slot.retired:
                launched_at = time.monotonic()
                try:
                    client = await self._launch(slot)
                except EngineError as err:
                    if not slot.first_launch.done():
                        slot.first_launch.set_exception(err)
                        self._drop_failed_slot(slot)
                        return
                    _LOGGER.warning("SIP worker %s did not start: %s", slot.index, err)
                else:
                    if not slot.first_launch.done():
                        slot.first_launch.set_result(None)
                    returncode = await client.wait_closed()
                    slot.started_at = None
                    if slot.is_retired():
                        return
                    _LOGGER.warning(
                        "SIP worker %s (pid %s) went away (%s); restarting it",
                        slot.index,
                        client.pid,
                        describe_exit(returncode),
                    )
                    self._report_outage(slot)
                    if time.monotonic() - launched_at >= STABLE_UPTIME:
                        delay = RESTART_DELAY_MIN
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)
                slot.restarts += 1
        finally:
            if slot.client is not None:
                await slot.client.kill()
            if not slot.first_launch.done():
                slot.first_launch.set_exception(EngineNotRunningError("engine stopped"))

    async def _launch(self, slot: _WorkerSlot) -> WorkerClient:
        """Start a worker process for a slot and add its extensions."""
        assert self._selected is not None
        client = WorkerClient(
            self._selected.python,
            name=f"SIP worker {slot.index}",
            on_event=lambda event: self._handle_event(slot, event),
            engine=self._selected.name,
        )
        slot.client = client
        slot.accounts = set()
        allowed = await resolve_allowed_sources(self._server)
        result = await client.start(
            start_params(self._options, allowed), start_lock=self._start_lock
        )
        self._take_limits(client)
        slot.sip_port = result.sip_port
        slot.started_at = time.time()
        _LOGGER.debug(
            "SIP worker %s (pid %s) listens on port %s",
            slot.index,
            client.pid,
            result.sip_port,
        )
        outcomes = await asyncio.gather(
            *(self._add_account(slot, ext) for ext in list(slot.extensions.values())),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, EngineError):
                _LOGGER.warning("SIP worker %s: %s", slot.index, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return client

    async def _add_account(
        self, slot: _WorkerSlot, extension: ExtensionSettings
    ) -> None:
        """Add an extension to its slot's running worker, unless it is there already."""
        client = slot.client
        if (
            client is None
            or not client.running
            or extension.account_id in slot.accounts
        ):
            return
        slot.accounts.add(extension.account_id)
        self._set_interim_state(
            extension.account_id, RegistrationStatus.REGISTERING, "Registering"
        )
        try:
            await client.request(
                Method.ADD_ACCOUNT,
                account_params(self._server, self._options, extension),
            )
        except EngineError:
            slot.accounts.discard(extension.account_id)
            raise

    async def _retire(self, slot: _WorkerSlot) -> None:
        """Stop a slot's worker for good (it unregisters) and its supervisor."""
        slot.retired = True
        if slot.client is not None and slot.up:
            await slot.client.stop()
        if slot.supervisor is not None:
            slot.supervisor.cancel()
            await asyncio.gather(slot.supervisor, return_exceptions=True)

    def _drop_failed_slot(self, slot: _WorkerSlot) -> None:
        """Forget a slot whose worker never started, with its extensions."""
        slot.retired = True
        if slot in self._slots:
            self._slots.remove(slot)
        for account_id in list(slot.extensions):
            self._forget(account_id)

    async def _worker_status(self, slot: _WorkerSlot) -> WorkerStatus | None:
        try:
            result = await slot.running_client().request(Method.STATUS)
            return WorkerStatus.from_wire(result)
        except (EngineError, ProtocolError) as err:
            _LOGGER.debug("No status from SIP worker %s: %s", slot.index, err)
            return None

    # --- events and state -------------------------------------------------------------

    def _handle_event(self, slot: _WorkerSlot, event: Event) -> None:
        """Turn a worker's event into a typed payload, track it and pass it on."""
        payload_type = _PAYLOADS.get(event.name)
        if payload_type is None:
            _LOGGER.debug("SIP worker %s sent unknown event %s", slot.index, event.name)
            return
        try:
            payload = payload_type.from_wire(event.data)
        except ProtocolError as err:
            _LOGGER.warning(
                "SIP worker %s sent a malformed %s: %s", slot.index, event.name, err
            )
            return
        match payload:
            case LogLine(level=level, message=message):
                _LOGGER.debug("SIP worker %s [%s] %s", slot.index, level, message)
            case RegistrationState(account_id=account_id):
                if slot.extensions.get(account_id) is not None:
                    self._set_state(payload)
            case IncomingCall(call_id=call_id, account_id=account_id):
                self._calls[call_id] = _Call(slot, account_id, CallDirection.INBOUND)
                self._emit(payload)
            case CallStateChanged(call_id=call_id, account_id=account_id, phase=phase):
                call = self._calls.setdefault(
                    call_id, _Call(slot, account_id, CallDirection.OUTBOUND)
                )
                if phase is CallPhase.CONFIRMED and call.answered_at is None:
                    call.answered_at = time.monotonic()
                self._emit(payload)
            case CallEnded():
                self._finish_call(payload)
            case (
                DtmfDigit()
                | AudioFrame()
                | PlaybackDone()
                | RecordingDone()
                | Refused()
            ):
                self._emit(payload)

    def _finish_call(self, ended: CallEnded) -> None:
        self._calls.pop(ended.call_id, None)
        waiter = self._call_waiters.get(ended.call_id)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(ended)
        elif ended.direction is CallDirection.OUTBOUND:
            # make_call may not have seen its own result yet.
            self._early_ends[ended.call_id] = ended
            while len(self._early_ends) > _EARLY_ENDS_KEPT:
                del self._early_ends[next(iter(self._early_ends))]
        self._emit(ended)

    def _end_calls(self, slot: _WorkerSlot) -> None:
        """End the calls of a worker that went away, with cause `failed`."""
        now = time.monotonic()
        for call_id, call in list(self._calls.items()):
            if call.slot is not slot:
                continue
            self._finish_call(
                CallEnded(
                    call_id=call_id,
                    account_id=call.account_id,
                    direction=call.direction,
                    cause=EndCause.FAILED,
                    code=0,
                    reason=WORKER_GONE_REASON,
                    answered=call.answered_at is not None,
                    duration=now - call.answered_at if call.answered_at else 0.0,
                )
            )

    def _report_outage(self, slot: _WorkerSlot) -> None:
        slot.accounts.clear()
        self._report_restarting(slot, list(slot.extensions))
        self._end_calls(slot)

    def _report_restarting(self, slot: _WorkerSlot, account_ids: list[str]) -> None:
        for account_id in account_ids:
            self._set_interim_state(
                account_id, RegistrationStatus.UNREGISTERED, RESTARTING_REASON
            )

    def _set_interim_state(
        self, account_id: str, status: RegistrationStatus, reason: str
    ) -> None:
        """Report a state the engine knows before the registrar answers."""
        previous = self._states.get(account_id)
        self._set_state(
            RegistrationState(
                account_id=account_id,
                status=status,
                code=None,
                reason=reason,
                changed_at=time.time(),
                last_success=previous.last_success if previous else None,
                expires=0,
                registrar=previous.registrar
                if previous
                else registrar_uri(self._server),
            )
        )

    def _set_state(self, state: RegistrationState) -> None:
        self._states[state.account_id] = state
        self._emit(state)

    def _emit(self, event: EngineEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            _LOGGER.exception("Error in the SIP engine's event callback")

    def _forget(self, account_id: str) -> None:
        slot = self._ext_slots.pop(account_id, None)
        if slot is not None:
            slot.extensions.pop(account_id, None)
        self._states.pop(account_id, None)

    def _ensure_running(self) -> None:
        if not self._running:
            raise EngineNotRunningError("the SIP engine is not started")

    async def _call_request(
        self, call_id: str, method: Method, params: Payload
    ) -> None:
        call = self._calls.get(call_id)
        if call is None:
            raise RequestFailedError("unknown_call", f"no call {call_id}")
        await call.slot.running_client().request(method, params)
