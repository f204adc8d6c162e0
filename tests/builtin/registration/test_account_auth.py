"""BuiltinAccount's digest against a real Kamailio: qop=auth, SHA-256, 407, stale."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.kamailio import AuthOptions

if TYPE_CHECKING:
    from tests.sipbed.kamailio import KamailioFactory

    from .conftest import AccountFactory
    from .loophost import LoopbackHost

Status = RegistrationStatus


def _authorizations(host: LoopbackHost, header: str) -> list[str]:
    return [
        value
        for request in host.sent
        if request.method == "REGISTER"
        for value in request.headers.get_lines(header)
    ]


async def test_qop_auth(
    host: LoopbackHost, kamailio_factory: KamailioFactory, add_account: AccountFactory
) -> None:
    """A challenge with qop=auth is answered with qop, nc and cnonce."""
    registrar = kamailio_factory(auth=AuthOptions(qop=True))
    add_account("2030", registrar.host, registrar.port, expiry=4)
    first = await host.wait_status("ext-2030", Status.SUCCESSFUL)
    assert first.code == 200
    # The refresh reuses the nonce with the next nonce count.
    await host.wait_status("ext-2030", Status.SUCCESSFUL, after=len(host.states))
    answers = _authorizations(host, "Authorization")
    assert "qop=auth" in answers[0]
    assert "nc=00000001" in answers[0]
    assert "cnonce=" in answers[0]
    assert "nc=00000002" in answers[1]
    assert all(x.code == 200 for x in host.exchanges)


async def test_sha256(
    host: LoopbackHost, kamailio_factory: KamailioFactory, add_account: AccountFactory
) -> None:
    """A SHA-256 challenge is answered with SHA-256."""
    registrar = kamailio_factory(auth=AuthOptions(qop=True, algorithm="SHA-256"))
    add_account("2031", registrar.host, registrar.port)
    state = await host.wait_status("ext-2031", Status.SUCCESSFUL)
    assert state.code == 200
    assert "algorithm=SHA-256" in _authorizations(host, "Authorization")[0]


@pytest.mark.parametrize(
    ("auth", "ext", "code"),
    [
        pytest.param(AuthOptions(algorithm="SHA-256"), "2032", 401, id="sha256-401"),
        pytest.param(
            AuthOptions(register_challenge="proxy"), "2034", 407, id="proxy-407"
        ),
    ],
)
async def test_wrong_password_is_rejected_with_the_challenge_code(
    host: LoopbackHost,
    kamailio_factory: KamailioFactory,
    add_account: AccountFactory,
    auth: AuthOptions,
    ext: str,
    code: int,
) -> None:
    """Refused credentials (SHA-256 401, or after a 407) end in rejected_by_server."""
    registrar = kamailio_factory(auth=auth)
    add_account(ext, registrar.host, registrar.port, password="wrong")
    state = await host.wait_status(f"ext-{ext}", Status.REJECTED_BY_SERVER)
    assert state.code == code


async def test_proxy_challenge_407(
    host: LoopbackHost, kamailio_factory: KamailioFactory, add_account: AccountFactory
) -> None:
    """A 407 is answered with Proxy-Authorization."""
    registrar = kamailio_factory(auth=AuthOptions(register_challenge="proxy"))
    add_account("2033", registrar.host, registrar.port)
    state = await host.wait_status("ext-2033", Status.SUCCESSFUL)
    assert state.code == 200
    assert _authorizations(host, "Proxy-Authorization")
    assert not _authorizations(host, "Authorization")


async def test_stale_nonce_is_answered_again(
    host: LoopbackHost, kamailio_factory: KamailioFactory, add_account: AccountFactory
) -> None:
    """After the nonce expires, Kamailio says stale=true; the refresh still succeeds."""
    registrar = kamailio_factory(auth=AuthOptions(qop=True, nonce_expire=1))
    add_account("2035", registrar.host, registrar.port, expiry=4)
    await host.wait_status("ext-2035", Status.SUCCESSFUL)
    await host.wait_status("ext-2035", Status.SUCCESSFUL, after=len(host.states))
    assert host.statuses("ext-2035")[:3] == [
        Status.REGISTERING,
        Status.SUCCESSFUL,
        Status.SUCCESSFUL,
    ]
    nonces = {
        part
        for value in _authorizations(host, "Authorization")
        for part in value.split(", ")
        if part.startswith("nonce=")
    }
    assert len(nonces) >= 2  # the refresh needed the new nonce
    assert [x.code for x in host.exchanges][:2] == [200, 200]
