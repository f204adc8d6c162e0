"""The caller's audio written to a 16-bit mono WAV file.

Frames arrive as 8 kHz s16le (one per 20 ms tick) and are written as they come,
resampled to 16 kHz when asked. The file is written through Python's buffered I/O, so a
frame costs a memory copy, not a disk write, and the buffer is flushed once per second of
audio: a write error (disk full) then surfaces within a second whatever the interpreter's
buffer size (8 KiB on CPython 3.13, 128 KiB on 3.14), ends the recording with a warning,
and the duration counts only the audio that reached the file. `close` writes the final
WAV header and returns the duration.
"""

import logging
import wave

from .codec import RATE, SAMPLE_WIDTH, Resampler

_LOGGER = logging.getLogger(__name__)

RATES = (8000, 16000)
FLUSH_SECONDS = 1


class Recorder:
    """One WAV recording."""

    def __init__(self, path: str, *, rate: int = RATE) -> None:
        """Create the file (OSError when it cannot be); ``rate`` is 8000 or 16000."""
        if rate not in RATES:
            raise ValueError(f"recording rate must be one of {RATES}, not {rate}")
        self.path = path
        self.rate = rate
        self._resampler = Resampler(RATE, rate)
        self._frames = 0
        self._flushed_frames = 0
        self._wav: wave.Wave_write | None = None
        self._file = open(path, "wb")
        try:
            wav = wave.open(self._file, "wb")
            wav.setnchannels(1)
            wav.setsampwidth(SAMPLE_WIDTH)
            wav.setframerate(rate)
            wav.writeframesraw(b"")
        except BaseException:
            self._file.close()
            raise
        self._wav = wav

    @property
    def duration(self) -> float:
        """Return the seconds recorded; after a write error, only what reached the file."""
        return self._frames / self.rate

    @property
    def closed(self) -> bool:
        """Return whether the file is closed."""
        return self._wav is None

    def write(self, pcm: bytes) -> None:
        """Append 8 kHz s16le mono audio."""
        if self._wav is None:
            return
        data = self._resampler.convert(pcm)
        frames = self._frames + len(data) // SAMPLE_WIDTH
        try:
            self._wav.writeframesraw(data)
            if frames - self._flushed_frames >= self.rate * FLUSH_SECONDS:
                self._file.flush()
                self._flushed_frames = frames
        except OSError as err:
            _LOGGER.warning("Recording stopped: cannot write: %s", err.strerror or err)
            # What was still buffered is lost with the file's tail.
            self._frames = self._flushed_frames
            self._close()
            return
        self._frames = frames

    def _close(self) -> None:
        wav, self._wav = self._wav, None
        if wav is None:
            return
        try:
            wav.close()
        except OSError as err:
            _LOGGER.warning("Recording header not written: %s", err.strerror or err)
        try:
            self._file.close()
        except OSError as err:
            _LOGGER.warning("Recording not closed cleanly: %s", err.strerror or err)

    def close(self) -> float:
        """Write the final header, close the file and return the duration (seconds)."""
        self._close()
        return self.duration
