"""The bundled sounds are generated with the pitches and lengths they promise."""

from pathlib import Path
import struct

import pytest

from custom_components.sip_endpoint.calls.sounds import (
    SOUND_RATE,
    Sound,
    ensure_sounds,
    resample_pcm,
)
from tests.sipbed.audio import dominant_frequency, read_pcm, rms


@pytest.mark.parametrize(
    ("sound", "seconds", "first_hz"),
    [
        (Sound.CHIME, 1.05, 784.0),
        (Sound.CONFIRMATION, 0.6, 1000.0),
        (Sound.RINGTONE, 30.0, 460.0),  # 440 + 480 Hz: the peak lies between
        (Sound.ALERT, 30.0, 800.0),
    ],
)
def test_generated_sound(
    tmp_path: Path, sound: Sound, seconds: float, first_hz: float
) -> None:
    """Each sound has its length, its first pitch, and is loud enough."""
    paths = ensure_sounds(tmp_path)
    samples, rate = read_pcm(paths[sound])
    assert rate == SOUND_RATE
    assert len(samples) == pytest.approx(seconds * rate, abs=rate * 0.01)
    first = samples[int(rate * 0.02) : int(rate * 0.1)]
    assert rms(first) > 0.1
    assert abs(dominant_frequency(first, rate) - first_hz) < 25


def test_existing_sounds_are_kept(tmp_path: Path) -> None:
    """A sound already there is not written again."""
    first = ensure_sounds(tmp_path)
    stamps = {sound: path.stat().st_mtime_ns for sound, path in first.items()}
    again = ensure_sounds(tmp_path)
    assert {sound: path.stat().st_mtime_ns for sound, path in again.items()} == stamps
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("target_rate", [8000, 16000, 44100])
def test_resampled_chime_keeps_its_pitch(tmp_path: Path, target_rate: int) -> None:
    """The chime put before a page recorded at another rate still sounds at 784 Hz."""
    samples, rate = read_pcm(ensure_sounds(tmp_path)[Sound.CHIME])
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    resampled = resample_pcm(pcm, rate, target_rate)
    out = list(struct.unpack(f"<{len(resampled) // 2}h", resampled))
    assert len(out) == len(samples) * target_rate // rate
    first = out[int(target_rate * 0.02) : int(target_rate * 0.3)]
    assert abs(dominant_frequency(first, target_rate) - 784.0) < 15
