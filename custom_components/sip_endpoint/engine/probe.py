"""Register one extension once, in a short-lived worker (test before configure)."""

import asyncio
import contextlib
from dataclasses import dataclass
import logging
import time
from typing import Any

from ..protocol.payloads import AccountRef, EventName, Method, RegistrationState
from ..protocol.status import RegistrationStatus
from ..protocol.wire import Event, ProtocolError
from .errors import EngineError, WorkerStartError
from .models import EngineOptions, ExtensionSettings, ServerSettings
from .params import account_params, registrar_uri, resolve_allowed_sources, start_params
from .selection import select_engine
from .worker_client import WorkerClient, describe_exit

_LOGGER = logging.getLogger(__name__)

PROBE_STOP_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """How a registration test went, and which engine ran it."""

    state: RegistrationState
    engine: str  # "pjsua2" or "builtin", as the worker's hello said
    engine_version: str
    python: str


async def probe_registration(
    server: ServerSettings,
    options: EngineOptions,
    extension: ExtensionSettings,
    *,
    timeout: float = 40.0,  # noqa: ASYNC109
    worker_python_candidates: tuple[str, ...] = (),
) -> RegistrationState:
    """Register once in a short-lived worker, unregister, and return the final state.

    Used by the config flow's test-before-configure. Raises WorkerPythonNotFoundError
    (engine `pjsua2` without an interpreter) or WorkerStartError; a SIP failure is a
    returned state.
    """
    outcome = await run_probe(
        server,
        options,
        extension,
        timeout=timeout,
        worker_python_candidates=worker_python_candidates,
    )
    return outcome.state


async def run_probe(
    server: ServerSettings,
    options: EngineOptions,
    extension: ExtensionSettings,
    *,
    timeout: float = 40.0,  # noqa: ASYNC109
    worker_python_candidates: tuple[str, ...] = (),
) -> ProbeOutcome:
    """Do what `probe_registration` does; also say which engine ran (scripts/sip-check)."""
    selected = await select_engine(
        options.engine, options.worker_python, worker_python_candidates
    )
    loop = asyncio.get_running_loop()
    final: asyncio.Future[RegistrationState] = loop.create_future()

    def on_event(event: Event) -> None:
        if event.name != EventName.REGISTRATION or final.done():
            return
        try:
            state = RegistrationState.from_wire(event.data)
        except ProtocolError as err:
            _LOGGER.warning("Malformed registration event: %s", err)
            return
        if state.account_id == extension.account_id and _is_final(state):
            final.set_result(state)

    client = WorkerClient(
        selected.python,
        name="SIP probe worker",
        on_event=on_event,
        engine=selected.name,
    )
    try:
        allowed = await resolve_allowed_sources(server)
        await client.start(start_params(options, allowed))
        try:
            await client.request(
                Method.ADD_ACCOUNT, account_params(server, options, extension)
            )
        except EngineError as err:
            raise WorkerStartError(
                f"the probe worker refused the extension: {err}"
            ) from err
        state = await _wait_final(client, final, timeout, server, extension)
        if state.status is RegistrationStatus.SUCCESSFUL:
            with contextlib.suppress(EngineError):
                await client.request(
                    Method.REMOVE_ACCOUNT,
                    AccountRef(extension.account_id),
                    timeout=PROBE_STOP_TIMEOUT,
                )
        hello = client.hello
        assert hello is not None  # `start` checked it
        return ProbeOutcome(
            state=state,
            engine=hello.engine,
            engine_version=hello.engine_version,
            python=hello.python,
        )
    finally:
        await client.stop(timeout=PROBE_STOP_TIMEOUT)


def _is_final(state: RegistrationState) -> bool:
    """Tell whether a state answers our REGISTER (not one reported beforehand)."""
    if state.status is RegistrationStatus.REGISTERING:
        return False
    return not (state.status is RegistrationStatus.UNREGISTERED and state.code is None)


async def _wait_final(
    client: WorkerClient,
    final: asyncio.Future[RegistrationState],
    wait_s: float,
    server: ServerSettings,
    extension: ExtensionSettings,
) -> RegistrationState:
    closed = asyncio.ensure_future(client.wait_closed())
    watched: set[asyncio.Future[Any]] = {final, closed}
    try:
        await asyncio.wait(watched, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if final.done():
        return final.result()
    if client.running:
        final.cancel()
        return RegistrationState(
            account_id=extension.account_id,
            status=RegistrationStatus.NO_REPLY_FROM_SERVER,
            code=None,
            reason=f"No final answer within {wait_s:g} s",
            changed_at=time.time(),
            last_success=None,
            expires=0,
            registrar=registrar_uri(server),
        )
    final.cancel()
    raise WorkerStartError(
        f"the probe worker went away ({describe_exit(client.returncode)})"
    )
