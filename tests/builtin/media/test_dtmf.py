"""RFC 4733 events: the packets a digit becomes, and digits found in packets."""

import struct

import pytest

from custom_components.sip_endpoint.worker.builtin.media.dtmf import (
    DtmfReceiver,
    DtmfSender,
    EventPacket,
)


def fields(packet: EventPacket) -> tuple[int, bool, int, int]:
    """Return event, end bit, volume and duration of a packet."""
    event, flags, duration = struct.unpack("!BBH", packet.payload)
    return event, bool(flags & 0x80), flags & 0x3F, duration


def run(sender: DtmfSender, ticks: int, start: int = 1000) -> list[EventPacket | None]:
    """Call the sender once per tick with a timestamp advancing 160 a tick."""
    return [sender.next_packet(start + 160 * tick) for tick in range(ticks)]


def test_one_digit_becomes_updates_then_three_end_packets() -> None:
    sender = DtmfSender()
    sender.queue("5")
    assert sender.busy
    packets = run(sender, 12)
    sent = [packet for packet in packets if packet is not None]
    assert packets[10:] == [None, None]
    assert len(sent) == 10
    assert {packet.timestamp for packet in sent} == {1000}
    assert [packet.marker for packet in sent] == [True] + [False] * 9
    decoded = [fields(packet) for packet in sent]
    assert {event for event, _, _, _ in decoded} == {5}
    assert {volume for _, _, volume, _ in decoded} == {10}
    assert [duration for _, _, _, duration in decoded] == [
        160,
        320,
        480,
        640,
        800,
        960,
        1120,
        1280,
        1280,
        1280,
    ]
    assert [end for _, end, _, _ in decoded] == [False] * 7 + [True] * 3


def test_digits_are_separated_by_a_gap_of_audio() -> None:
    sender = DtmfSender()
    sender.queue("1")
    sender.queue("#")
    packets = run(sender, 30)
    gaps = [index for index, packet in enumerate(packets) if packet is None]
    assert gaps[:3] == [10, 11, 12]
    second = packets[13]
    assert second is not None
    assert second.marker
    assert second.timestamp == 1000 + 13 * 160
    assert fields(second)[0] == 11
    assert all(packet is None for packet in packets[26:])
    assert not sender.busy


@pytest.mark.parametrize("digit", ["", "12", "E", "x", "\u0661"])
def test_only_dtmf_digits_are_queued(digit: str) -> None:
    with pytest.raises(ValueError, match="not a DTMF digit"):
        DtmfSender().queue(digit)


def test_lower_case_letters_and_the_queue_bound() -> None:
    sender = DtmfSender()
    sender.queue("a")
    first = sender.next_packet(0)
    assert first is not None
    assert fields(first)[0] == 12
    for _ in range(64):
        sender.queue("1")
    with pytest.raises(ValueError, match="too many"):
        sender.queue("1")
    sender.clear()
    assert not sender.busy


def test_receiver_reports_each_event_once() -> None:
    sender = DtmfSender()
    for digit in "19*D":
        sender.queue(digit)
    receiver = DtmfReceiver()
    digits = [
        receiver.feed(packet.timestamp, packet.payload)
        for packet in run(sender, 60)
        if packet is not None
    ]
    assert [digit for digit in digits if digit is not None] == ["1", "9", "*", "D"]


def test_receiver_finds_a_digit_whose_first_packets_were_lost() -> None:
    sender = DtmfSender()
    sender.queue("7")
    packets = [packet for packet in run(sender, 10) if packet is not None]
    receiver = DtmfReceiver()
    found = [receiver.feed(p.timestamp, p.payload) for p in packets[7:]]
    assert found == ["7", None, None]


def test_receiver_ignores_short_and_unknown_events() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(0, b"\x01\x0a") is None
    assert receiver.feed(160, struct.pack("!BBH", 16, 0x8A, 800)) is None
    assert receiver.feed(320, struct.pack("!BBH", 3, 0x0A, 160)) == "3"


def test_receiver_treats_a_long_events_next_segment_as_the_same_digit() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(0, struct.pack("!BBH", 2, 0x0A, 65535)) == "2"
    assert receiver.feed(65535, struct.pack("!BBH", 2, 0x0A, 800)) is None
    assert receiver.feed(65535, struct.pack("!BBH", 2, 0x8A, 1600)) is None
    assert receiver.feed(70000, struct.pack("!BBH", 2, 0x0A, 160)) == "2"
