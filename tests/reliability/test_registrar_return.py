"""A registrar that stops and comes back (forgetting its contacts), on both engines.

Kamailio keeps its location table in memory: stopped and started again on the same
port, it has forgotten every contact. Each engine probes the registrar with OPTIONS
every keep-alive interval (beside double-CRLF, or as the OPTIONS keep-alive), with a
short timeout, so the loss shows as `no_reply_from_server`; once the registrar
answers again, the extension registers again at once (not at its refresh, nor at the
retry backoff: both are set far out here), and a call through Kamailio reaches it.

The times are printed (run with ``-s``) and recorded in docs/reliability.md; the
waits are generous bounds, not timed asserts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import pytest

from custom_components.sip_endpoint.engine.models import (
    DEFAULT_RETRY_INTERVAL,
    EngineChoice,
    ServerSettings,
)
from custom_components.sip_endpoint.protocol.payloads import (
    KeepaliveMethod,
    RegistrationState,
    Transport,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.tls import CertificateSet, make_certificates

from .calls import one_call
from .conftest import extension

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from custom_components.sip_endpoint.engine.models import EngineEvent
    from tests.engine.conftest import EventRecorder
    from tests.sipbed.kamailio import Kamailio, KamailioFactory

    from .conftest import EngineFactory

Status = RegistrationStatus
EXT: Final = 70  # extension 2070
EXT_ID: Final = "id-2070"
# Generous bounds (the targets are 40 s, 15 s and 35 s; see the module doc).
DETECTION_LIMIT: Final = 90.0
RETURN_LIMIT: Final = 90.0
FAR: Final = 3600  # expiry and retry interval: neither may be what brings it back


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """Return the test bed's CA and server certificates (made once per module)."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def _status_after(
    start: int, status: RegistrationStatus
) -> Callable[[list[EngineEvent]], bool]:
    def seen(events: list[EngineEvent]) -> bool:
        return any(
            isinstance(event, RegistrationState)
            and event.account_id == EXT_ID
            and event.status is status
            for event in events[start:]
        )

    return seen


def _last_state(recorder: EventRecorder) -> RegistrationState:
    return next(
        event
        for event in reversed(recorder.events)
        if isinstance(event, RegistrationState) and event.account_id == EXT_ID
    )


async def _lose_and_regain(
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    settings: ServerSettings,
    **options: object,
) -> tuple[float, float]:
    """Run the scenario; return (seconds to `no_reply`, seconds to a call after)."""
    sip = engine_factory(settings, **options)
    await sip.start()
    await sip.add_extension(extension(EXT))
    await recorder.wait_for(_status_after(0, Status.SUCCESSFUL))
    mark = len(recorder.events)
    kamailio.stop()
    stopped = time.monotonic()
    await recorder.wait_for(
        _status_after(mark, Status.NO_REPLY_FROM_SERVER), limit=DETECTION_LIMIT
    )
    detected = time.monotonic() - stopped
    lost = _last_state(recorder)
    assert lost.code in (408, 503)
    mark = len(recorder.events)
    kamailio.start()
    returned = time.monotonic()
    await recorder.wait_for(_status_after(mark, Status.SUCCESSFUL), limit=RETURN_LIMIT)
    ended = await one_call(sip, recorder, kamailio, "2070")
    assert ended.answered
    reached = time.monotonic() - returned
    # Back by the probe: the REGISTER after the return was announced (`registering`).
    statuses = [
        event.status
        for event in recorder.events[mark:]
        if isinstance(event, RegistrationState) and event.account_id == EXT_ID
    ]
    assert statuses[:2] == [Status.REGISTERING, Status.SUCCESSFUL]
    assert all(worker.restarts == 0 for worker in sip.workers())
    return detected, reached


def _engine_options(engine: str, worker_python: Path) -> dict[str, object]:
    return {"engine": EngineChoice(engine), "worker_python": str(worker_python)}


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP, Transport.TLS])
async def test_registrar_return_with_options_every_10_s(
    engine: str,
    engine_python: Path,
    kamailio_factory: KamailioFactory,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
    certificates: CertificateSet,
    transport: Transport,
) -> None:
    """OPTIONS keep-alive every 10 s: lost, then registered again and called."""
    kamailio = kamailio_factory(tls_certificate=certificates.server("valid"))
    port = kamailio.tls_port if transport is Transport.TLS else kamailio.port
    detected, reached = await _lose_and_regain(
        kamailio,
        engine_factory,
        recorder,
        ServerSettings(host=kamailio.host, port=port, transport=transport),
        keepalive=KeepaliveMethod.SIP_OPTIONS,
        keepalive_interval=10,
        expiry=FAR,
        retry_interval=FAR,
        tls_ca_file=str(certificates.ca_path),
        **_engine_options(engine, engine_python),
    )
    print(  # noqa: T201 - the figures for docs/reliability.md
        f"\n{engine} {transport}, OPTIONS every 10 s: no_reply after {detected:.1f} s,"
        f" a call reached the extension {reached:.1f} s after the return"
    )


async def test_registrar_return_with_default_options(
    engine: str,
    engine_python: Path,
    kamailio: Kamailio,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
) -> None:
    """Default keep-alive (double CRLF every 30 s), UDP: lost, back, called."""
    detected, reached = await _lose_and_regain(
        kamailio,
        engine_factory,
        recorder,
        ServerSettings(host=kamailio.host, port=kamailio.port, transport=Transport.UDP),
        retry_interval=DEFAULT_RETRY_INTERVAL,  # the test factory's is 1 s
        **_engine_options(engine, engine_python),
    )
    print(  # noqa: T201 - the figures for docs/reliability.md
        f"\n{engine} udp, default options: no_reply after {detected:.1f} s,"
        f" a call reached the extension {reached:.1f} s after the return"
    )
