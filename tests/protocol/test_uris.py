"""The registrar URI is written the same way by the engine and by the workers."""

import pytest

from custom_components.sip_endpoint.engine.models import (
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.params import account_params, registrar_uri
from custom_components.sip_endpoint.protocol.payloads import Transport
from custom_components.sip_endpoint.worker.core import uris as worker_uris


@pytest.mark.parametrize("transport", list(Transport))
@pytest.mark.parametrize(
    ("host", "port"), [("pbx.example", None), ("pbx.example", 5080), ("fd00::5", 5060)]
)
def test_engine_and_worker_report_the_same_registrar(
    host: str, port: int | None, transport: Transport
) -> None:
    """States the engine makes up name the registrar as the worker's states do."""
    server = ServerSettings(host, port, transport)
    params = account_params(
        server, EngineOptions(), ExtensionSettings("id", "2000", "", "pw")
    )
    assert registrar_uri(server) == worker_uris.registrar_uri(params)


def test_registrar_uri_brackets_ipv6_and_names_the_transport() -> None:
    """An IPv6 literal is bracketed; a chosen transport is a URI parameter."""
    server = ServerSettings("fd00::5", 5061, Transport.TLS)
    assert registrar_uri(server) == "sip:[fd00::5]:5061;transport=tls"
