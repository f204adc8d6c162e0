"""BuiltinAccount against a real Kamailio: outcomes, refresh, unregistration, proxy."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import KeepaliveMethod, Transport
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.netutil import free_port, options_for_user

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio, KamailioFactory

    from .conftest import AccountFactory
    from .loophost import LoopbackHost

Status = RegistrationStatus


async def reaches(kamailio: Kamailio, ext: str) -> bool:
    """Return whether Kamailio has a contact for ``ext`` (it does not answer 480)."""
    code = await asyncio.to_thread(
        options_for_user, kamailio.host, kamailio.port, ext, timeout=15
    )
    return code != 480


@pytest.mark.parametrize("transport", [Transport.AUTO, Transport.UDP, Transport.TCP])
async def test_registers_through_the_digest_challenge(
    host: LoopbackHost,
    kamailio: Kamailio,
    add_account: AccountFactory,
    transport: Transport,
) -> None:
    """The first REGISTER is challenged (401); the answer with credentials gets 200."""
    add_account("2000", kamailio.host, kamailio.port, transport=transport)
    registering = await host.wait_status("ext-2000", Status.REGISTERING)
    assert registering.code is None
    state = await host.wait_status("ext-2000", Status.SUCCESSFUL)
    assert state.code == 200
    assert state.reason == "OK"
    assert state.expires == 300
    assert state.last_success is not None
    suffix = "" if transport is Transport.AUTO else f";transport={transport}"
    assert state.registrar == f"sip:{kamailio.host}:{kamailio.port}{suffix}"
    assert host.statuses("ext-2000") == [Status.REGISTERING, Status.SUCCESSFUL]
    assert [(x.code, x.from_server) for x in host.exchanges] == [(200, True)]
    # Two REGISTERs on the wire: one Call-ID, CSeq counting up, the AOR in To/From.
    registers = [r for r in host.sent if r.method == "REGISTER"]
    assert len(registers) == 2
    assert len({r.call_id for r in registers}) == 1
    assert [r.cseq.seq for r in registers] == [1, 2]
    assert str(registers[0].to_addr.uri) == f"sip:2000@{kamailio.host}"
    assert str(registers[0].from_addr.uri) == f"sip:2000@{kamailio.host}"
    assert registers[0].header("Authorization") is None
    assert registers[1].header("Authorization") is not None
    assert registers[1].header("Expires") == "300"
    contacts = registers[1].contacts()
    assert contacts != "*"
    contact = str(contacts[0].uri)
    want = "" if transport in (Transport.AUTO, Transport.UDP) else ";transport=tcp"
    assert contact == f"sip:2000@127.0.0.1:{host.sip_port}{want}"
    assert "pw-2000" in host.secrets


@pytest.mark.parametrize(
    ("wrong_password", "code"), [("rechallenge", 401), ("forbidden", 403)]
)
async def test_wrong_password_is_rejected_by_server(
    host: LoopbackHost,
    kamailio_factory: KamailioFactory,
    add_account: AccountFactory,
    wrong_password: str,
    code: int,
) -> None:
    """A wrong password ends in rejected_by_server with the server's code."""
    registrar = kamailio_factory(wrong_password=wrong_password)  # type: ignore[arg-type]
    add_account("2001", registrar.host, registrar.port, password="nope")
    state = await host.wait_status("ext-2001", Status.REJECTED_BY_SERVER)
    assert state.code == code
    assert host.exchanges[-1].from_server
    assert host.exchanges[-1].code == code


@pytest.mark.parametrize(
    ("unknown_user", "status", "code"),
    [
        ("forbidden", Status.REJECTED_BY_SERVER, 403),
        ("not_found", Status.NOT_FOUND, 404),
    ],
)
async def test_unknown_user(
    host: LoopbackHost,
    kamailio_factory: KamailioFactory,
    add_account: AccountFactory,
    unknown_user: str,
    status: RegistrationStatus,
    code: int,
) -> None:
    """An unknown user is rejected (403) or not found (404), as the server says."""
    registrar = kamailio_factory(unknown_user=unknown_user)  # type: ignore[arg-type]
    add_account("7777", registrar.host, registrar.port)
    state = await host.wait_status("ext-7777", status)
    assert state.code == code


