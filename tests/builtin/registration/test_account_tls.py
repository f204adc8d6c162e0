"""REGISTER over TLS to the test bed's Kamailio: verified, or refused with the reason."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

import pytest

from custom_components.sip_endpoint.protocol.payloads import Transport
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.tls import EXPECTED_VERIFY_MESSAGES, make_certificates

from .conftest import PROBE_EVERY_SECOND
from .loophost import LoopbackHost

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from tests.sipbed.kamailio import Kamailio, KamailioFactory
    from tests.sipbed.tls import CertificateKind, CertificateSet

    from .conftest import AccountFactory

Status = RegistrationStatus


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """Return the test bed's CA and server certificates (made once per module)."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))


class TlsRegistrar(NamedTuple):
    """A Kamailio serving one kind of certificate and a loopback host to reach it."""

    kamailio: Kamailio
    port: int
    host: LoopbackHost


type RegistrarFactory = Callable[..., Awaitable[TlsRegistrar]]


@pytest.fixture
async def tls_registrar(
    socket_enabled: None,
    kamailio_factory: KamailioFactory,
    certificates: CertificateSet,
) -> AsyncIterator[RegistrarFactory]:
    """Return a callable starting a Kamailio with a ``kind`` of certificate.

    Its loopback host trusts the test bed's CA, or verifies nothing (``verify``).
    """
    hosts: list[LoopbackHost] = []

    async def _make(kind: CertificateKind, *, verify: bool = True) -> TlsRegistrar:
        kamailio = kamailio_factory(tls_certificate=certificates.server(kind))
        assert kamailio.tls_port is not None
        ca_file = str(certificates.ca_path) if verify else None
        made = LoopbackHost(tls_verify=verify, ca_file=ca_file)
        await made.start()
        hosts.append(made)
        return TlsRegistrar(kamailio, kamailio.tls_port, made)

    yield _make
    for made in hosts:
        await made.close()


async def test_verified_certificate_registers(
    tls_registrar: RegistrarFactory,
    add_account: AccountFactory,
) -> None:
    """A certificate from the trusted CA, for the host: registered over TLS."""
    _, port, host = await tls_registrar("valid")
    add_account(
        "2050",
        "127.0.0.1",
        port,
        on=host,
        transport=Transport.TLS,
        **PROBE_EVERY_SECOND,
    )
    state = await host.wait_status("ext-2050", Status.SUCCESSFUL)
    assert state.code == 200
    assert state.registrar == f"sip:127.0.0.1:{port};transport=tls"
    register = [r for r in host.sent if r.method == "REGISTER"][-1]
    assert register.top_via.transport.upper() == "TLS"
    # The probe (a REGISTER query) runs over TLS and finds our binding.
    await host.wait_sent("QUERY", 2)
    assert host.statuses("ext-2050") == [Status.REGISTERING, Status.SUCCESSFUL]


async def test_host_name_is_resolved_and_verified(
    tls_registrar: RegistrarFactory,
    add_account: AccountFactory,
) -> None:
    """A registrar given by name (localhost) is resolved and its name verified."""
    _, port, host = await tls_registrar("valid")
    account = add_account("2051", "localhost", port, on=host, transport=Transport.TLS)
    await host.wait_status("ext-2051", Status.SUCCESSFUL)
    assert account.destination is not None
    assert account.destination.host == "localhost"
    assert account.destination.address in ("127.0.0.1", "::1")


@pytest.mark.parametrize("kind", ["untrusted", "wrong_host", "expired", "self_signed"])
async def test_bad_certificate_is_its_own_status(
    tls_registrar: RegistrarFactory,
    add_account: AccountFactory,
    kind: CertificateKind,
) -> None:
    """A refused certificate: tls_certificate_invalid with ssl's reason, retried."""
    _, port, host = await tls_registrar(kind)
    add_account("2052", "127.0.0.1", port, on=host, transport=Transport.TLS)
    state = await host.wait_status("ext-2052", Status.TLS_CERTIFICATE_INVALID)
    assert state.reason.startswith("certificate verify failed: ")
    assert EXPECTED_VERIFY_MESSAGES[kind] in state.reason
    assert "no reply" not in state.reason.lower()
    assert host.exchanges[-1].from_server is False
    # Retried with backoff like any failure (retry_interval 1 s).
    mark = len(host.states)
    await host.wait_status("ext-2052", Status.REGISTERING, after=mark)
    await host.wait_status("ext-2052", Status.TLS_CERTIFICATE_INVALID, after=mark)


async def test_verification_off_accepts_any_certificate(
    tls_registrar: RegistrarFactory,
    add_account: AccountFactory,
) -> None:
    """With verification off, an untrusted certificate is accepted."""
    _, port, host = await tls_registrar("untrusted", verify=False)
    add_account("2053", "127.0.0.1", port, on=host, transport=Transport.TLS)
    state = await host.wait_status("ext-2053", Status.SUCCESSFUL)
    assert state.code == 200


async def test_registrar_restart_over_tls(
    tls_registrar: RegistrarFactory,
    add_account: AccountFactory,
) -> None:
    """Over TLS too: stopped is no_reply_from_server, started again is registered."""
    kamailio, port, host = await tls_registrar("valid")
    add_account(
        "2054",
        "127.0.0.1",
        port,
        on=host,
        transport=Transport.TLS,
        keepalive_interval=2,
        expiry=3600,
        retry_interval=600,
    )
    await host.wait_status("ext-2054", Status.SUCCESSFUL)
    mark = len(host.states)
    await asyncio.to_thread(kamailio.stop)
    lost = await host.wait_status(
        "ext-2054", Status.NO_REPLY_FROM_SERVER, after=mark, within=30
    )
    assert lost.code == 503
    mark = len(host.states)
    await asyncio.to_thread(kamailio.start)
    await host.wait_status("ext-2054", Status.SUCCESSFUL, after=mark, within=30)
    assert host.statuses("ext-2054")[mark:] == [Status.REGISTERING, Status.SUCCESSFUL]
