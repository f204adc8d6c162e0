"""Write test tones and analyse recorded audio (mono 16-bit PCM WAV files)."""

from __future__ import annotations

import math
import struct
import subprocess
from typing import TYPE_CHECKING
import wave

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

PCM_MAX = 32767


def write_tone(
    path: Path,
    frequency_hz: float,
    seconds: float,
    rate: int = 8000,
    amplitude: float = 0.5,
) -> Path:
    """Write a mono 16-bit sine tone (``frequency_hz`` 0 writes silence)."""
    count = round(seconds * rate)
    scale = amplitude * PCM_MAX
    step = 2 * math.pi * frequency_hz / rate
    samples = [round(scale * math.sin(step * index)) for index in range(count)]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{count}h", *samples))
    return path


def sox_sine(
    path: Path, *options: str, seconds: float = 1, frequency: int = 440
) -> Path:
    """Make a sine tone at half scale with the sox CLI, in the format ``options`` give.

    ``options`` are sox's output options, e.g. ``("-r", "8000", "-c", "1")``.
    """
    subprocess.run(
        [
            "sox",
            "-n",
            *options,
            str(path),
            "synth",
            str(seconds),
            "sine",
            str(frequency),
            "vol",
            "0.5",
        ],
        check=True,
        capture_output=True,
    )
    return path


def assert_tone(
    samples: list[int], rate: int, frequency: float, *, seconds: float = 1.0
) -> None:
    """Assert that a recording is a steady, loud tone at ``frequency`` (within 15 Hz).

    At least half a second must be heard; past its first 100 ms (the jitter buffer
    filling), ``seconds`` of it are analysed.
    """
    loud = trim_silence(samples)
    assert len(loud) > rate // 2, "less than half a second of audio"
    start = rate // 10
    steady = loud[start : start + round(seconds * rate)]
    assert rms(steady) > 0.05
    assert abs(dominant_frequency(steady, rate) - frequency) <= 15


def read_pcm(path: Path) -> tuple[list[int], int]:
    """Return the samples of a 16-bit WAV file (first channel) and its rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path.name}: only 16-bit PCM is supported")
        channels = wav.getnchannels()
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    values = struct.unpack(f"<{len(frames) // 2}h", frames)
    return list(values[::channels]), rate


def rms(samples: list[int]) -> float:
    """Return the root mean square of the samples, relative to full scale (0..1)."""
    if not samples:
        return 0.0
    return math.sqrt(sum(sample * sample for sample in samples) / len(samples)) / (
        PCM_MAX
    )


def dominant_frequency(samples: list[int], rate: int) -> float:
    """Return the frequency (Hz) with the most energy, interpolated between bins."""
    if len(samples) < 16:
        raise ValueError("too few samples to analyse")
    signal = np.asarray(samples, dtype=np.float64)
    signal = (signal - signal.mean()) * np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(signal))
    peak = int(np.argmax(spectrum[1:])) + 1
    offset = 0.0
    if 0 < peak < len(spectrum) - 1:
        left, centre, right = spectrum[peak - 1 : peak + 2]
        denominator = left - 2 * centre + right
        if denominator:
            offset = 0.5 * (left - right) / denominator
    return float((peak + offset) * rate / len(signal))


def trim_silence(samples: list[int], threshold: float = 0.02) -> list[int]:
    """Drop leading and trailing samples quieter than ``threshold`` of full scale."""
    limit = threshold * PCM_MAX
    loud = [index for index, sample in enumerate(samples) if abs(sample) > limit]
    if not loud:
        return []
    return samples[loud[0] : loud[-1] + 1]
