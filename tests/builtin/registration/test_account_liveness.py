"""A registrar that dies is noticed, and one that comes back is registered with at once.

Issue 11: Kamailio keeps its contacts in memory, so after a restart the extension
must register again without waiting for its refresh. The retry interval here is long
(10 minutes) so that only the liveness probe can bring the registration back.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import KeepaliveMethod, Transport
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .conftest import PROBE_EVERY_SECOND
from .test_account_kamailio import reaches

if TYPE_CHECKING:
    from custom_components.sip_endpoint.worker.builtin.sip.transport import Connection
    from tests.sipbed.kamailio import Kamailio

    from .conftest import AccountFactory
    from .loophost import LoopbackHost

Status = RegistrationStatus
LONG_RETRY = 600
GENEROUS = 30.0


@pytest.mark.parametrize(
    ("transport", "keepalive"),
    [
        (Transport.UDP, KeepaliveMethod.DOUBLE_CRLF),
        (Transport.UDP, KeepaliveMethod.SIP_OPTIONS),
        (Transport.TCP, KeepaliveMethod.DOUBLE_CRLF),
        (Transport.TCP, KeepaliveMethod.SIP_OPTIONS),
    ],
)
async def test_registrar_restart_is_noticed_and_recovered(
    host: LoopbackHost,
    kamailio: Kamailio,
    add_account: AccountFactory,
    transport: Transport,
    keepalive: KeepaliveMethod,
) -> None:
    """Stopped: no_reply_from_server. Started again: registered again, reachable."""
    add_account(
        "2040",
        kamailio.host,
        kamailio.port,
        transport=transport,
        keepalive=keepalive,
        keepalive_interval=2,
        expiry=3600,
        retry_interval=LONG_RETRY,
    )
    await host.wait_status("ext-2040", Status.SUCCESSFUL)
    # While the registrar is up, the probe finds it alive: nothing changes.
    await host.wait_sent("QUERY", host.count_sent("QUERY") + 2)
    assert host.statuses("ext-2040") == [Status.REGISTERING, Status.SUCCESSFUL]
    if keepalive is KeepaliveMethod.DOUBLE_CRLF:
        assert host.keepalives >= 2

    mark = len(host.states)
    kamailio.stop()
    lost = await host.wait_status(
        "ext-2040", Status.NO_REPLY_FROM_SERVER, after=mark, within=GENEROUS
    )
    assert lost.code in (408, 503)
    assert lost.expires == 0

    mark = len(host.states)
    kamailio.start()  # same port, no contacts: it forgot them
    back = await host.wait_status(
        "ext-2040", Status.SUCCESSFUL, after=mark, within=GENEROUS
    )
    assert back.code == 200
    assert host.statuses("ext-2040")[mark:] == [Status.REGISTERING, Status.SUCCESSFUL]
    assert await reaches(kamailio, "2040")


async def test_lost_tcp_connection_registers_again_at_once(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """With keep-alive off, a closed TCP connection still triggers a REGISTER."""
    add_account(
        "2041",
        kamailio.host,
        kamailio.port,
        transport=Transport.TCP,
        keepalive=KeepaliveMethod.OFF,
        expiry=3600,
        retry_interval=1,
    )
    await host.wait_status("ext-2041", Status.SUCCESSFUL)
    mark = len(host.states)
    kamailio.stop()
    lost = await host.wait_status("ext-2041", Status.NO_REPLY_FROM_SERVER, after=mark)
    assert lost.code == 503
    # The quiet re-REGISTER failed: no `registering` before the failure.
    assert host.statuses("ext-2041")[mark] is Status.NO_REPLY_FROM_SERVER
    kamailio.start()
    await host.wait_status("ext-2041", Status.SUCCESSFUL, after=mark, within=GENEROUS)
    assert await reaches(kamailio, "2041")


async def test_keepalive_off_sends_no_probe(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """Keep-alive off: no OPTIONS and no CRLF, only REGISTER."""
    add_account(
        "2042",
        kamailio.host,
        kamailio.port,
        keepalive=KeepaliveMethod.OFF,
        keepalive_interval=1,
    )
    await host.wait_status("ext-2042", Status.SUCCESSFUL)
    await asyncio.sleep(2.5)
    assert {r.method for r in host.sent} == {"REGISTER"}
    assert host.keepalives == 0


async def test_answering_registrar_with_a_wrong_password_is_not_hammered(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """A live registrar that refuses us is retried with backoff, not on every probe."""
    add_account(
        "2043",
        kamailio.host,
        kamailio.port,
        password="wrong",
        **PROBE_EVERY_SECOND,
        retry_interval=LONG_RETRY,
    )
    await host.wait_status("ext-2043", Status.REJECTED_BY_SERVER)
    await host.wait_sent("OPTIONS", 3)
    assert host.statuses("ext-2043") == [
        Status.REGISTERING,
        Status.REJECTED_BY_SERVER,
    ]


async def test_register_in_flight_is_resent_when_its_connection_closes(
    host: LoopbackHost, add_account: AccountFactory
) -> None:
    """A server that takes the REGISTER and closes: no waiting for Timer F (408)."""
    received: list[bytes] = []

    async def swallow(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        received.append(await reader.read(65535))
        writer.close()
        server.close()  # later connections are refused

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    add_account(
        "2044",
        "127.0.0.1",
        port,
        transport=Transport.TCP,
        keepalive=KeepaliveMethod.OFF,
        retry_interval=LONG_RETRY,
    )
    state = await host.wait_status("ext-2044", Status.NO_REPLY_FROM_SERVER)
    assert state.code == 503
    assert received
    assert received[0].startswith(b"REGISTER ")
    assert host.count_sent("REGISTER") == 2


async def test_only_the_next_hops_connection_closing_registers_again(
    host: LoopbackHost,
    kamailio: Kamailio,
    add_account: AccountFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection from the registrar's address closing is not the account's link.

    A scanner at that address (or the registrar opening a connection for a call)
    once made every TCP account register again on each close.
    """
    host.set_sources(True, [kamailio.host])  # as a worker does: the registrar may send
    account = add_account(
        "2045",
        kamailio.host,
        kamailio.port,
        transport=Transport.TCP,
        keepalive=KeepaliveMethod.OFF,
        expiry=3600,
        retry_interval=LONG_RETRY,
    )
    await host.wait_status("ext-2045", Status.SUCCESSFUL)
    registers = host.count_sent("REGISTER")
    closed: list[tuple[str, str, int]] = []
    seen_close = asyncio.Event()
    on_closed = host._on_connection_closed

    def record(connection: Connection) -> None:
        closed.append(connection.key)
        seen_close.set()
        on_closed(connection)

    assert host.transport is not None
    monkeypatch.setattr(host.transport, "_on_closed", record)
    # An allowed source (the registrar's address) connects to us and hangs up.
    _, writer = await asyncio.open_connection(kamailio.host, host.sip_port)
    local_port = writer.get_extra_info("sockname")[1]
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(GENEROUS):
        while ("tcp", kamailio.host, local_port) not in closed:
            seen_close.clear()
            await seen_close.wait()
    assert account._quick_probes == []
    assert host.count_sent("REGISTER") == registers
    # The connection to the next hop closing is the account's: it registers again.
    hop = account.destination
    assert hop is not None
    account.connection_lost((hop.transport.value, hop.address, hop.port))
    assert account._quick_probes
    await host.wait_sent("REGISTER", registers + 1)


