"""The supervisor shards by the limits the workers' hello states, not by a constant."""

import asyncio

import pytest

from custom_components.sip_endpoint.engine.errors import (
    EngineNotRunningError,
    ExtensionLimitError,
)
from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.sip_engine import SipEngine
from custom_components.sip_endpoint.protocol.engines import (
    ENGINE_LIMITS,
    EngineLimits,
    EngineName,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .conftest import EventRecorder, FakePythonFactory, latest_with_status

SERVER = ServerSettings(host="127.0.0.1", port=5060)


def _ext(number: int) -> ExtensionSettings:
    ext = str(3000 + number)
    return ExtensionSettings(f"id-{ext}", ext, ext, f"pw-{ext}")


def _engine(python: str, recorder: EventRecorder, **options: object) -> SipEngine:
    return SipEngine(
        SERVER,
        EngineOptions(worker_python=python, bind_host="127.0.0.1", **options),  # type: ignore[arg-type]
        recorder,
    )


async def _all_registered(recorder: EventRecorder, count: int) -> None:
    await recorder.wait_for(
        lambda events: (
            len(latest_with_status(events, RegistrationStatus.SUCCESSFUL)) == count
        )
    )


@pytest.mark.parametrize(
    ("max_accounts", "count", "sizes"),
    [(3, 7, [3, 3, 1]), (12, 20, [12, 8])],
)
async def test_shards_by_hello_limits(
    fake_python: FakePythonFactory,
    recorder: EventRecorder,
    max_accounts: int,
    count: int,
    sizes: list[int],
) -> None:
    """Workers that hold fewer or more than the known default are filled to their hello."""
    python = fake_python("--max-accounts", str(max_accounts), "--max-calls", "2")
    engine = _engine(python, recorder)
    await engine.start()
    assert engine.limits == ENGINE_LIMITS[EngineName.PJSUA2]  # before any hello
    await asyncio.gather(*(engine.add_extension(_ext(n)) for n in range(count)))
    await _all_registered(recorder, count)
    workers = engine.workers()
    assert [len(worker.account_ids) for worker in workers] == sizes
    assert all(
        (worker.max_accounts, worker.max_calls) == (max_accounts, 2)
        for worker in workers
    )
    assert engine.limits == EngineLimits(max_accounts=max_accounts, max_calls=2)
    await engine.stop()


async def test_capacity_follows_the_hello(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """Two ports hold one worker: as many extensions as its hello says, not 8."""
    engine = _engine(
        fake_python("--max-accounts", "3"), recorder, port_min=5900, port_max=5901
    )
    await engine.start()
    for number in range(3):
        await engine.add_extension(_ext(number))
    with pytest.raises(ExtensionLimitError, match="at most 3 extensions"):
        await engine.add_extension(_ext(3))
    await _all_registered(recorder, 3)
    await engine.stop()


async def test_ports_per_worker_times_limit(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """Six ports hold three workers of two extensions each."""
    engine = _engine(
        fake_python("--max-accounts", "2"), recorder, port_min=5900, port_max=5905
    )
    await engine.start()
    await asyncio.gather(*(engine.add_extension(_ext(n)) for n in range(6)))
    with pytest.raises(ExtensionLimitError, match="at most 6 extensions"):
        await engine.add_extension(_ext(6))
    await _all_registered(recorder, 6)
    assert [len(worker.account_ids) for worker in engine.workers()] == [2, 2, 2]
    await engine.stop()


async def test_worker_info_before_the_hello(
    fake_python: FakePythonFactory, recorder: EventRecorder
) -> None:
    """A worker still starting is described by the chosen engine and its known limits."""
    engine = _engine(fake_python("--hello-delay", "30"), recorder)
    await engine.start()
    adding = asyncio.create_task(engine.add_extension(_ext(1)))
    await asyncio.sleep(0)
    (worker,) = engine.workers()
    assert (worker.engine, worker.engine_version, worker.python) == (
        "pjsua2",
        "0.0-fake",
        "3.12.99",
    )
    limits = ENGINE_LIMITS[EngineName.PJSUA2]
    assert (worker.max_accounts, worker.max_calls) == (
        limits.max_accounts,
        limits.max_calls,
    )
    assert worker.pid is None
    await engine.stop()
    with pytest.raises(EngineNotRunningError):
        await adding
