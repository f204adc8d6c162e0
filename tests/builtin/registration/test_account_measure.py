"""Measure how fast a built-in worker notices a dead registrar and recovers (soak).

Not part of CI (``-m soak``): each run waits out real keep-alive intervals. It prints
the times it measured; docs/reliability.md records them. The assertions are about
what happens (states, a call reaching the extension), never about how fast.

    .venv/bin/python -m pytest tests/builtin/registration/test_account_measure.py \
        -m soak -s -p no:sugar -n 0
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EventName,
    KeepaliveMethod,
    Method,
    Transport,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.worker.client import account_params

if TYPE_CHECKING:
    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio
    from tests.worker.client import WorkerClient

    from .conftest import BuiltinWorker

pytestmark = pytest.mark.soak
Status = RegistrationStatus
RUNS = 3


def call_reaches(
    worker: WorkerClient,
    baresip_factory: BaresipFactory,
    kamailio: Kamailio,
    caller: int,
    extension: str,
) -> None:
    """Dial ``extension`` from test-bed user 900<caller> through ``kamailio``.

    The worker gets the call and refuses it (486); the caller then stops.
    """
    phone = baresip_factory(
        user=f"900{caller}", password=f"pw-900{caller}", registrar=kamailio
    )
    phone.wait_registered()
    phone.dial(extension)
    incoming = worker.wait_event(EventName.INCOMING_CALL, timeout=30)
    worker.request(Method.HANGUP, {"call_id": incoming.data["call_id"], "code": 486})
    phone.wait_closed()
    phone.stop()


@pytest.mark.parametrize(
    ("transport", "keepalive", "interval"),
    [
        (Transport.UDP, KeepaliveMethod.DOUBLE_CRLF, 30),  # the defaults
        (Transport.UDP, KeepaliveMethod.SIP_OPTIONS, 10),
        (Transport.TCP, KeepaliveMethod.DOUBLE_CRLF, 30),
    ],
)
def test_measure_detection_and_recovery(
    builtin_worker: BuiltinWorker,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    transport: Transport,
    keepalive: KeepaliveMethod,
    interval: int,
) -> None:
    """Stop Kamailio at a random moment, start it again; time both ends."""
    worker = builtin_worker(allowed_sources=["127.0.0.1"])
    worker.request(
        Method.ADD_ACCOUNT,
        account_params(
            "2090",
            kamailio.host,
            kamailio.port,
            transport=transport,
            keepalive=keepalive,
            keepalive_interval=interval,
        ),
    )
    worker.wait_registration("ext-2090", Status.SUCCESSFUL)
    detections: list[float] = []
    recoveries: list[float] = []
    for run in range(RUNS):
        time.sleep(random.uniform(0, interval))
        stopped = time.monotonic()
        kamailio.stop()
        worker.wait_registration("ext-2090", Status.NO_REPLY_FROM_SERVER, timeout=120)
        detections.append(time.monotonic() - stopped)
        time.sleep(random.uniform(0, interval))  # come back at a random moment
        started = time.monotonic()
        kamailio.start()
        worker.wait_registration("ext-2090", Status.SUCCESSFUL, timeout=120)
        recoveries.append(time.monotonic() - started)
        # A call placed through the restarted Kamailio reaches the extension.
        call_reaches(worker, baresip_factory, kamailio, run + 1, "2090")
    print(  # noqa: T201 - the measurement is the output
        f"\n{transport} {keepalive} every {interval} s: "
        f"detected after {', '.join(f'{t:.1f}' for t in detections)} s; "
        f"registered again after {', '.join(f'{t:.1f}' for t in recoveries)} s"
    )
    assert len(detections) == len(recoveries) == RUNS


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_measure_quick_restart(
    builtin_worker: BuiltinWorker,
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    transport: Transport,
) -> None:
    """Restart Kamailio at once (it forgets contacts); time until registered again."""
    worker = builtin_worker(allowed_sources=["127.0.0.1"])
    worker.request(
        Method.ADD_ACCOUNT,
        account_params("2091", kamailio.host, kamailio.port, transport=transport),
    )
    worker.wait_registration("ext-2091", Status.SUCCESSFUL)
    recoveries: list[float] = []
    for run in range(RUNS):
        time.sleep(random.uniform(0, 30))
        worker.events.clear()
        restarted = time.monotonic()
        kamailio.restart()
        worker.wait_registration("ext-2091", Status.SUCCESSFUL, timeout=120)
        recoveries.append(time.monotonic() - restarted)
        call_reaches(worker, baresip_factory, kamailio, run + 4, "2091")
    print(  # noqa: T201 - the measurement is the output
        f"\n{transport} defaults, Kamailio restarted at once: registered again after "
        f"{', '.join(f'{t:.1f}' for t in recoveries)} s"
    )
    assert len(recoveries) == RUNS
