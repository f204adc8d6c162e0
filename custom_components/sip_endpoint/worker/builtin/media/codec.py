"""G.711 (PCMU, PCMA) through audioop, resampling and sample-format conversion.

All linear audio here is signed 16-bit little-endian ("s16le"), the format audioop
uses on this platform's byte order; WAV files store the same.
"""

import audioop
import sys

SAMPLE_WIDTH = 2
RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_WIDTH

_LITTLE_ENDIAN = sys.byteorder == "little"


class G711:
    """One G.711 law: encode 16-bit linear PCM to it and decode it back."""

    __slots__ = ("_silence", "name")

    def __init__(self, name: str) -> None:
        """Create the codec for ``name``: "PCMU" (μ-law) or "PCMA" (A-law)."""
        if name not in ("PCMU", "PCMA"):
            raise ValueError(f"unknown G.711 law {name!r}")
        self.name = name
        self._silence = self.encode(bytes(FRAME_BYTES))

    def encode(self, pcm: bytes) -> bytes:
        """Return the G.711 bytes of s16le samples (one byte per sample)."""
        native = _to_native(pcm)
        if self.name == "PCMU":
            return audioop.lin2ulaw(native, SAMPLE_WIDTH)
        return audioop.lin2alaw(native, SAMPLE_WIDTH)

    def decode(self, payload: bytes) -> bytes:
        """Return the s16le samples of G.711 bytes (two bytes per payload byte)."""
        if self.name == "PCMU":
            native = audioop.ulaw2lin(payload, SAMPLE_WIDTH)
        else:
            native = audioop.alaw2lin(payload, SAMPLE_WIDTH)
        return _to_native(native)

    def silence(self, samples: int = FRAME_SAMPLES) -> bytes:
        """Return ``samples`` of encoded silence."""
        if samples == FRAME_SAMPLES:
            return self._silence
        return self.encode(bytes(samples * SAMPLE_WIDTH))


def _to_native(pcm: bytes) -> bytes:
    """Swap s16le to the machine's order and back (a no-op on little-endian hosts)."""
    if _LITTLE_ENDIAN:
        return pcm
    return audioop.byteswap(pcm, SAMPLE_WIDTH)  # pragma: no cover - big-endian hosts


class Resampler:
    """Converts a continuous mono 16-bit stream between two rates, keeping state."""

    __slots__ = ("_source", "_state", "_target")

    def __init__(self, source_rate: int, target_rate: int) -> None:
        """Resample from ``source_rate`` to ``target_rate`` (Hz)."""
        if source_rate <= 0 or target_rate <= 0:
            raise ValueError("sample rates must be positive")
        self._source = source_rate
        self._target = target_rate
        self._state: tuple[int, tuple[tuple[int, int], ...]] | None = None

    def convert(self, pcm: bytes) -> bytes:
        """Return the next chunk at the target rate (the state carries across chunks)."""
        if self._source == self._target:
            return pcm
        native = _to_native(pcm)
        converted, self._state = audioop.ratecv(
            native, SAMPLE_WIDTH, 1, self._source, self._target, self._state
        )
        return _to_native(converted)


def to_linear16(data: bytes, width: int) -> bytes:
    """Return little-endian PCM samples of ``width`` bytes (WAV order) as s16le.

    8-bit WAV samples are unsigned; wider ones are signed.
    """
    if width not in (1, 2, 3, 4):
        raise ValueError(f"unsupported sample width {width}")
    usable = len(data) - len(data) % width
    data = data[:usable]
    if width == 1:
        return _to_native(audioop.lin2lin(audioop.bias(data, 1, -128), 1, 2))
    if width == 2:
        return data
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        data = audioop.byteswap(data, width)
    return _to_native(audioop.lin2lin(data, width, 2))


def to_mono(pcm: bytes, channels: int) -> bytes:
    """Return the first two channels of interleaved s16le audio mixed to mono.

    Stereo is averaged; with more than two channels the others are dropped first.
    """
    if channels == 1:
        return pcm
    if channels < 1:
        raise ValueError("channel count must be positive")
    frame = SAMPLE_WIDTH * channels
    pcm = pcm[: len(pcm) - len(pcm) % frame]
    if channels > 2:
        pcm = b"".join(
            pcm[offset : offset + 2 * SAMPLE_WIDTH]
            for offset in range(0, len(pcm), frame)
        )
    return _to_native(audioop.tomono(_to_native(pcm), SAMPLE_WIDTH, 0.5, 0.5))