async def test_quick_restart_is_caught_by_the_binding_check(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """UDP: Kamailio restarted between two probes forgets us; the next probe notices.

    Over TCP the closed connection gives the restart away at once (tested by
    test_lost_tcp_connection_registers_again_at_once and the quick probes below), and the
    contact can be back before this test could see it forgotten.
    """
    add_account(
        "2045",
        kamailio.host,
        kamailio.port,
        transport=Transport.UDP,
        keepalive_interval=2,
        expiry=3600,
        retry_interval=LONG_RETRY,
    )
    await host.wait_status("ext-2045", Status.SUCCESSFUL)
    await host.wait_sent("QUERY", 1)
    mark = len(host.states)
    await asyncio.to_thread(kamailio.restart)
    assert not await reaches(kamailio, "2045")  # it forgot the contact
    await host.wait_status("ext-2045", Status.SUCCESSFUL, after=mark, within=GENEROUS)
    assert await reaches(kamailio, "2045")
    # Quietly: nothing but `successful` was reported.
    assert set(host.statuses("ext-2045")[mark:]) == {Status.SUCCESSFUL}


async def test_quick_probes_after_a_lost_connection(
    host: LoopbackHost, kamailio: Kamailio, add_account: AccountFactory
) -> None:
    """TCP, Kamailio restarted: quick probes register again, long before any interval.

    The keep-alive interval and the retry are 10 minutes: only the quick probes after
    the lost connection can bring the registration back while the test waits.
    """
    add_account(
        "2046",
        kamailio.host,
        kamailio.port,
        transport=Transport.TCP,
        keepalive_interval=LONG_RETRY,
        expiry=3600,
        retry_interval=LONG_RETRY,
    )
    await host.wait_status("ext-2046", Status.SUCCESSFUL)
    mark = len(host.states)
    await asyncio.to_thread(kamailio.stop)
    await host.wait_status("ext-2046", Status.NO_REPLY_FROM_SERVER, after=mark)
    await asyncio.to_thread(kamailio.start)
    await host.wait_status("ext-2046", Status.SUCCESSFUL, after=mark, within=GENEROUS)
    assert host.count_sent("OPTIONS") >= 1
    assert await reaches(kamailio, "2046")
