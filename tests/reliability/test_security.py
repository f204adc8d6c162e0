"""Security: credentials at a chatty worker, and how often rejected credentials retry."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import Method, StartResult
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.engine.conftest import latest_with_status
from tests.worker.client import account_params, start_params

from .conftest import extension, server

if TYPE_CHECKING:
    from pathlib import Path

    from tests.engine.conftest import EventRecorder
    from tests.sipbed.kamailio import Kamailio, KamailioFactory
    from tests.worker.conftest import WorkerFactory

    from .conftest import EngineFactory

MARKER = "MARKER-pw-5e1d0b"
WRONG_PASSWORD_LINE = "rejected: wrong password"
BACKOFF_ATTEMPTS = 4


def test_worker_debug_log_has_no_password(
    worker_factory: WorkerFactory,
    sip_ports: tuple[int, int],
    kamailio: Kamailio,
    tmp_path: Path,
) -> None:
    """At pjlib's most verbose level with SIP messages logged, the marker never shows."""
    worker = worker_factory()
    result = StartResult.from_wire(
        worker.request(
            Method.START,
            start_params(port_min=sip_ports[0], port_max=sip_ports[1], log_level=6),
        )
    )
    worker.sip_port = result.sip_port
    worker.request(
        Method.ADD_ACCOUNT,
        account_params("2060", kamailio.host, kamailio.port, password=MARKER),
    )
    worker.request(
        Method.ADD_ACCOUNT,
        account_params("2061", kamailio.host, kamailio.port, auth_id="2061"),
    )
    worker.wait_registration("ext-2060", RegistrationStatus.REJECTED_BY_SERVER)
    worker.wait_registration("ext-2061", RegistrationStatus.SUCCESSFUL)
    # Replace the credentials with the marker again, then remove the account.
    worker.request(Method.REMOVE_ACCOUNT, {"account_id": "ext-2060"})
    worker.request(
        Method.ADD_ACCOUNT,
        account_params("2060", kamailio.host, kamailio.port, password=MARKER),
    )
    worker.wait_registration("ext-2060", RegistrationStatus.REJECTED_BY_SERVER)
    status = worker.request(Method.STATUS)
    worker.drain(0.5)
    assert worker.shutdown() == 0
    output = json.dumps([event.data for event in worker.events]) + json.dumps(status)
    stderr = worker.stderr_path.read_text(errors="replace")
    logged = [event for event in worker.events if event.name == "log"]
    assert len(logged) > 20, "log_level 6 should log a lot"
    assert "REGISTER" in output + stderr
    assert MARKER not in output
    assert MARKER not in stderr


async def test_rejected_credentials_back_off(
    kamailio_factory: KamailioFactory,
    engine_factory: EngineFactory,
    recorder: EventRecorder,
) -> None:
    """Wrong credentials are retried ever more rarely: the gaps at the server double.

    With retry_interval 1 s the schedule is 2, 4, 8, 16 s ... (cap 1 h); with the
    default 30 s it is 60 s, 2, 4, 8, 16, 32 min, then hourly.
    """
    kamailio = kamailio_factory(wrong_password="forbidden")
    engine = engine_factory(server(kamailio))
    await engine.start()
    await engine.add_extension(extension(70, password=MARKER))
    seen_at: list[float] = []
    seen_lines = 0
    async with asyncio.timeout(60):
        while len(seen_at) < BACKOFF_ATTEMPTS:
            lines = kamailio.log_path.read_text(errors="replace").count(
                WRONG_PASSWORD_LINE
            )
            seen_at.extend([time.monotonic()] * (lines - seen_lines))
            seen_lines = lines
            await asyncio.sleep(0.05)
    gaps = [later - earlier for earlier, later in itertools.pairwise(seen_at)]
    print(f"\nrejected REGISTERs {len(seen_at)}, gaps {[round(g, 1) for g in gaps]} s")  # noqa: T201
    assert "id-2070" in latest_with_status(
        recorder.events, RegistrationStatus.REJECTED_BY_SERVER
    )
    # Each gap about doubles the one before (10 % jitter, 0.05 s polling).
    assert gaps[0] >= 1.5
    assert all(later >= 1.6 * earlier for earlier, later in itertools.pairwise(gaps))
    assert MARKER not in kamailio.log_path.read_text(errors="replace")