async def test_registration_is_refreshed_before_expiry(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """A short expiry is refreshed before it runs out, quietly (no `registering`)."""
    add_account("2022", kamailio.host, kamailio.port, expiry=4)
    first = await host.wait_status("ext-2022", Status.SUCCESSFUL)
    assert first.expires == 4
    mark = len(host.states)
    refreshed = await host.wait_status("ext-2022", Status.SUCCESSFUL, after=mark)
    again = await host.wait_status(
        "ext-2022", Status.SUCCESSFUL, after=len(host.states)
    )
    assert first.last_success is not None
    assert refreshed.last_success is not None
    assert again.last_success is not None
    assert first.last_success < refreshed.last_success < again.last_success
    assert refreshed.changed_at == first.changed_at
    assert host.statuses("ext-2022")[:4] == [
        Status.REGISTERING,
        Status.SUCCESSFUL,
        Status.SUCCESSFUL,
        Status.SUCCESSFUL,
    ]
    assert [x.code for x in host.exchanges][:3] == [200, 200, 200]
    assert await reaches(kamailio, "2022")


async def test_unregister_sends_expires_zero(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """`unregister` removes the binding: Kamailio no longer has a contact."""
    account = add_account(
        "2020", kamailio.host, kamailio.port, keepalive=KeepaliveMethod.OFF
    )
    await host.wait_status("ext-2020", Status.SUCCESSFUL)
    assert await reaches(kamailio, "2020")
    await account.unregister()
    assert host.states[-1].status is Status.UNREGISTERED
    assert host.states[-1].expires == 0
    assert host.states[-1].code == 200
    last = [r for r in host.sent if r.method == "REGISTER"][-1]
    assert last.header("Expires") == "0"
    assert host.exchanges[-1].code == 200
    assert host.exchanges[-1].from_server
    assert not await reaches(kamailio, "2020")


async def test_unregister_of_an_unregistered_account_sends_nothing(
    host: LoopbackHost, add_account: AccountFactory
) -> None:
    """An account that never registered just reports `unregistered`."""
    silent = free_port("127.0.0.1")
    account = add_account("2027", "127.0.0.1", silent, transport=Transport.TCP)
    await host.wait_status("ext-2027", Status.NO_REPLY_FROM_SERVER)
    sent = len(host.sent)
    await account.unregister()
    assert host.statuses("ext-2027")[-1] is Status.UNREGISTERED
    assert len(host.sent) == sent


async def test_register_goes_through_the_outbound_proxy(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """The registrar's own port is silent; the proxy (Kamailio) answers 200."""
    silent_port = free_port("127.0.0.1")
    add_account(
        "2060",
        kamailio.host,
        silent_port,
        outbound_proxy=f"{kamailio.host}:{kamailio.port}",
    )
    state = await host.wait_status("ext-2060", Status.SUCCESSFUL)
    assert state.registrar.endswith(f":{silent_port}")
    register = [r for r in host.sent if r.method == "REGISTER"][-1]
    assert register.header("Route") == f"<sip:{kamailio.host}:{kamailio.port};lr>"
    assert str(register.uri) == f"sip:{kamailio.host}:{silent_port}"


async def test_server_down_on_tcp_is_no_reply_at_once(
    host: LoopbackHost, add_account: AccountFactory
) -> None:
    """A refused TCP connection (a local 503) means no reply from the server."""
    dead_port = free_port("127.0.0.1")
    add_account("2002", "127.0.0.1", dead_port, transport=Transport.TCP)
    state = await host.wait_status("ext-2002", Status.NO_REPLY_FROM_SERVER)
    assert state.code == 503
    assert host.exchanges[-1].from_server is False
    # It is retried with backoff (retry_interval 1 s): `registering` again, then
    # another failure.
    mark = len(host.states)
    await host.wait_status("ext-2002", Status.REGISTERING, after=mark)
    await host.wait_status("ext-2002", Status.NO_REPLY_FROM_SERVER, after=mark)


async def test_reregister_sends_a_fresh_register(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """`register()` on a registered account: `registering`, then `successful`."""
    account = add_account("2028", kamailio.host, kamailio.port)
    await host.wait_status("ext-2028", Status.SUCCESSFUL)
    mark = len(host.states)
    account.register()
    await host.wait_status("ext-2028", Status.SUCCESSFUL, after=mark)
    assert host.statuses("ext-2028")[mark:] == [Status.REGISTERING, Status.SUCCESSFUL]
    # The nonce from the first registration is reused: one REGISTER, no challenge.
    assert [x.code for x in host.exchanges] == [200, 200]
