"""The callback guards: exceptions stay out of pjsua2, threads are checked."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from custom_components.sip_endpoint.worker.pjsua2 import guard

if TYPE_CHECKING:
    import pytest


def test_guarded_logs_and_swallows_exceptions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception raised in a callback is logged, never raised into pjsua2."""
    calls: list[int] = []

    @guard.guarded
    def on_event(value: int) -> None:
        calls.append(value)
        raise RuntimeError("broken callback")

    on_event(7)
    assert calls == [7]
    assert "Error in SIP callback" in caplog.text
    assert "broken callback" in caplog.text


def test_sip_callback_warns_once_per_callback_off_the_polling_thread(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the polling thread nothing is said; elsewhere one warning per callback."""
    monkeypatch.setattr(guard._PollingThread, "reported", set())
    monkeypatch.setattr(guard._PollingThread, "ident", None)
    guard.mark_polling_thread()
    seen: list[str] = []

    @guard.sip_callback
    def onRegState(prm: str) -> None:
        seen.append(prm)

    caplog.set_level(logging.WARNING)
    onRegState("polling")
    assert not caplog.records

    def elsewhere() -> None:
        onRegState("media")
        onRegState("media again")

    thread = threading.Thread(target=elsewhere, name="media")
    thread.start()
    thread.join()
    assert seen == ["polling", "media", "media again"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "onRegState ran off the polling thread, on media" in warnings[0]


def test_sip_callback_before_the_polling_thread_is_known(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before `mark_polling_thread` no thread is wrong, and exceptions are still kept in."""
    monkeypatch.setattr(guard._PollingThread, "reported", set())
    monkeypatch.setattr(guard._PollingThread, "ident", None)

    @guard.sip_callback
    def onIncomingCall(prm: str) -> None:
        raise ValueError(prm)

    thread = threading.Thread(target=onIncomingCall, args=("bad INVITE",))
    thread.start()
    thread.join()
    assert "ran off the polling thread" not in caplog.text
    assert "bad INVITE" in caplog.text


class _PjError(Exception):
    """Looks like `pjsua2.Error`: the description comes from `info()`."""

    def __init__(self, text: str | None) -> None:
        super().__init__()
        self.text = text

    def info(self) -> str:
        if self.text is None:
            raise RuntimeError("no info")
        return self.text


def test_describe_error() -> None:
    """pjsua2 errors are described by `info()`, others by their message or type."""
    assert guard.describe_error(_PjError("pjsua_acc_add() failed")) == (
        "pjsua_acc_add() failed"
    )
    assert guard.describe_error(_PjError(None)) == "_PjError"
    assert guard.describe_error(ValueError("bad port")) == "bad port"
    assert guard.describe_error(ValueError()) == "ValueError"
