"""The worker's pure helpers: SIP header parsing, backoff, redaction, URIs, timers."""

from __future__ import annotations

import random

import pytest

from custom_components.sip_endpoint.protocol.payloads import AccountParams, Transport
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.core.backoff import (
    MAX_DELAY,
    MAX_DELAY_REJECTED,
    retry_delay,
)
from custom_components.sip_endpoint.worker.core.redact import REDACTED, redact
from custom_components.sip_endpoint.worker.core.sipmsg import (
    answer_after,
    display_name,
    parse_message,
    reason_cause,
    source_host,
    uri_user,
)
from custom_components.sip_endpoint.worker.core.uris import (
    id_uri,
    proxy_uri,
    registrar_uri,
    target_uri,
)
from custom_components.sip_endpoint.worker.pjsua2.scheduler import Scheduler

INVITE = (
    "INVITE sip:2030@10.0.0.5:5062;transport=udp SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
    'f: "Front \\"Door\\"" <sip:9001@pbx>;tag=1\r\n'
    "Call-Info: <sip:pbx>;answer-after=5\r\n"
    "Alert-Info: <http://x>;info=alert-autoanswer;delay=3\r\n"
    "Subject: a folded\r\n"
    " header\r\n"
    "\r\n"
    "v=0\r\n"
)


def test_parse_message() -> None:
    """Start line, compact names, folded lines and the request-URI are read."""
    message = parse_message(INVITE)
    assert message.request_uri == "sip:2030@10.0.0.5:5062;transport=udp"
    assert uri_user(message.request_uri) == "2030"
    assert display_name(message.header("from") or "") == 'Front "Door"'
    assert message.header("subject") == "a folded header"
    assert message.header("v=0") is None
    assert parse_message("SIP/2.0 200 OK\r\n\r\n").request_uri is None
    assert parse_message("").start_line == ""


@pytest.mark.parametrize(
    ("call_info", "alert_info", "expected"),
    [
        ("<sip:pbx>;answer-after=5", "<x>;info=alert-autoanswer", 5),
        (None, "<http://x>;info=alert-autoanswer", 0),
        (None, "<http://x>;info=alert-autoanswer;delay=3", 3),
        ("<sip:pbx>;purpose=icon", "<http://x>;info=Ring1", None),
        (None, None, None),
    ],
)
def test_answer_after(
    call_info: str | None, alert_info: str | None, expected: int | None
) -> None:
    """Call-Info's answer-after wins; Alert-Info auto-answer means now or its delay."""
    assert answer_after(call_info, alert_info) == expected


def test_small_parsers() -> None:
    """Reason causes, display names, URI users and source hosts."""
    assert reason_cause('SIP;cause=200;text="Call completed elsewhere"') == 200
    assert reason_cause("Q.850;cause=16, SIP ;cause=487") == 487
    assert reason_cause("Q.850;cause=16") is None
    assert reason_cause(None) is None
    assert display_name("Bob <sip:b@x>") == "Bob"
    assert display_name("<sip:b@x>") == ""
    assert display_name("sip:b@x") == ""
    assert uri_user("<sip:9001@pbx>") == "9001"
    assert uri_user("sip:pbx") is None
    assert uri_user(None) is None
    assert source_host("127.0.0.1:5060") == "127.0.0.1"
    assert source_host("[::1]:5060") == "::1"
    assert source_host("::1") == "::1"


def test_retry_delay_backs_off() -> None:
    """Failures double the delay up to 15 min; refusals start at 2x, cap at 1 h."""
    rng = random.Random(1)
    no_reply = RegistrationStatus.NO_REPLY_FROM_SERVER
    rejected = RegistrationStatus.REJECTED_BY_SERVER
    first = retry_delay(no_reply, 1, 30, rng=rng)
    assert 27 <= first <= 33
    assert 54 <= retry_delay(no_reply, 2, 30, rng=rng) <= 66
    assert retry_delay(no_reply, 30, 30, rng=rng) <= MAX_DELAY * 1.1
    assert retry_delay(no_reply, 30, 30, rng=rng) >= MAX_DELAY * 0.9
    assert 54 <= retry_delay(rejected, 1, 30, rng=rng) <= 66
    assert retry_delay(RegistrationStatus.NOT_FOUND, 40, 30, rng=rng) >= (
        MAX_DELAY_REJECTED * 0.9
    )
    delays = {round(retry_delay(no_reply, 1, 30), 3) for _ in range(20)}
    assert len(delays) > 1  # jitter


def test_redact() -> None:
    """Authorization values, password-like fields and known secrets are removed."""
    text = (
        "REGISTER sip:pbx SIP/2.0\n"
        'Authorization: Digest username="2000", response="abc"\n'
        'proxy-authorization: Digest nonce="n"\n'
        "password=hunter2 and passwd: other\n"
        "the secret s3cr3t-value appears inline\n"
    )
    clean = redact(text, {"s3cr3t-value", ""})
    assert f"Authorization: {REDACTED}" in clean
    assert f"proxy-authorization: {REDACTED}" in clean
    for secret in ('response="abc"', "hunter2", "other", "s3cr3t-value", 'nonce="n"'):
        assert secret not in clean
    assert "REGISTER sip:pbx SIP/2.0" in clean


def _params(**overrides: object) -> AccountParams:
    values: dict[str, object] = {
        "account_id": "e",
        "extension": "2000",
        "auth_id": "a",
        "password": "p",
        "domain": "pbx.example",
    }
    values.update(overrides)
    return AccountParams(**values)  # type: ignore[arg-type]


def test_uris() -> None:
    """Address of record, registrar, loose-routed proxy and call targets."""
    assert id_uri(_params()) == "sip:2000@pbx.example"
    assert registrar_uri(_params()) == "sip:pbx.example"
    assert (
        registrar_uri(_params(port=5070, transport=Transport.TCP))
        == "sip:pbx.example:5070;transport=tcp"
    )
    assert registrar_uri(_params(domain="::1", port=5060)) == "sip:[::1]:5060"
    assert proxy_uri(_params()) is None
    assert proxy_uri(_params(outbound_proxy="proxy:5060")) == "sip:proxy:5060;lr"
    assert (
        proxy_uri(_params(outbound_proxy="sip:p;lr", transport=Transport.UDP))
        == "sip:p;lr;transport=udp"
    )
    assert target_uri("100", _params(port=5070)) == "sip:100@pbx.example:5070"
    assert target_uri("sip:x@y", _params()) == "sip:x@y"
    assert target_uri("x@y", _params()) == "sip:x@y"


def test_scheduler() -> None:
    """Due callbacks run in order; cancelled ones never."""
    scheduler = Scheduler()
    ran: list[str] = []
    scheduler.call_later(0, lambda: ran.append("a"))
    scheduler.call_later(-1, lambda: ran.append("first"))
    scheduler.call_later(0, lambda: ran.append("cancelled")).cancel()
    scheduler.call_later(60, lambda: ran.append("later"))
    for callback in scheduler.due():
        callback()
    assert ran == ["first", "a"]
    scheduler.clear()
    assert scheduler.due() == []
