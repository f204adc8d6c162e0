"""SipEngine and probe_registration against real pjsua2 workers and a real Kamailio."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.engine.errors import RequestFailedError
from custom_components.sip_endpoint.engine.models import (
    EngineEvent,
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import (
    RESTARTING_REASON,
    SipEngine,
    probe_registration,
)
from custom_components.sip_endpoint.protocol.payloads import (
    CallEnded,
    CallStateChanged,
    DtmfDigit,
    EndCause,
    IncomingCall,
    RegistrationState,
    Transport,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.netutil import free_port
from tests.sipbed.users import password_for

from .conftest import EventRecorder, latest_with_status, pid_alive

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio, KamailioFactory

    type EngineFactory = Callable[..., SipEngine]

# The test bed's helpers open loopback sockets to find free ports.
pytestmark = pytest.mark.usefixtures("socket_enabled")


def extension(number: int, password: str | None = None) -> ExtensionSettings:
    """Return the settings of a standard test bed extension (2000 + number)."""
    ext = str(2000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, password or password_for(ext))


def options(worker_python: Path, **changes: object) -> EngineOptions:
    """Return engine options for loopback tests."""
    values: dict[str, object] = {
        "worker_python": str(worker_python),
        "bind_host": "127.0.0.1",
        "retry_interval": 1,
        **changes,
    }
    return EngineOptions(**values)  # type: ignore[arg-type]


def server(kamailio: Kamailio, transport: Transport = Transport.UDP) -> ServerSettings:
    """Return the server settings of a test bed Kamailio."""
    return ServerSettings(host=kamailio.host, port=kamailio.port, transport=transport)


@pytest.fixture
async def engine_factory(
    worker_python: Path, recorder: EventRecorder
) -> AsyncIterator[EngineFactory]:
    """Return a factory of engines reporting to `recorder`; all are stopped at teardown."""
    engines: list[SipEngine] = []

    def make(settings: ServerSettings, **changes: object) -> SipEngine:
        engine = SipEngine(settings, options(worker_python, **changes), recorder)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()


def has_status(
    account_ids: set[str], status: RegistrationStatus
) -> Callable[[list[EngineEvent]], bool]:
    """Return a predicate: these extensions' latest status is `status`."""
    return lambda events: account_ids <= latest_with_status(events, status)


def last_state(recorder: EventRecorder, account_id: str) -> RegistrationState:
    """Return the latest registration event of an extension."""
    return [
        event
        for event in recorder.events
        if isinstance(event, RegistrationState) and event.account_id == account_id
    ][-1]


async def test_register_and_stop(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Extensions register; stop unregisters them and leaves no process behind."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    for number in range(3):
        await engine.add_extension(extension(number))
    ids = {f"id-{2000 + number}" for number in range(3)}
    await recorder.wait_for(has_status(ids, RegistrationStatus.SUCCESSFUL))
    state = last_state(recorder, "id-2000")
    assert (state.code, state.expires > 0) == (200, True)
    (worker,) = engine.workers()
    status = (await engine.worker_statuses())[worker.index]
    assert (status.accounts, status.calls, status.rss_kib > 0) == (3, 0, True)
    assert {(x.account_id, x.code, x.from_server) for x in status.exchanges} >= {
        (account_id, 200, True) for account_id in ids
    }
    assert worker.pid is not None and pid_alive(worker.pid)
    assert worker.python.startswith("3.12")
    assert (worker.engine, worker.max_accounts) == ("pjsua2", 8)
    assert worker.engine_version.startswith("2.15.1")
    assert worker.sip_port is not None
    await engine.stop()
    assert not pid_alive(worker.pid)
    assert ids <= latest_with_status(recorder.events, RegistrationStatus.UNREGISTERED)


@pytest.mark.parametrize(("policy", "code"), [("rechallenge", 401), ("forbidden", 403)])
async def test_wrong_password(
    kamailio_factory: KamailioFactory,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    policy: str,
    code: int,
) -> None:
    """A wrong password is rejected by the server, whichever way it says so."""
    kamailio = kamailio_factory(wrong_password=policy)  # type: ignore[arg-type]
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(1, password="wrong"))
    await recorder.wait_for(
        has_status({"id-2001"}, RegistrationStatus.REJECTED_BY_SERVER)
    )
    assert last_state(recorder, "id-2001").code == code


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("not_found", (RegistrationStatus.NOT_FOUND, 404)),
        ("forbidden", (RegistrationStatus.REJECTED_BY_SERVER, 403)),
    ],
)
async def test_unknown_user(
    kamailio_factory: KamailioFactory,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    policy: str,
    expected: tuple[RegistrationStatus, int],
) -> None:
    """An unknown user is not found (404) or refused (403), as the server chooses."""
    kamailio = kamailio_factory(unknown_user=policy)  # type: ignore[arg-type]
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(ExtensionSettings("id-7777", "7777", "7777", "whatever"))
    status, code = expected
    await recorder.wait_for(has_status({"id-7777"}, status))
    assert last_state(recorder, "id-7777").code == code


