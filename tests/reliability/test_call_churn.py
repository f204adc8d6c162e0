"""Calls back to back without a pause, faster than pjlib's media ioqueue recycles.

pjsua opens an RTP and an RTCP socket for every call in a 64-slot ioqueue that gives a
closed socket's slot back only 500 ms later; about 30 calls within that aborted the
pjsua2 worker (SIGABRT). The worker now holds answers a little under such churn
(`worker/pjsua2/call_table.py`, CHURN_LIMIT), so every call is answered and none fails.
bench/engine.py's caller, without its pause between calls, on both engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import bench.engine as bench
from custom_components.sip_endpoint.engine.models import (
    EngineChoice,
    EngineOptions,
    ServerSettings,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.sipbed.kamailio import Kamailio

CALLS: Final = 80


async def test_back_to_back_calls_without_a_pause(
    engine: str,
    engine_python: Path,
    kamailio: Kamailio,
    monkeypatch: pytest.MonkeyPatch,
    socket_enabled: None,
) -> None:
    """80 auto-answered calls, each BYE right after its ACK: all answered."""
    monkeypatch.setattr(bench, "CALL_PAUSE", 0.0)
    run = await bench.sequential_calls(
        ServerSettings(host=kamailio.host, port=kamailio.port),
        EngineOptions(
            engine=EngineChoice(engine),
            worker_python=str(engine_python),
            bind_host="127.0.0.1",
        ),
        CALLS,
        warmup=5,
    )
    assert run.failure is None
    assert len(run.times) == CALLS
