"""Audio ports of a call: file players, recorders and the PCM stream."""

import base64
from collections.abc import Callable
import contextlib
import itertools
from pathlib import Path
import wave

import pjsua2 as pj

from ...protocol.payloads import AudioFrame, EventName
from .context import WorkerContext
from .guard import guarded

STREAM_CLOCK_RATE = 16000
STREAM_FRAME_USEC = 20000


class FilePlayer(pj.AudioMediaPlayer):  # type: ignore[misc]
    """Plays a WAV file once; reports its end to the polling thread."""

    def __init__(
        self, context: WorkerContext, on_end: Callable[["FilePlayer"], None]
    ) -> None:
        """Call ``on_end(player)`` on the polling thread when the file has played once."""
        super().__init__()
        self._context = context
        self._on_end: Callable[[FilePlayer], None] | None = on_end
        self._ended = False

    def open(self, path: str) -> None:
        """Open the file (played once: it does not loop)."""
        self.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)

    @guarded
    def onEof2(self) -> None:
        """Hand the end of the file to the polling thread (runs on the clock thread)."""
        if not self._ended:
            self._ended = True
            self._context.post(self._ended_on_polling_thread)

    def _ended_on_polling_thread(self) -> None:
        if self._on_end is not None:
            self._on_end(self)

    def release(self) -> None:
        """Forget the end callback, so no reference cycle outlives the call."""
        self._on_end = None


class StreamPort(pj.AudioMediaPort):  # type: ignore[misc]
    """Receives a call's audio from the bridge and sends it out as `audio` events."""

    def __init__(self, context: WorkerContext, call_id: str) -> None:
        """Create the port in the conference bridge."""
        super().__init__()
        self._context = context
        self._call_id = call_id
        self._seq = itertools.count()
        self.enabled = True
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, STREAM_CLOCK_RATE, 1, STREAM_FRAME_USEC, 16)
        self.rate = STREAM_CLOCK_RATE
        self.createPort(f"stream-{call_id[:8]}", fmt)

    @guarded
    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        """Copy the samples and hand them to the writer (runs on the clock thread)."""
        if not self.enabled or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return
        pcm = bytes(frame.buf)
        if not pcm:
            return
        self._context.emit(
            EventName.AUDIO,
            AudioFrame(
                call_id=self._call_id,
                seq=next(self._seq),
                rate=self.rate,
                pcm=base64.b64encode(pcm).decode("ascii"),
            ),
        )


def wav_duration(path: str) -> float | None:
    """Return a WAV file's duration, or None while its header is not final."""
    with contextlib.suppress(OSError, wave.Error, EOFError):
        if Path(path).stat().st_size <= 44:
            return 0.0
        with wave.open(path, "rb") as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
        if frames > 0 and rate > 0:
            return frames / rate
    return None