async def test_server_down_tcp(
    engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Nobody listening on TCP: the local 503 means no reply from the server."""
    settings = ServerSettings(
        host="127.0.0.1", port=free_port(), transport=Transport.TCP
    )
    engine = engine_factory(settings)
    await engine.start()
    await engine.add_extension(extension(2))
    await recorder.wait_for(
        has_status({"id-2002"}, RegistrationStatus.NO_REPLY_FROM_SERVER)
    )
    assert last_state(recorder, "id-2002").code == 503
    (status,) = (await engine.worker_statuses()).values()
    assert any(x.code == 503 and not x.from_server for x in status.exchanges)


async def test_server_down_udp(worker_python: Path) -> None:
    """Nobody listening on UDP: Timer F's local 408 means no reply (takes ~32 s)."""
    settings = ServerSettings(
        host="127.0.0.1", port=free_port(), transport=Transport.UDP
    )
    state = await probe_registration(
        settings, options(worker_python), extension(3), timeout=60
    )
    assert state.status is RegistrationStatus.NO_REPLY_FROM_SERVER
    assert state.code == 408


async def test_recovers_after_kamailio_restart(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Registrations come back by themselves once the server is back."""
    engine = engine_factory(server(kamailio, Transport.TCP))
    await engine.start()
    await engine.add_extension(extension(4))
    await recorder.wait_for(has_status({"id-2004"}, RegistrationStatus.SUCCESSFUL))
    kamailio.stop()
    await engine.reregister("id-2004")
    await recorder.wait_for(
        has_status({"id-2004"}, RegistrationStatus.NO_REPLY_FROM_SERVER)
    )
    kamailio.start()
    await recorder.wait_for(
        has_status({"id-2004"}, RegistrationStatus.SUCCESSFUL), limit=60
    )
    assert last_state(recorder, "id-2004").code == 200


async def test_killed_worker_comes_back(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """SIGKILL: the outage shows as unregistered, then the extensions register again."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    for number in range(10):
        await engine.add_extension(extension(number))
    ids = {f"id-{2000 + number}" for number in range(10)}
    await recorder.wait_for(has_status(ids, RegistrationStatus.SUCCESSFUL))
    victim = engine.workers()[1]
    assert victim.pid is not None and len(victim.account_ids) == 2
    os.kill(victim.pid, signal.SIGKILL)
    outage = set(victim.account_ids)
    await recorder.wait_for(has_status(outage, RegistrationStatus.UNREGISTERED))
    assert all(
        last_state(recorder, account_id).reason == RESTARTING_REASON
        for account_id in outage
    )
    untouched = engine.workers()[0]
    assert set(untouched.account_ids) <= latest_with_status(
        recorder.events, RegistrationStatus.SUCCESSFUL
    )
    await recorder.wait_for(has_status(outage, RegistrationStatus.SUCCESSFUL))
    restarted = engine.workers()[1]
    assert restarted.restarts == 1
    assert restarted.pid not in (None, victim.pid)
    assert not pid_alive(victim.pid)


async def test_sixty_extensions(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """50 page and 10 ring extensions register over 8 workers; stop ends them all."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    settings = [extension(number) for number in range(60)]
    await asyncio.gather(*(engine.add_extension(ext) for ext in settings))
    ids = {ext.account_id for ext in settings}
    await recorder.wait_for(has_status(ids, RegistrationStatus.SUCCESSFUL), limit=60)
    workers = engine.workers()
    assert sorted(len(worker.account_ids) for worker in workers) == [4] + [8] * 7
    assert len({worker.sip_port for worker in workers}) == 8
    pids = [worker.pid for worker in workers]
    await engine.stop()
    assert not any(pid and pid_alive(pid) for pid in pids)


async def test_probe_registration(kamailio: Kamailio, worker_python: Path) -> None:
    """The probe registers once and reports the final answer, good or bad."""
    good = await probe_registration(
        server(kamailio), options(worker_python), extension(10)
    )
    assert (good.status, good.code) == (RegistrationStatus.SUCCESSFUL, 200)
    bad = await probe_registration(
        server(kamailio), options(worker_python), extension(11, password="nope")
    )
    assert bad.status is RegistrationStatus.REJECTED_BY_SERVER


async def test_inbound_call_answered_then_remote_bye(
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    baresip_factory: BaresipFactory,
) -> None:
    """An INVITE reaches the engine, is answered through it, DTMF flows, BYE ends it."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(20))
    await recorder.wait_for(has_status({"id-2020"}, RegistrationStatus.SUCCESSFUL))
    caller = baresip_factory(
        user="9001", password=password_for("9001"), registrar=kamailio
    )
    caller.wait_registered()
    caller.dial(f"sip:2020@{kamailio.host}:{kamailio.port}")
    await recorder.wait_for(
        lambda events: any(isinstance(e, IncomingCall) for e in events)
    )
    call = next(e for e in recorder.events if isinstance(e, IncomingCall))
    assert call.account_id == "id-2020"
    await engine.answer(call.call_id)
    caller.wait_established()
    caller.send_dtmf("42#")
    await recorder.wait_for(
        lambda events: (
            "".join(e.digit for e in events if isinstance(e, DtmfDigit)) == "42#"
        )
    )
    caller.hangup()
    await recorder.wait_for(
        lambda events: any(isinstance(e, CallEnded) for e in events)
    )
    ended = next(e for e in recorder.events if isinstance(e, CallEnded))
    assert (ended.call_id, ended.cause, ended.answered) == (
        call.call_id,
        EndCause.BYE,
        True,
    )


async def test_make_call_to_a_phone(
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    baresip_factory: BaresipFactory,
) -> None:
    """make_call rings a phone through the registrar and returns how the call ended."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(21))
    await recorder.wait_for(has_status({"id-2021"}, RegistrationStatus.SUCCESSFUL))
    phone = baresip_factory(
        user="9002", password=password_for("9002"), registrar=kamailio
    )
    phone.wait_registered()
    calling = asyncio.create_task(engine.make_call("id-2021", "9002", timeout=20))
    await recorder.wait_for(
        lambda events: any(isinstance(e, CallStateChanged) for e in events)
    )
    assert "2021" in phone.wait_incoming()
    phone.accept()
    ended = await asyncio.wait_for(calling, 30)
    assert ended.account_id == "id-2021"
    assert ended.answered is True
    assert ended.cause in (EndCause.LOCAL, EndCause.BYE)
    assert any(
        isinstance(e, CallEnded) and e.call_id == ended.call_id for e in recorder.events
    )


async def test_update_and_remove_extension(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Fixed credentials register; a removed extension is forgotten, its worker ends."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(40, password="typo"))
    await recorder.wait_for(
        has_status({"id-2040"}, RegistrationStatus.REJECTED_BY_SERVER)
    )
    await engine.update_extension(extension(40))
    await recorder.wait_for(has_status({"id-2040"}, RegistrationStatus.SUCCESSFUL))
    (worker,) = engine.workers()
    assert worker.pid is not None
    removed_at = len(recorder.events)
    await engine.remove_extension("id-2040")
    # Forgotten: the worker's `unregistered` for it is not passed on.
    assert recorder.states("id-2040", since=removed_at) == []
    with pytest.raises(RequestFailedError, match="unknown_extension"):
        await engine.reregister("id-2040")
    assert engine.workers() == []
    assert not pid_alive(worker.pid)


async def test_stop_unregisters_at_the_registrar(
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    baresip_factory: BaresipFactory,
) -> None:
    """After stop, the registrar has no contact left: calls get 480, not a timeout."""
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(50))
    await recorder.wait_for(has_status({"id-2050"}, RegistrationStatus.SUCCESSFUL))
    await engine.stop()
    caller = baresip_factory(
        user="9003", password=password_for("9003"), registrar=kamailio
    )
    caller.wait_registered()
    caller.dial(f"sip:2050@{kamailio.host}:{kamailio.port}")
    assert caller.wait_closed().startswith("480")
