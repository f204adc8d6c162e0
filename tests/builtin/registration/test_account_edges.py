"""Edge paths of a built-in account: unusable settings, Contact hosts, no route, stops.

The accounts run on the loopback host of ``loophost`` (a real built-in stack on
127.0.0.1 that records what it sends and the states it reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import Transport
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.builtin.registration.account import (
    BuiltinAccount,
)
from custom_components.sip_endpoint.worker.builtin.registration.target import (
    Destination,
)
from tests.builtin.calls.test_call_edges import refuse_invalid_names

from .conftest import PROBE_EVERY_SECOND, AccountFactory, RegistrarFactory, params
from .fakeregistrar import ok_with_contact, reply
from .loophost import LoopbackHost

if TYPE_CHECKING:
    from custom_components.sip_endpoint.worker.builtin.registration.host import Outcome
    from custom_components.sip_endpoint.worker.builtin.sip.message import (
        SipRequest,
        SipResponse,
    )


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail lookups of ``*.invalid`` names without asking a DNS server."""
    refuse_invalid_names(monkeypatch)


LOOPBACK = Destination(Transport.UDP, "127.0.0.1", "127.0.0.1", 5060)


@pytest.mark.parametrize("domain", ["bad domain", "pbx:notaport"])
def test_a_domain_that_is_no_uri_is_refused(domain: str) -> None:
    """A registrar that is no SIP URI: ValueError naming it, before any network."""
    host = LoopbackHost()
    with pytest.raises(ValueError, match="bad registrar or proxy address"):
        BuiltinAccount(host, params("2001", domain, None))
    assert host.sent == []


async def test_an_unbound_host_takes_the_routes_address_for_contact(
    host: LoopbackHost,
) -> None:
    """Bound to 0.0.0.0, Contact carries the address toward the registrar."""
    account = BuiltinAccount(host, params("2001", "127.0.0.1", 5060))
    host.bind_host = "0.0.0.0"
    contact = account.contact_for(LOOPBACK)
    assert contact.host == "127.0.0.1"
    assert contact.user == "2001"


async def test_an_ipv6_host_is_bracketed_in_contact(host: LoopbackHost) -> None:
    """Bound to ::1, Contact names [::1] (RFC 3261 25.1 IPv6reference)."""
    account = BuiltinAccount(host, params("2001", "127.0.0.1", 5060))
    host.bind_host = "::1"
    contact = account.contact_for(LOOPBACK)
    assert contact.host == "[::1]"
    assert str(contact).startswith("sip:2001@[::1]")


async def test_a_registrar_name_that_does_not_resolve_fails_without_sending(
    host: LoopbackHost, add_account: AccountFactory
) -> None:
    """No address for the registrar: a failure naming the host, no REGISTER sent."""
    account = add_account("2001", "host.invalid", 5060)
    failed = await host.wait_status(
        account.account_id, RegistrationStatus.NO_REPLY_FROM_SERVER
    )
    assert "host.invalid" in failed.reason
    assert host.count_sent("REGISTER") == 0
    assert account.destination is None


async def test_a_closed_account_asks_for_nothing_more(
    host: LoopbackHost, add_account: AccountFactory
) -> None:
    """After close(), register() neither starts a task nor sends anything."""
    account = add_account("2001", "host.invalid", 5060)
    await host.wait_status(account.account_id, RegistrationStatus.NO_REPLY_FROM_SERVER)
    sent = list(host.sent)
    states = list(host.states)
    account.close()
    account.register()
    account.register()
    assert account._tasks == []
    assert host.sent == sent
    assert host.states == states


async def test_a_probe_answered_408_by_a_proxy_counts_as_no_reply(
    host: LoopbackHost, add_account: AccountFactory, fake_registrar: RegistrarFactory
) -> None:
    """Registered, then the binding check gets 408: `no_reply_from_server`, code 408."""

    def answer(request: SipRequest) -> SipResponse:
        if request.headers.get("Contact"):
            return ok_with_contact(request, 3600)
        return reply(request, 408)  # the query REGISTER of the liveness probe

    registrar = await fake_registrar(answer)
    account = add_account(
        "2001",
        "127.0.0.1",
        registrar.port,
        **PROBE_EVERY_SECOND,
        retry_interval=300,
    )
    await host.wait_status(account.account_id, RegistrationStatus.SUCCESSFUL)
    mark = len(host.states)
    lost = await host.wait_status(
        account.account_id, RegistrationStatus.NO_REPLY_FROM_SERVER, after=mark
    )
    assert lost.code == 408
    assert host.count_sent("QUERY") >= 1


def _failing_once(host: LoopbackHost, method: str, failed: list[str]) -> None:
    """Make the host's first ``method`` request raise (a bug), then send normally."""
    send = host.send_request

    async def flaky(
        request: SipRequest, destination: Destination, limit: float | None
    ) -> Outcome:
        if request.method == method and not failed:
            failed.append(method)
            raise RuntimeError("injected failure")
        return await send(request, destination, limit)

    host.send_request = flaky  # type: ignore[method-assign]


async def test_a_register_that_fails_on_a_bug_is_reported_and_retried(
    host: LoopbackHost,
    add_account: AccountFactory,
    fake_registrar: RegistrarFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in one attempt: logged, reported as a failure, and the schedule goes on."""
    registrar = await fake_registrar(lambda r: ok_with_contact(r, 3600))
    failed: list[str] = []
    _failing_once(host, "REGISTER", failed)
    account = add_account("2001", "127.0.0.1", registrar.port, retry_interval=1)
    broken = await host.wait_status(
        account.account_id, RegistrationStatus.NO_REPLY_FROM_SERVER
    )
    assert broken.reason == "internal error"
    await host.wait_status(account.account_id, RegistrationStatus.SUCCESSFUL)
    assert failed == ["REGISTER"]
    assert "ext-2001: REGISTER failed" in caplog.text
    caplog.clear()  # the error above was expected (see no_errors_logged)


async def test_a_probe_that_fails_on_a_bug_does_not_stop_probing(
    host: LoopbackHost,
    add_account: AccountFactory,
    fake_registrar: RegistrarFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in one OPTIONS probe: logged, and the next probe still goes out."""
    registrar = await fake_registrar(lambda r: reply(r, 403))
    failed: list[str] = []
    _failing_once(host, "OPTIONS", failed)
    account = add_account(
        "2001",
        "127.0.0.1",
        registrar.port,
        **PROBE_EVERY_SECOND,
        retry_interval=300,
    )
    await host.wait_status(account.account_id, RegistrationStatus.REJECTED_BY_SERVER)
    await host.wait_sent("OPTIONS", 1)
    assert failed == ["OPTIONS"]
    assert "ext-2001: liveness probe failed" in caplog.text
    caplog.clear()  # the error above was expected (see no_errors_logged)
