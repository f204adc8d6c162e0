"""Each real worker's hello states the limits of protocol/engines.py's table."""

import asyncio
from pathlib import Path
import sys

import pytest

from custom_components.sip_endpoint.engine.worker_client import WORKER_LAUNCHER
from custom_components.sip_endpoint.protocol import PROTOCOL_VERSION
from custom_components.sip_endpoint.protocol.engines import ENGINE_LIMITS, EngineName
from custom_components.sip_endpoint.protocol.payloads import EventName, Hello
from custom_components.sip_endpoint.protocol.wire import Event, decode

HELLO_WAIT = 60.0  # a bound for a stuck worker, not a timing assertion


async def _hello_of(python: str, engine: EngineName) -> Hello:
    """Launch a worker the way the engine does, read its hello, end it by EOF."""
    process = await asyncio.create_subprocess_exec(
        python,
        "-I",
        str(WORKER_LAUNCHER),
        "--engine",
        str(engine),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        async with asyncio.timeout(HELLO_WAIT):
            line = await process.stdout.readline()
        process.stdin.close()  # the end of stdin stops a worker that never started
        async with asyncio.timeout(HELLO_WAIT):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert line, stderr.decode(errors="replace")
    message = decode(line)
    assert isinstance(message, Event) and message.name == EventName.HELLO
    return Hello.from_wire(message.data)


@pytest.mark.parametrize("engine", list(EngineName))
async def test_hello_matches_the_table(engine: EngineName, worker_python: Path) -> None:
    """A worker of each engine says hello with its name and the table's limits."""
    python = str(worker_python) if engine is EngineName.PJSUA2 else sys.executable
    hello = await _hello_of(python, engine)
    assert hello.protocol == PROTOCOL_VERSION
    assert hello.engine == engine
    limits = ENGINE_LIMITS[engine]
    assert (hello.max_accounts, hello.max_calls) == (
        limits.max_accounts,
        limits.max_calls,
    )
    assert hello.engine_version
