"""The bundled sounds are generated with the pitches and lengths they promise."""

from pathlib import Path

import pytest

from custom_components.sip_endpoint.sounds import SOUND_RATE, Sound, ensure_sounds
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
