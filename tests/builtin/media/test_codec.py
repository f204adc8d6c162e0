"""G.711 encoding, resampling and sample-format conversion."""

import math
import struct

import pytest

from custom_components.sip_endpoint.worker.builtin.media.codec import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    G711,
    Resampler,
    to_linear16,
    to_mono,
)
from tests.sipbed.audio import dominant_frequency, rms


def tone(
    frequency: float, count: int, rate: int = 8000, amplitude: int = 16000
) -> bytes:
    """Return s16le sine samples."""
    step = 2 * math.pi * frequency / rate
    return struct.pack(
        f"<{count}h", *(round(amplitude * math.sin(step * i)) for i in range(count))
    )


def samples(pcm: bytes) -> list[int]:
    """Return the s16le values."""
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_g711_round_trip_keeps_the_signal(law: str) -> None:
    codec = G711(law)
    original = tone(440, 8000)
    encoded = codec.encode(original)
    assert len(encoded) == 8000
    decoded = codec.decode(encoded)
    assert len(decoded) == len(original)
    before, after = samples(original), samples(decoded)
    error = [a - b for a, b in zip(before, after, strict=True)]
    # G.711 keeps a signal-to-noise ratio of more than 30 dB at this level.
    assert 20 * math.log10(rms(before) / rms(error)) > 30
    assert dominant_frequency(after, 8000) == pytest.approx(440, abs=2)


def test_g711_known_code_words() -> None:
    assert G711("PCMU").encode(bytes(4)) == b"\xff\xff"
    assert G711("PCMA").encode(bytes(4)) == b"\xd5\xd5"
    assert G711("PCMU").decode(b"\x00") == struct.pack("<h", -32124)
    assert G711("PCMA").decode(b"\x55") == struct.pack("<h", -8)


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_silence_frames_decode_to_near_zero(law: str) -> None:
    codec = G711(law)
    assert len(codec.silence()) == FRAME_SAMPLES
    assert len(codec.silence(80)) == 80
    assert max(abs(v) for v in samples(codec.decode(codec.silence()))) <= 8


def test_unknown_law_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown G"):
        G711("G722")


def test_resampler_doubles_and_keeps_the_frequency_across_chunks() -> None:
    original = tone(440, 8000)
    resampler = Resampler(8000, 16000)
    chunks = [
        resampler.convert(original[i : i + FRAME_BYTES])
        for i in range(0, len(original), FRAME_BYTES)
    ]
    joined = b"".join(chunks)
    assert len(joined) == pytest.approx(2 * len(original), abs=8)
    assert dominant_frequency(samples(joined), 16000) == pytest.approx(440, abs=2)
    assert joined == Resampler(8000, 16000).convert(original)


def test_resampler_down_and_same_rate() -> None:
    original = tone(1000, 44100, rate=44100)
    down = Resampler(44100, 8000).convert(original)
    assert len(down) // 2 == pytest.approx(8000, abs=2)
    assert dominant_frequency(samples(down), 8000) == pytest.approx(1000, abs=3)
    assert Resampler(8000, 8000).convert(original) is original
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)


def test_eight_bit_unsigned_becomes_signed_sixteen_bit() -> None:
    assert samples(to_linear16(bytes([128, 255, 0]), 1)) == [0, 127 * 256, -128 * 256]


def test_wider_samples_are_narrowed() -> None:
    three = struct.pack("<i", 0x123456 << 8)[1:] + b"\x00\x00\x80"
    assert samples(to_linear16(three, 3)) == [0x1234, -32768]
    four = struct.pack("<2i", 0x12345678, -(2**31))
    assert samples(to_linear16(four, 4)) == [0x1234, -32768]
    assert to_linear16(b"\x01\x02\x03", 2) == b"\x01\x02"
    with pytest.raises(ValueError, match="sample width"):
        to_linear16(b"", 5)


def test_stereo_and_more_channels_mix_to_mono() -> None:
    stereo = struct.pack("<4h", 1000, 3000, -2000, 0)
    assert samples(to_mono(stereo, 2)) == [2000, -1000]
    four = struct.pack("<8h", 1000, 3000, 9, 9, -2000, 0, 9, 9)
    assert samples(to_mono(four, 4)) == [2000, -1000]
    assert to_mono(stereo, 1) is stereo
    with pytest.raises(ValueError, match="channel"):
        to_mono(stereo, 0)
