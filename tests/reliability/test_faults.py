"""Faults: the registrar restarts, or becomes unreachable behind a network namespace."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.engine.models import ServerSettings
from custom_components.sip_endpoint.protocol.payloads import KeepaliveMethod, Transport
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.engine.conftest import latest_with_status

from .calls import one_call
from .conftest import extension, server

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from custom_components.sip_endpoint.engine.models import EngineEvent
    from tests.engine.conftest import EventRecorder
    from tests.sipbed.kamailio import Kamailio, KamailioFactory
    from tests.sipbed.netns import NamespacePair

    from .conftest import EngineFactory

TIMER_F = 32  # pjsip's non-INVITE transaction timeout, fixed in the wheel
KEEPALIVE_INTERVAL = 5
SLACK = 8  # scheduling, retry jitter and a loaded 2-core machine
SHORT_EXPIRY = 10


def all_have(
    ids: set[str], status: RegistrationStatus
) -> Callable[[list[EngineEvent]], bool]:
    """Return a predicate: these extensions' latest status is ``status``."""
    return lambda events: ids <= latest_with_status(events, status)


async def test_registrar_restart_over_tcp(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Kamailio stops and starts: statuses follow, all 10 register again by themselves."""
    engine = engine_factory(server(kamailio, Transport.TCP))
    await engine.start()
    numbers = range(10)
    await asyncio.gather(*(engine.add_extension(extension(n)) for n in numbers))
    ids = {f"id-{2000 + n}" for n in numbers}
    await recorder.wait_for(all_have(ids, RegistrationStatus.SUCCESSFUL))
    kamailio.stop()
    await recorder.wait_for(all_have(ids, RegistrationStatus.NO_REPLY_FROM_SERVER))
    kamailio.start()
    # Retries: retry_interval 1 s, doubling per failure (jitter 10 %).
    await recorder.wait_for(all_have(ids, RegistrationStatus.SUCCESSFUL), limit=60)
    # The registrar really has the contacts again: a call reaches each worker.
    for worker in engine.workers():
        callee = worker.account_ids[0].removeprefix("id-")
        ended = await one_call(engine, recorder, kamailio, callee)
        assert ended.answered
    assert all(worker.restarts == 0 for worker in engine.workers())


async def test_registrar_restart_over_udp_heals_at_refresh(
    kamailio: Kamailio, engine_factory: EngineFactory, recorder: EventRecorder
) -> None:
    """Over UDP a restart (losing the location table) is healed by the next refresh.

    Nothing tells a UDP client that the registrar forgot it: OPTIONS still get 200.
    The extension stays `successful` and is reachable again after its refresh, which
    comes at most ``expiry`` seconds later (5 s before expiry in pjsua).
    """
    engine = engine_factory(
        server(kamailio),
        expiry=SHORT_EXPIRY,
        keepalive=KeepaliveMethod.SIP_OPTIONS,
        keepalive_interval=KEEPALIVE_INTERVAL,
    )
    await engine.start()
    await engine.add_extension(extension(1))
    ids = {"id-2001"}
    await recorder.wait_for(all_have(ids, RegistrationStatus.SUCCESSFUL))
    kamailio.stop()
    kamailio.start()
    restarted = len(recorder.events)
    await recorder.wait_for(
        lambda events: any(
            getattr(event, "status", None) is RegistrationStatus.SUCCESSFUL
            for event in events[restarted:]
        ),
        limit=SHORT_EXPIRY + SLACK,
    )
    assert (await one_call(engine, recorder, kamailio, "2001")).answered


BOGUS_MAC = "02:00:5e:00:53:01"  # locally administered, on no interface


def drop_toward_registrar(pair: NamespacePair, *, drop: bool) -> None:
    """Drop every frame from namespace b to a silently (the link stays up).

    There is no netem, nft or iptables here, so b's neighbour entry for a is pointed
    at a MAC address that no interface has: a's side discards the frames unanswered.
    """
    if drop:
        pair.b.ip(
            "neigh", "replace", pair.address_a, "lladdr", BOGUS_MAC,
            "dev", "veth-b", "nud", "permanent",
        )  # fmt: skip
    else:
        pair.b.ip("neigh", "del", pair.address_a, "dev", "veth-b")


@pytest.fixture
def namespaced_python(
    worker_python: Path, netns_pair: NamespacePair, tmp_path: Path
) -> str:
    """Return an 'interpreter' that runs the worker inside namespace b of the pair."""
    wrapper = tmp_path / "python-in-netns"
    wrapper.write_text(
        f'#!/bin/sh\nexec ip netns exec {netns_pair.b.name} "{worker_python}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize(
    ("transport", "fault"),
    [
        (Transport.UDP, "link_down"),
        (Transport.UDP, "packets_dropped"),
        pytest.param(Transport.TCP, "packets_dropped", marks=pytest.mark.soak),
    ],
)
async def test_registrar_unreachable(
    netns_pair: NamespacePair,
    namespaced_python: str,
    kamailio_factory: KamailioFactory,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    transport: Transport,
    fault: str,
) -> None:
    """The link to the registrar fails: no reply within the bound, then recovery.

    Kamailio runs in namespace a (198.18.0.1), the workers in namespace b (198.18.0.2),
    Home Assistant's side (this test) in the root namespace, speaking over the pipes.
    """
    kamailio = kamailio_factory(host=netns_pair.address_a, netns=netns_pair.a)
    engine = engine_factory(
        ServerSettings(host=kamailio.host, port=kamailio.port, transport=transport),
        worker_python=namespaced_python,
        bind_host=netns_pair.address_b,
        keepalive=KeepaliveMethod.SIP_OPTIONS,
        keepalive_interval=KEEPALIVE_INTERVAL,
    )
    await engine.start()
    numbers = (1, 2)
    await asyncio.gather(*(engine.add_extension(extension(n)) for n in numbers))
    ids = {f"id-{2000 + n}" for n in numbers}
    await recorder.wait_for(all_have(ids, RegistrationStatus.SUCCESSFUL))

    started = time.monotonic()
    if fault == "link_down":
        netns_pair.set_link(up=False)
    else:
        drop_toward_registrar(netns_pair, drop=True)
    bound = KEEPALIVE_INTERVAL + TIMER_F + SLACK
    await recorder.wait_for(
        all_have(ids, RegistrationStatus.NO_REPLY_FROM_SERVER), limit=bound
    )
    lost_after = time.monotonic() - started
    states = [recorder.latest_state(account_id) for account_id in ids]
    assert all(state is not None and state.code in (408, 503) for state in states)

    started = time.monotonic()
    if fault == "link_down":
        netns_pair.set_link(up=True)
    else:
        drop_toward_registrar(netns_pair, drop=False)
    await recorder.wait_for(all_have(ids, RegistrationStatus.SUCCESSFUL), limit=90)
    back_after = time.monotonic() - started
    print(  # noqa: T201 - the figures docs/reliability.md records
        f"\n{transport} {fault}: no_reply_from_server after {lost_after:.1f} s "
        f"(codes {[s.code for s in states if s]}), successful again "
        f"{back_after:.1f} s after the link returned"
    )
