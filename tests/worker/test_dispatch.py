"""The request handling both engines share (worker/core/dispatch.py, __main__)."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol import wire
from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    HangupParams,
    MakeCallParams,
    Method,
    StartParams,
)
from custom_components.sip_endpoint.protocol.wire import ErrorCode
from custom_components.sip_endpoint.worker.__main__ import engine_from_argv
from custom_components.sip_endpoint.worker.core import dispatch
from custom_components.sip_endpoint.worker.core.channel import ProtocolWriter

from .client import LAUNCH

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class _Sink(io.BytesIO):
    """A stream that keeps what the writer wrote."""


def _answers(run: Callable[[ProtocolWriter], None]) -> list[wire.Message]:
    """Run ``run(writer)`` and return the messages it wrote."""
    sink = _Sink()
    writer = ProtocolWriter(sink)
    writer.start()
    run(writer)
    writer.close()
    return [wire.decode(line) for line in sink.getvalue().splitlines()]


def test_parse_request_types_params_and_refuses_before_start() -> None:
    """Params become payloads; stack requests wait for `start`; unknown names fail."""
    method, params = dispatch.parse_request(
        "hangup", {"call_id": "c1", "code": 486}, started=True
    )
    assert method is Method.HANGUP
    assert params == HangupParams(call_id="c1", code=486)
    assert dispatch.parse_request("status", {}, started=False) == (Method.STATUS, None)
    with pytest.raises(dispatch.RequestError) as refused:
        dispatch.parse_request("ring", {"call_id": "c1"}, started=False)
    assert refused.value.code == ErrorCode.BAD_REQUEST
    with pytest.raises(dispatch.RequestError) as unknown:
        dispatch.parse_request("x" * 100, {}, started=True)
    assert unknown.value.code == ErrorCode.UNKNOWN_METHOD
    assert len(unknown.value.message) < 80
    with pytest.raises(wire.ProtocolError):
        dispatch.parse_request("hangup", {"call_id": 5}, started=True)
    assert set(dispatch.PARAMS_TYPES) == set(Method)


def test_value_checks(tmp_path: Path) -> None:
    """Each check refuses what the protocol rules out, with the shared codes."""
    start = StartParams(bind_host="127.0.0.1", port_min=5000, port_max=4000)
    checks: list[Callable[[], None]] = [
        lambda: dispatch.check_start(start, started=False),
        lambda: dispatch.check_hangup(HangupParams(call_id="c", code=200)),
        lambda: dispatch.check_make_call(
            MakeCallParams(account_id="e", target="1", timeout=0)
        ),
        lambda: dispatch.check_file(str(tmp_path / "missing.wav")),
        lambda: dispatch.check_record_folder(str(tmp_path / "no" / "rec.wav")),
    ]
    for check in checks:
        with pytest.raises(dispatch.RequestError) as bad:
            check()
        assert bad.value.code == ErrorCode.BAD_REQUEST
    account = AccountParams(
        account_id="e1", extension="1", auth_id="1", password="pw", domain="d"
    )
    with pytest.raises(dispatch.RequestError) as full:
        dispatch.check_new_account(account, {"a": 1, "b": 2}, 2)
    assert full.value.code == ErrorCode.LIMIT_REACHED
    with pytest.raises(dispatch.RequestError) as duplicate:
        dispatch.check_new_account(account, {"e1": 1}, 8)
    assert duplicate.value.code == ErrorCode.BAD_REQUEST
    with pytest.raises(dispatch.RequestError) as busy:
        dispatch.check_call_room(4, 4)
    assert busy.value.code == ErrorCode.LIMIT_REACHED
    dispatch.check_call_room(3, 4)
    dispatch.check_record_folder(str(tmp_path / "rec.wav"))


def test_read_request_answers_what_is_not_a_request() -> None:
    """Garbage gets id 0, a response gets its own id, a request passes through."""
    request_line = b'{"type":"request","id":3,"method":"status","params":{}}'
    passed: list[wire.Request | None] = []

    def run(writer: ProtocolWriter) -> None:
        passed.append(dispatch.read_request(request_line, writer))
        passed.append(dispatch.read_request(b"not json", writer))
        passed.append(
            dispatch.read_request(b'{"type":"response","id":9,"result":{}}', writer)
        )
        passed.append(dispatch.read_request(b'{"id": 12, "type": 1}', writer))

    answers = _answers(run)
    assert isinstance(passed[0], wire.Request)
    assert passed[0].id == 3
    assert passed[1:] == [None, None, None]
    assert [
        (a.id, a.error.code)
        for a in answers
        if isinstance(a, wire.Response) and a.error
    ] == [
        (0, ErrorCode.BAD_REQUEST),
        (9, ErrorCode.BAD_REQUEST),
        (12, ErrorCode.BAD_REQUEST),
    ]


def test_answer_error_maps_exceptions_to_codes() -> None:
    """Refusals keep their code, engine errors are sip_error, bugs internal; scrubbed."""
    request = wire.Request(id=4, method="hangup", params={})

    def scrub(text: str) -> str:
        return text.replace("s3cret", "<redacted>")

    def engine_error(err: Exception) -> str | None:
        return f"engine: {err}" if isinstance(err, OSError) else None

    def run(writer: ProtocolWriter) -> None:
        for err in (
            dispatch.RequestError(ErrorCode.UNKNOWN_CALL, "no s3cret call"),
            wire.ProtocolError("bad params"),
            OSError("s3cret socket"),
            RuntimeError("s3cret bug"),
        ):
            dispatch.answer_error(writer, request, err, scrub, engine_error)

    answers = [a for a in _answers(run) if isinstance(a, wire.Response)]
    assert [(a.id, a.error.code, a.error.message) for a in answers if a.error] == [
        (4, ErrorCode.UNKNOWN_CALL, "no <redacted> call"),
        (4, ErrorCode.BAD_REQUEST, "bad params"),
        (4, ErrorCode.SIP_ERROR, "engine: <redacted> socket"),
        (4, ErrorCode.INTERNAL, "<redacted> bug"),
    ]


def test_readable_id_and_rss() -> None:
    """Only a plain non-negative integer id is read back; RSS comes from /proc."""
    assert dispatch.readable_id(b'{"id": 7, "method": 1}') == 7
    assert dispatch.readable_id(b'{"id": -1}') == 0
    assert dispatch.readable_id(b'{"id": true}') == 0
    assert dispatch.readable_id(b"[1, 2]") == 0
    assert dispatch.readable_id(b"[" * 100_000) == 0
    assert dispatch.readable_id(b"x" * (wire.MAX_LINE_BYTES + 1)) == 0
    assert dispatch.rss_kib() > 0


def test_engine_from_argv() -> None:
    """`--engine NAME` and `--engine=NAME` pick the engine; pjsua2 is the default."""
    assert engine_from_argv([]) == "pjsua2"
    assert engine_from_argv(["--engine", "builtin"]) == "builtin"
    assert engine_from_argv(["--engine=pjsua2"]) == "pjsua2"
    with pytest.raises(SystemExit) as unknown:
        engine_from_argv(["--engine", "asterisk"])
    assert "asterisk" in str(unknown.value.code)


def test_unknown_engine_exits_before_any_protocol_line() -> None:
    """A worker launched with an unknown engine says why on stderr and exits 1."""
    done = subprocess.run(
        [sys.executable, "-I", str(LAUNCH), "--engine", "asterisk"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert b"unknown engine 'asterisk'" in done.stderr
