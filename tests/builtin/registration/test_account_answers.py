"""BuiltinAccount and answers a scripted registrar gives: 423, bindings, 3xx, 5xx."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .conftest import PROBE_EVERY_SECOND
from .fakeregistrar import ok_with_contact, reply

if TYPE_CHECKING:
    from custom_components.sip_endpoint.worker.builtin.sip.message import (
        SipRequest,
        SipResponse,
    )

    from .conftest import AccountFactory, RegistrarFactory
    from .loophost import LoopbackHost

Status = RegistrationStatus


def _expires(request: SipRequest) -> int:
    return int(request.headers.get("Expires") or "0")


async def test_interval_too_brief_is_retried_with_min_expires(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """423 with Min-Expires: the REGISTER is sent again asking for that much."""

    def answer(request: SipRequest) -> SipResponse:
        if _expires(request) < 120:
            return reply(request, 423, ("Min-Expires", "120"))
        return ok_with_contact(request, 120)

    registrar = await fake_registrar(answer)
    add_account("2070", "127.0.0.1", registrar.port, expiry=60)
    state = await host.wait_status("ext-2070", Status.SUCCESSFUL)
    assert state.expires == 120
    assert [_expires(r) for r in host.sent if r.method == "REGISTER"] == [60, 120]
    assert [(x.code, x.from_server) for x in host.exchanges] == [(200, True)]


async def test_interval_too_brief_without_min_expires_is_rejected(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """A 423 that says nothing usable ends the attempt: rejected_by_server 423."""
    registrar = await fake_registrar(lambda request: reply(request, 423))
    add_account("2071", "127.0.0.1", registrar.port, retry_interval=600)
    state = await host.wait_status("ext-2071", Status.REJECTED_BY_SERVER)
    assert state.code == 423
    assert host.count_sent("REGISTER") == 1


async def test_our_binding_sets_the_expiry(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """Of several bindings, the one matching our Contact gives the expiry."""

    def answer(request: SipRequest) -> SipResponse:
        contact = request.headers.get("Contact") or ""
        return reply(
            request,
            200,
            ("Contact", "<sip:2072@192.0.2.9:5060>;expires=3600"),
            ("Contact", f"{contact};expires=55"),
            ("Expires", "999"),
        )

    registrar = await fake_registrar(answer)
    add_account("2072", "127.0.0.1", registrar.port, expiry=300)
    state = await host.wait_status("ext-2072", Status.SUCCESSFUL)
    assert state.expires == 55


async def test_expires_header_when_our_binding_is_not_listed(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """Without our binding in the answer, its Expires header counts."""
    registrar = await fake_registrar(lambda r: reply(r, 200, ("Expires", "77")))
    add_account("2073", "127.0.0.1", registrar.port, expiry=300)
    state = await host.wait_status("ext-2073", Status.SUCCESSFUL)
    assert state.expires == 77


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (302, Status.REJECTED_BY_SERVER),
        (400, Status.REJECTED_BY_SERVER),
        (404, Status.NOT_FOUND),
        (408, Status.NO_REPLY_FROM_SERVER),
        (500, Status.SERVER_ERROR),
        (503, Status.SERVER_ERROR),
    ],
)
async def test_final_answers_are_classified(
    host: LoopbackHost,
    fake_registrar: RegistrarFactory,
    add_account: AccountFactory,
    code: int,
    status: RegistrationStatus,
) -> None:
    """Each final answer maps to the status pjsua2's worker reports for it."""
    registrar = await fake_registrar(lambda request: reply(request, code))
    add_account("2074", "127.0.0.1", registrar.port, retry_interval=600)
    state = await host.wait_status("ext-2074", status)
    assert state.code == code
    assert state.expires == 0
    assert host.exchanges[-1].from_server is True


async def test_a_registrar_that_falls_silent_is_noticed_by_the_probe(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """The first REGISTER is answered; then nothing: the probe reports no reply."""
    silent = False

    def answer(request: SipRequest) -> SipResponse | None:
        return None if silent else ok_with_contact(request, 3600)

    registrar = await fake_registrar(answer)
    add_account(
        "2075",
        "127.0.0.1",
        registrar.port,
        **PROBE_EVERY_SECOND,
        retry_interval=600,
    )
    await host.wait_status("ext-2075", Status.SUCCESSFUL)
    await host.wait_sent("PROBE", 2)
    silent = True
    registrar.close()  # OPTIONS go unanswered too
    state = await host.wait_status("ext-2075", Status.NO_REPLY_FROM_SERVER)
    assert state.code == 408


async def test_a_query_without_our_binding_registers_again(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """A REGISTER query answered without our binding: REGISTER again, quietly."""

    def answer(request: SipRequest) -> SipResponse:
        if "Contact" not in request.headers:
            return reply(request, 200)  # a registrar that forgot us
        return ok_with_contact(request, 3600)

    registrar = await fake_registrar(answer)
    add_account(
        "2076",
        "127.0.0.1",
        registrar.port,
        **PROBE_EVERY_SECOND,
    )
    await host.wait_status("ext-2076", Status.SUCCESSFUL)
    await host.wait_sent("QUERY", 1)
    mark = len(host.states)
    await host.wait_status("ext-2076", Status.SUCCESSFUL, after=mark)
    binding = [r for r in registrar.registers() if "Contact" in r.headers]
    assert len(binding) >= 2
    assert set(host.statuses("ext-2076")[mark:]) == {Status.SUCCESSFUL}


async def test_a_registrar_rewriting_contacts_gets_options(
    host: LoopbackHost, fake_registrar: RegistrarFactory, add_account: AccountFactory
) -> None:
    """Our Contact listed in another form: no binding check, OPTIONS probes only."""

    def answer(request: SipRequest) -> SipResponse:
        return reply(
            request, 200, ("Contact", "<sip:2077@198.51.100.7:40000>;expires=3600")
        )

    registrar = await fake_registrar(answer)
    add_account(
        "2077",
        "127.0.0.1",
        registrar.port,
        **PROBE_EVERY_SECOND,
    )
    await host.wait_status("ext-2077", Status.SUCCESSFUL)
    await host.wait_sent("OPTIONS", 3)
    assert host.count_sent("QUERY") == 0
    assert host.count_sent("REGISTER") == 1
    assert host.statuses("ext-2077") == [Status.REGISTERING, Status.SUCCESSFUL]
