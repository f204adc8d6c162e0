"""WAV files played into a call as 20 ms frames of 8 kHz 16-bit mono PCM.

`load_wav` reads a whole file (at most `MAX_WAV_BYTES`) and converts it at once:
PCM of 8, 16, 24 or 32 bits, A-law or μ-law, WAVE_FORMAT_EXTENSIBLE wrapping those,
any channel count (the first two are mixed), any rate (resampled to 8 kHz). Anything
else raises `WavError` with a reason. `Player` then hands out one frame per tick,
once or looped. `check_wav` checks a file's size and header without reading its audio,
so a caller can refuse a bad file at once and convert a large one in a thread.
"""

import os
from pathlib import Path
import struct

from .codec import FRAME_BYTES, G711, RATE, Resampler, to_linear16, to_mono

MAX_WAV_BYTES = 50 * 1024 * 1024
HEADER_PROBE_BYTES = 64 * 1024
MAX_CHUNKS = 1024
MAX_CHANNELS = 16
MIN_RATE = 1000
MAX_RATE = 384000

FORMAT_PCM = 1
FORMAT_FLOAT = 3
FORMAT_ALAW = 6
FORMAT_ULAW = 7
FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    FORMAT_FLOAT: "IEEE float",
    2: "MS ADPCM",
    0x11: "IMA ADPCM",
    0x55: "MP3",
}


class WavError(ValueError):
    """A WAV file that cannot be played: unreadable, too large or an unsupported format."""


def _chunks(data: bytes, name: str) -> tuple[bytes, bytes]:
    """Return the fmt chunk and the data chunk of a RIFF WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt: bytes | None = None
    offset = 12
    for _ in range(MAX_CHUNKS):
        if offset + 8 > len(data):
            break
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(f"{name}: data chunk before the fmt chunk")
            return fmt, body
        offset += 8 + size + (size & 1)
    if fmt is None:
        raise WavError(f"{name}: no fmt chunk")
    raise WavError(f"{name}: no data chunk")


def _format(fmt: bytes, name: str) -> tuple[int, int, int, int]:
    """Return encoding tag, channels, rate and bits of a fmt chunk we can play."""
    if len(fmt) < 16:
        raise WavError(f"{name}: fmt chunk too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise WavError(f"{name}: extensible fmt chunk too short")
        (tag,) = struct.unpack_from("<H", fmt, 24)
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(f"{name}: unsupported channel count {channels}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(f"{name}: unsupported sample rate {rate}")
    if tag == FORMAT_PCM:
        if bits not in (8, 16, 24, 32):
            raise WavError(f"{name}: unsupported PCM sample size {bits} bits")
    elif tag in (FORMAT_ALAW, FORMAT_ULAW):
        if bits != 8:
            raise WavError(f"{name}: G.711 WAV must have 8-bit samples")
    else:
        kind = _FORMAT_NAMES.get(tag, f"format {tag:#06x}")
        raise WavError(
            f"{name}: unsupported WAV encoding {kind} (use PCM, A-law or μ-law)"
        )
    return tag, channels, rate, bits


def _decode(fmt: bytes, body: bytes, name: str) -> bytes:
    """Return the data chunk as 8 kHz s16le mono."""
    tag, channels, rate, bits = _format(fmt, name)
    if tag == FORMAT_PCM:
        pcm = to_linear16(body, bits // 8)
    else:
        pcm = G711("PCMA" if tag == FORMAT_ALAW else "PCMU").decode(body)
    pcm = to_mono(pcm, channels)
    return Resampler(rate, RATE).convert(pcm)


def check_wav(path: str) -> int:
    """Check a WAV file's size and header without reading its audio; return its size.

    Raises WavError as `load_wav` would for a missing, too large or unsupported file
    (only a file whose header is fine but whose data cannot be read still fails later).
    """
    name = Path(path).name
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(HEADER_PROBE_BYTES)
    except OSError as err:
        raise WavError(f"{name}: cannot read: {err.strerror or err}") from None
    if size > MAX_WAV_BYTES:
        raise WavError(f"{name}: larger than {MAX_WAV_BYTES // (1024 * 1024)} MiB")
    fmt, _ = _chunks(head, name)
    _format(fmt, name)
    return size


def load_wav(path: str) -> bytes:
    """Read a WAV file and return its audio as 8 kHz 16-bit mono PCM (s16le).

    Raises WavError for a missing, unreadable, too large or unsupported file.
    """
    name = Path(path).name
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_WAV_BYTES + 1)
    except OSError as err:
        raise WavError(f"{name}: cannot read: {err.strerror or err}") from None
    if len(data) > MAX_WAV_BYTES:
        raise WavError(f"{name}: larger than {MAX_WAV_BYTES // (1024 * 1024)} MiB")
    fmt, body = _chunks(data, name)
    return _decode(fmt, body, name)


class Player:
    """Hands out one 20 ms frame per tick, once (then None) or looped."""

    __slots__ = ("_loop", "_pcm", "_position", "finished")

    def __init__(self, pcm: bytes, *, loop: bool) -> None:
        """Play ``pcm`` (8 kHz s16le mono); an empty file finishes at once."""
        self._pcm = memoryview(pcm)
        self._loop = loop
        self._position = 0
        self.finished = not pcm

    def next_frame(self) -> bytes | None:
        """Return the next frame (the last one padded with silence), or None at the end."""
        if self.finished:
            return None
        pcm = self._pcm
        end = self._position + FRAME_BYTES
        frame = bytes(pcm[self._position : end])
        self._position = end
        if end >= len(pcm):
            if self._loop:
                self._position = 0
                while len(frame) < FRAME_BYTES:
                    self._position = min(FRAME_BYTES - len(frame), len(pcm))
                    frame += bytes(pcm[: self._position])
            else:
                self.finished = True
                frame += bytes(FRAME_BYTES - len(frame))
        return frame
