"""Request parameters built from the engine's settings."""

import asyncio
import socket
from typing import Any

import pytest

from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.params import (
    account_params,
    bind_host_toward,
    registrar_uri,
    resolve_allowed_sources,
    source_hosts,
    start_params,
    uri_host,
)
from custom_components.sip_endpoint.protocol.payloads import KeepaliveMethod, Transport


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("pbx.example", "pbx.example"),
        ("pbx.example:5060", "pbx.example"),
        ("sip:pbx.example", "pbx.example"),
        ("SIPS:pbx.example:5061;transport=tls", "pbx.example"),
        ("<sip:proxy.example;lr>", "proxy.example"),
        ("sip:user@proxy.example:5070?x=y", "proxy.example"),
        ("sip:[2001:db8::1]:5060;lr", "2001:db8::1"),
        ("[::1]", "::1"),
        ("2001:db8::2", "2001:db8::2"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_uri_host(uri: str, host: str) -> None:
    """The host is found in URIs and plain host[:port] forms."""
    assert uri_host(uri) == host


def test_source_hosts() -> None:
    """Registrar and outbound proxy, without duplicates."""
    assert source_hosts(ServerSettings("10.0.0.1")) == ["10.0.0.1"]
    assert source_hosts(
        ServerSettings("10.0.0.1", outbound_proxy="sip:10.0.0.2;lr")
    ) == ["10.0.0.1", "10.0.0.2"]
    assert source_hosts(ServerSettings("10.0.0.1", outbound_proxy="sip:10.0.0.1")) == [
        "10.0.0.1"
    ]


async def test_resolve_allowed_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """IP literals are used as they are; names are resolved; failures are skipped."""
    loop = asyncio.get_running_loop()

    async def fake_getaddrinfo(host: str, port: Any, **kwargs: Any) -> list[Any]:
        if host == "pbx.example":
            return [
                (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.10", 0)),
                (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("2001:db8::10", 0, 0, 0)),
                (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.10", 0)),
            ]
        raise socket.gaierror(socket.EAI_NONAME, "unknown")

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    server = ServerSettings("pbx.example", outbound_proxy="sip:nowhere.example;lr")
    assert await resolve_allowed_sources(server) == ["192.0.2.10", "2001:db8::10"]
    literal = ServerSettings("127.0.0.1", outbound_proxy="<sip:[::1]:5060>")
    assert await resolve_allowed_sources(literal) == ["127.0.0.1", "::1"]


def test_account_and_start_params() -> None:
    """Settings reach the worker's requests; an empty auth id means the extension."""
    server = ServerSettings("pbx.example", 5080, Transport.TCP, "sip:proxy.example")
    options = EngineOptions(
        keepalive=KeepaliveMethod.SIP_OPTIONS,
        keepalive_interval=15,
        expiry=120,
        retry_interval=5,
        port_min=6000,
        port_max=6010,
        bind_host="127.0.0.1",
        restrict_sources=False,
    )
    params = account_params(server, options, ExtensionSettings("id", "2000", "", "pw"))
    assert params.auth_id == "2000"
    assert (params.domain, params.port, params.transport) == (
        "pbx.example",
        5080,
        "tcp",
    )
    assert params.outbound_proxy == "sip:proxy.example"
    assert (params.expiry, params.keepalive, params.keepalive_interval) == (
        120,
        KeepaliveMethod.SIP_OPTIONS,
        15,
    )
    assert params.retry_interval == 5
    start = start_params(options, ["192.0.2.1"])
    assert (start.port_min, start.port_max, start.bind_host) == (
        6000,
        6010,
        "127.0.0.1",
    )
    assert (start.restrict_sources, start.allowed_sources) == (False, ["192.0.2.1"])
    assert (start.tls_verify, start.tls_ca_file) == (True, None)


def test_start_params_carry_tls_settings() -> None:
    """The TLS verification options reach the worker's `start`."""
    options = EngineOptions(
        bind_host="127.0.0.1", tls_verify=False, tls_ca_file="/config/pbx-ca.pem"
    )
    start = start_params(options, ["192.0.2.1"])
    assert (start.tls_verify, start.tls_ca_file) == (False, "/config/pbx-ca.pem")


def test_registrar_uri() -> None:
    """The registrar URI the engine reports for states it makes up itself."""
    assert registrar_uri(ServerSettings("pbx.example")) == "sip:pbx.example"
    assert registrar_uri(ServerSettings("pbx.example", 5080)) == "sip:pbx.example:5080"
    assert (
        registrar_uri(ServerSettings("2001:db8::1", 5060)) == "sip:[2001:db8::1]:5060"
    )


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "", "::"])
def test_wildcard_bind_uses_the_address_toward_the_registrar(
    wildcard: str, socket_enabled: None
) -> None:
    """Bound to 'any', workers take the local address that reaches the registrar."""
    assert bind_host_toward(wildcard, ["127.0.0.1"]) == "127.0.0.1"


def test_explicit_bind_and_unroutable_registrar(socket_enabled: None) -> None:
    """An explicit address is kept; with nothing routable the wildcard stays."""
    assert bind_host_toward("127.0.0.5", ["127.0.0.1"]) == "127.0.0.5"
    assert bind_host_toward("0.0.0.0", []) == "0.0.0.0"
    assert start_params(EngineOptions(), ["127.0.0.1"]).bind_host == "127.0.0.1"
