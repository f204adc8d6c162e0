"""The jitter buffer: delay, reordering, late and duplicate packets, loss, bounds."""

from custom_components.sip_endpoint.worker.builtin.media.jitter import JitterBuffer

SSRC = 1234


def frame(value: int, size: int = 320) -> bytes:
    """Return a frame whose every byte is ``value`` (to tell frames apart)."""
    return bytes([value]) * size


def drain(buffer: JitterBuffer, count: int) -> list[int | None]:
    """Pop ``count`` frames and return the first byte of each (None for nothing)."""
    result: list[int | None] = []
    for _ in range(count):
        out = buffer.pop()
        if out is not None:
            assert len(out) == 320
        result.append(None if out is None else out[0])
    return result


def test_plays_after_the_delay_in_order() -> None:
    buffer = JitterBuffer(delay_frames=3)
    buffer.push(10, SSRC, frame(1))
    buffer.push(11, SSRC, frame(2))
    assert buffer.pop() is None
    buffer.push(12, SSRC, frame(3))
    assert drain(buffer, 4) == [1, 2, 3, None]
    assert buffer.counters.underruns == 1


def test_reorders_by_sequence_number() -> None:
    buffer = JitterBuffer(delay_frames=3)
    for sequence, value in ((11, 2), (10, 1), (13, 4), (12, 3)):
        assert buffer.push(sequence, SSRC, frame(value))
    assert drain(buffer, 4) == [1, 2, 3, 4]


def test_drops_duplicates_and_late_packets() -> None:
    buffer = JitterBuffer(delay_frames=2)
    assert buffer.push(1, SSRC, frame(1))
    assert not buffer.push(1, SSRC, frame(9))
    assert buffer.push(2, SSRC, frame(2))
    assert drain(buffer, 1) == [1]
    assert not buffer.push(1, SSRC, frame(9))
    assert not buffer.push(0, SSRC, frame(9))
    assert buffer.push(3, SSRC, frame(3))
    assert drain(buffer, 2) == [2, 3]
    assert buffer.counters.duplicate == 1
    assert buffer.counters.late == 2
    assert not buffer.push(4, SSRC, b"")


def test_a_lost_packet_plays_as_silence() -> None:
    buffer = JitterBuffer(delay_frames=3)
    for sequence, value in ((1, 1), (3, 3), (4, 4)):
        buffer.push(sequence, SSRC, frame(value))
    assert drain(buffer, 4) == [1, 0, 3, 4]
    assert buffer.counters.lost == 1


def test_sequence_numbers_wrap() -> None:
    buffer = JitterBuffer(delay_frames=4)
    for sequence, value in ((65534, 1), (0, 3), (65535, 2), (1, 4)):
        assert buffer.push(sequence, SSRC, frame(value))
    assert drain(buffer, 4) == [1, 2, 3, 4]
    assert buffer.counters.late == 0


def test_running_dry_makes_the_delay_one_frame_longer() -> None:
    buffer = JitterBuffer(delay_frames=2)
    buffer.push(1, SSRC, frame(1))
    buffer.push(2, SSRC, frame(2))
    assert drain(buffer, 3) == [1, 2, None]
    assert buffer.delay_frames == 3
    buffer.push(3, SSRC, frame(3))
    buffer.push(4, SSRC, frame(4))
    assert buffer.pop() is None
    buffer.push(5, SSRC, frame(5))
    assert drain(buffer, 3) == [3, 4, 5]


def test_the_delay_grows_only_up_to_the_maximum() -> None:
    buffer = JitterBuffer(delay_frames=1, max_delay_frames=3)
    sequence = 0
    for _ in range(6):
        while buffer.pop() is None:
            sequence += 1
            buffer.push(sequence, SSRC, frame(1))
        drain(buffer, 5)
    assert buffer.delay_frames == 3
    assert buffer.counters.underruns == 6


def test_a_calm_stream_shortens_the_delay_again() -> None:
    buffer = JitterBuffer(delay_frames=2, calm_frames=5)
    buffer.push(1, SSRC, frame(1))
    buffer.push(2, SSRC, frame(2))
    drain(buffer, 3)
    assert buffer.delay_frames == 3
    for sequence in range(3, 6):
        buffer.push(sequence, SSRC, frame(sequence))
    played = []
    for sequence in range(6, 12):
        played.append(buffer.pop())
        buffer.push(sequence, SSRC, frame(sequence))
    assert buffer.delay_frames == 2
    assert buffer.counters.dropped == 1
    # One frame was dropped to shorten the delay: 3..7 played, 8 skipped, then 9.
    assert [p[0] if p else None for p in played] == [3, 4, 5, 6, 7, 9]


def test_a_new_ssrc_restarts_the_buffer() -> None:
    buffer = JitterBuffer(delay_frames=1)
    buffer.push(100, SSRC, frame(1))
    buffer.push(101, SSRC, frame(2))
    buffer.push(7, SSRC + 1, frame(5))
    assert drain(buffer, 2) == [5, None]
    assert buffer.counters.restarts == 1


def test_a_packet_far_ahead_restarts_the_buffer() -> None:
    buffer = JitterBuffer(delay_frames=1, max_packets=16)
    buffer.push(1, SSRC, frame(1))
    buffer.push(1000, SSRC, frame(7))
    assert drain(buffer, 2) == [7, None]
    assert buffer.counters.restarts == 1


def test_piled_up_audio_is_trimmed_to_the_delay() -> None:
    buffer = JitterBuffer(delay_frames=3, margin_frames=4, max_packets=64)
    for sequence in range(20):
        buffer.push(sequence, SSRC, frame(sequence))
    assert drain(buffer, 1) == [0]
    assert buffer.buffered_bytes <= 3 * 320
    assert buffer.counters.dropped >= 15
    played = drain(buffer, 3)
    assert played == [17, 18, 19]


def test_longer_packets_come_out_as_20_ms_frames() -> None:
    buffer = JitterBuffer(delay_frames=3)
    buffer.push(1, SSRC, frame(1, 480))
    buffer.push(2, SSRC, frame(2, 480))
    out = [buffer.pop() for _ in range(3)]
    assert [len(o) if o else 0 for o in out] == [320, 320, 320]
    assert out[0] == frame(1)
    assert out[1] == frame(1, 160) + frame(2, 160)
    assert out[2] == frame(2)


def test_memory_is_bounded() -> None:
    buffer = JitterBuffer(delay_frames=3, max_packets=32)
    for sequence in range(0, 65536 * 2, 7):
        buffer.push(sequence % 65536, SSRC, frame(1))
    assert buffer.buffered_bytes <= 32 * 320


def test_running_dry_mid_frame_pads_the_frame() -> None:
    buffer = JitterBuffer(delay_frames=1)
    buffer.push(1, SSRC, frame(1, 480))
    first = buffer.pop()
    second = buffer.pop()
    assert first == frame(1)
    assert second == frame(1, 160) + bytes(160)
    assert buffer.counters.underruns == 1
    assert buffer.pop() is None


def test_trimming_also_drops_audio_already_split_into_frames() -> None:
    buffer = JitterBuffer(delay_frames=3, margin_frames=2)
    for sequence in range(20):
        buffer.push(sequence, SSRC, frame(sequence, 480))
    out = buffer.pop()
    assert out == frame(0)
    assert buffer.buffered_bytes <= 3 * 320 + 480
    assert buffer.counters.dropped > 10
