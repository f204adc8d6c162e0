"""Bundled sounds, generated (never downloaded): chime, confirmation, ringtone, alert.

They are written once as mono 16-bit 16 kHz WAV files into a temporary folder of this
Home Assistant instance (with the page recordings), where both the SIP workers (into
calls) and the audio view (to media players) can use them.
"""

from collections.abc import Iterable
from enum import StrEnum
import hashlib
import math
import os
from pathlib import Path
import struct
import tempfile
import threading
import wave

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from ..const import DOMAIN

SOUND_RATE = 16000
_AMPLITUDE = 0.4


class Sound(StrEnum):
    """The generated sounds; the value is the file's stem."""

    CHIME = "chime"
    CONFIRMATION = "confirmation"
    RINGTONE = "ringtone"
    ALERT = "alert"


AUDIO_DIR: HassKey[Path] = HassKey(f"{DOMAIN}_audio_dir")


def audio_dir(hass: HomeAssistant) -> Path:
    """Return the folder of generated sounds and call recordings (set up first)."""
    return hass.data[AUDIO_DIR]


def _default_audio_dir(config_dir: str) -> Path:
    """Return a temporary folder of this Home Assistant instance (blocking)."""
    digest = hashlib.sha256(config_dir.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"{DOMAIN}-{digest}"


def _tone(frequencies: Iterable[float], seconds: float) -> list[float]:
    """Return a sum of sines with short fades, as floats in -1..1."""
    freqs = list(frequencies)
    count = int(seconds * SOUND_RATE)
    fade = min(count // 2, SOUND_RATE // 100)
    samples = []
    for index in range(count):
        value = sum(
            math.sin(2 * math.pi * freq * index / SOUND_RATE) for freq in freqs
        ) / len(freqs)
        envelope = min(1.0, index / fade, (count - index) / fade) if fade else 1.0
        samples.append(value * envelope)
    return samples


def resample_pcm(pcm: bytes, rate: int, target_rate: int) -> bytes:
    """Return 16-bit mono PCM at ``target_rate``, by linear interpolation."""
    if rate == target_rate or not pcm:
        return pcm
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    count = len(samples) * target_rate // rate
    last = len(samples) - 1
    out = []
    for index in range(count):
        position = index * rate / target_rate
        left = min(int(position), last)
        right = min(left + 1, last)
        weight = position - left
        out.append(round(samples[left] * (1 - weight) + samples[right] * weight))
    return struct.pack(f"<{len(out)}h", *out)


def _silence(seconds: float) -> list[float]:
    return [0.0] * int(seconds * SOUND_RATE)


def sound_cycle(sound: Sound) -> tuple[list[float], int]:
    """Return one cycle of a sound (-1..1 at SOUND_RATE) and how often it repeats."""
    if sound is Sound.CHIME:
        # Two descending notes, like a door chime.
        return _tone([784.0], 0.35) + _tone([659.0], 0.5) + _silence(0.2), 1
    if sound is Sound.CONFIRMATION:
        # Three short beeps.
        return _tone([1000.0], 0.12) + _silence(0.08), 3
    if sound is Sound.ALERT:
        # A two-tone warble, 30 s (players that cannot repeat still sound a while).
        return _tone([800.0], 0.5) + _tone([1000.0], 0.5), 30
    # A North American ring cadence (440 + 480 Hz, 2 s on, 4 s off), 30 s.
    return _tone([440.0, 480.0], 2.0) + _silence(4.0), 5


def write_wav(
    path: Path, samples: list[float], repeat: int = 1, rate: int = SOUND_RATE
) -> None:
    """Write mono 16-bit PCM, `samples` `repeat` times (blocking)."""
    frames = b"".join(
        int(max(-1.0, min(1.0, sample)) * _AMPLITUDE * 32767).to_bytes(
            2, "little", signed=True
        )
        for sample in samples
    )
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames * repeat)
    tmp.replace(path)


def ensure_sounds(folder: Path) -> dict[Sound, Path]:
    """Generate the sounds that are missing (blocking); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for sound in Sound:
        path = folder / f"{sound.value}.wav"
        if not path.is_file():
            write_wav(path, *sound_cycle(sound))
        paths[sound] = path
    return paths


async def async_ensure_sounds(hass: HomeAssistant) -> dict[Sound, Path]:
    """Generate the sounds in the executor; return their paths."""
    if AUDIO_DIR not in hass.data:
        hass.data[AUDIO_DIR] = await hass.async_add_executor_job(
            _default_audio_dir, hass.config.config_dir
        )
    return await hass.async_add_executor_job(ensure_sounds, audio_dir(hass))
