"""A caller's name and address reach Home Assistant cut to a sane length.

Found by trying the product as a user: the From header's display name (anything an
outside caller sets, passed on by the PBX) went unbounded into the event, the event
entity's attributes and the logbook; a 3000-character name came through whole, and a
From header may hold tens of kilobytes. The INVITE goes from the registrar's address
to a real worker (so the allowed-source check lets it in).
"""

import secrets
import socket
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sip_endpoint.const import EVENT_CALL
from custom_components.sip_endpoint.runtime import MAX_CALLER_LENGTH
from tests.sipbed.kamailio import Kamailio

from .helpers import async_wait_for_state
from .roles import until


def _invite(port: int, local_port: int, branch: str, name: str) -> bytes:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:2002@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "{name}" <sip:9001@127.0.0.1>;tag={branch}\r\n'
        "To: <sip:2002@127.0.0.1>\r\n"
        f"Call-ID: {branch}@test\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:9001@127.0.0.1:{local_port}>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def _cancel(port: int, local_port: int, branch: str) -> bytes:
    return (
        f"CANCEL sip:2002@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "x" <sip:9001@127.0.0.1>;tag={branch}\r\n'
        "To: <sip:2002@127.0.0.1>\r\n"
        f"Call-ID: {branch}@test\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_a_long_display_name_is_cut(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, kamailio: Kamailio
) -> None:
    """A 3000-character display name arrives as its first MAX_CALLER_LENGTH characters."""
    assert kamailio.host == "127.0.0.1"  # the INVITE's source must be the registrar's
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")
    (worker,) = loaded_entry.runtime_data.engine.workers()
    assert worker.sip_port is not None
    events: list[dict[str, Any]] = []

    @callback
    def record(event: Event[Any]) -> None:
        events.append(dict(event.data))

    hass.bus.async_listen(EVENT_CALL, record)
    branch = secrets.token_hex(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
        sock.sendto(
            _invite(worker.sip_port, local_port, branch, "Caller " * 430),
            ("127.0.0.1", worker.sip_port),
        )
        await until(lambda: bool(events), "the incoming call")
        await hass.async_block_till_done()
        state = hass.states.get("event.ring_2002_call")
        assert state is not None
        assert len(state.attributes["caller_name"]) == MAX_CALLER_LENGTH
        sock.sendto(
            _cancel(worker.sip_port, local_port, branch),
            ("127.0.0.1", worker.sip_port),
        )
        await until(lambda: events[-1]["type"] == "missed", "the missed call")

    incoming = events[0]
    assert incoming["type"] == "incoming"
    assert incoming["caller_name"] == ("Caller " * 430)[:MAX_CALLER_LENGTH]
    assert len(incoming["caller"]) == MAX_CALLER_LENGTH
