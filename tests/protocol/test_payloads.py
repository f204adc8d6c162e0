"""Typed payloads: their JSON form and the field-by-field checks of from_wire."""

from dataclasses import fields
from typing import Any

import pytest

from custom_components.sip_endpoint.protocol import payloads
from custom_components.sip_endpoint.protocol.payloads import (
    AccountParams,
    CallDirection,
    CallEnded,
    EndCause,
    Hello,
    KeepaliveMethod,
    MakeCallParams,
    Payload,
    RegistrationExchange,
    RegistrationState,
    StartParams,
    StartResult,
    Transport,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.protocol.wire import ProtocolError

ALL_PAYLOADS = sorted(
    (
        value
        for value in vars(payloads).values()
        if isinstance(value, type)
        and issubclass(value, Payload)
        and value is not Payload
    ),
    key=lambda cls: cls.__name__,
)

SAMPLES: list[Payload] = [
    Hello(
        protocol=2,
        engine="builtin",
        engine_version="0.9.0",
        python="3.13.1",
        pid=42,
        max_accounts=100,
        max_calls=32,
    ),
    StartParams(
        bind_host="127.0.0.1", port_min=5062, port_max=5199, allowed_sources=["::1"]
    ),
    StartParams(
        bind_host="127.0.0.1",
        port_min=5062,
        port_max=5199,
        tls_verify=False,
        tls_ca_file="/config/pbx-ca.pem",
    ),
    StartResult(sip_port=5062),
    AccountParams(
        account_id="a",
        extension="2000",
        auth_id="2000",
        password="s3cret",
        domain="pbx.example",
        port=5060,
        transport=Transport.TCP,
        keepalive=KeepaliveMethod.SIP_OPTIONS,
    ),
    RegistrationState(
        account_id="a",
        status=RegistrationStatus.SUCCESSFUL,
        code=200,
        reason="OK",
        changed_at=1.5,
        last_success=None,
        expires=300,
        registrar="sip:pbx.example",
    ),
    CallEnded(
        call_id="c",
        account_id="a",
        direction=CallDirection.INBOUND,
        cause=EndCause.ANSWERED_ELSEWHERE,
        code=200,
        reason="Call completed elsewhere",
        answered=False,
        duration=0.0,
    ),
    MakeCallParams(account_id="a", target="9001"),
    WorkerStatus(
        accounts=1,
        calls=0,
        rss_kib=30_000,
        exchanges=[
            RegistrationExchange("a", 1.0, 401, "Unauthorized", from_server=True)
        ],
    ),
]


def test_every_payload_has_a_sample_shape() -> None:
    """The payload module exposes the classes the protocol documents."""
    names = {cls.__name__ for cls in ALL_PAYLOADS}
    assert {
        "Hello",
        "StartParams",
        "AccountParams",
        "RegistrationState",
        "WorkerStatus",
    } <= names
    assert len(names) >= 24


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_round_trip(sample: Payload) -> None:
    """to_wire then from_wire gives the payload back, enums included."""
    wire = sample.to_wire()
    assert type(sample).from_wire(wire) == sample
    for key, value in wire.items():
        assert not hasattr(value, "__dataclass_fields__"), key


def test_defaults_fill_missing_optional_fields() -> None:
    """Fields with defaults may be left out."""
    params = StartParams.from_wire(
        {"bind_host": "0.0.0.0", "port_min": 1, "port_max": 2}
    )
    assert params.restrict_sources is True
    assert params.allowed_sources == []
    assert params.max_calls is None  # the engine's own limit (hello)
    assert (params.tls_verify, params.tls_ca_file) == (True, None)
    assert StartResult.from_wire({"sip_port": 5}).tls_port is None


def test_password_never_in_repr() -> None:
    """Secrets stay out of reprs (and so out of logs and exceptions)."""
    account = SAMPLES[4]
    assert isinstance(account, AccountParams)
    assert "s3cret" not in repr(account)
    assert account.to_wire()["password"] == "s3cret"


def _hello(**changes: Any) -> dict[str, Any]:
    return {
        "protocol": 2,
        "engine": "builtin",
        "engine_version": "x",
        "python": "3.12",
        "pid": 1,
        "max_accounts": 100,
        "max_calls": 32,
        **changes,
    }


@pytest.mark.parametrize(
    ("cls", "data", "why"),
    [
        (Hello, {"protocol": 1, "pjsua2": "x", "python": "y"}, "missing field engine"),
        (Hello, _hello(max_accounts="8"), "max_accounts must be int"),
        (Hello, _hello(max_calls=None), "max_calls must be int"),
        (Hello, _hello(engine=2), "engine must be str"),
        (Hello, _hello(pid="1"), "pid must be int"),
        (Hello, _hello(pid=True), "pid must be int"),
        (Hello, _hello(pid=1.0), "pid must be int"),
        (Hello, _hello(python=3), "python must be str"),
        (Hello, _hello(protocol=None), "protocol must be int"),
        (
            StartParams,
            {"bind_host": "h", "port_min": 1, "port_max": 2, "restrict_sources": 1},
            "restrict_sources must be bool",
        ),
        (
            StartParams,
            {"bind_host": "h", "port_min": 1, "port_max": 2, "allowed_sources": "::1"},
            "allowed_sources must be a list",
        ),
        (
            StartParams,
            {"bind_host": "h", "port_min": 1, "port_max": 2, "allowed_sources": [1]},
            "allowed_sources must be str",
        ),
        (StartResult, {"sip_port": 1, "tls_port": "2"}, "tls_port must be int"),
        (
            RegistrationState,
            {
                "account_id": "a",
                "status": "great",
                "code": 200,
                "reason": "",
                "changed_at": 1,
                "last_success": None,
                "expires": 1,
                "registrar": "",
            },
            "status has an unknown value",
        ),
        (
            RegistrationState,
            {
                "account_id": "a",
                "status": "successful",
                "code": 200,
                "reason": "",
                "changed_at": "now",
                "last_success": None,
                "expires": 1,
                "registrar": "",
            },
            "changed_at must be a number",
        ),
        (
            RegistrationState,
            {
                "account_id": "a",
                "status": "successful",
                "code": 200,
                "reason": "",
                "changed_at": False,
                "last_success": None,
                "expires": 1,
                "registrar": "",
            },
            "changed_at must be a number",
        ),
        (
            WorkerStatus,
            {"accounts": 1, "calls": 0, "rss_kib": 1, "exchanges": [5]},
            "exchanges must be an object",
        ),
        (
            WorkerStatus,
            {"accounts": 1, "calls": 0, "rss_kib": 1, "exchanges": [{}]},
            "missing field account_id",
        ),
        (
            MakeCallParams,
            {"account_id": "a", "target": "9001", "play": ["x"]},
            "play must be str",
        ),
    ],
)
def test_refused(cls: type[Payload], data: dict[str, Any], why: str) -> None:
    """Missing, mistyped and unknown values raise ProtocolError naming the field."""
    with pytest.raises(ProtocolError, match=why):
        cls.from_wire(data)


def test_numbers_accept_integers() -> None:
    """A float field accepts a JSON integer and stores a float."""
    state = RegistrationState.from_wire(
        {
            "account_id": "a",
            "status": "registering",
            "code": None,
            "reason": "",
            "changed_at": 5,
            "last_success": 6,
            "expires": 0,
            "registrar": "",
        }
    )
    assert state.changed_at == 5.0 and isinstance(state.changed_at, float)
    assert isinstance(state.last_success, float)
    assert state.code is None


def test_unknown_keys_are_ignored() -> None:
    """A newer peer may add keys; they are ignored."""
    assert StartResult.from_wire({"sip_port": 1, "future": True}) == StartResult(
        sip_port=1
    )


def test_field_names_are_json_keys() -> None:
    """The JSON keys are exactly the dataclass field names."""
    for sample in SAMPLES:
        assert set(sample.to_wire()) == {spec.name for spec in fields(sample)}  # type: ignore[arg-type]
