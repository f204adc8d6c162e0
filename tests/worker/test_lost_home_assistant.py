"""A worker whose Home Assistant side vanished stops cleanly instead of hanging."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.sip_endpoint.protocol.payloads import Method

if TYPE_CHECKING:
    from .client import WorkerClient


def test_closed_stdout_then_end_of_stdin_exits_zero(worker: WorkerClient) -> None:
    """Answers to a reader that is gone are dropped; the end of stdin still ends it."""
    stdout = worker.process.stdout
    assert stdout is not None
    stdout.close()
    for _ in range(3):
        worker.send(Method.STATUS)
    assert worker.process.poll() is None
    stdin = worker.process.stdin
    assert stdin is not None
    stdin.close()
    assert worker.process.wait(10) == 0
