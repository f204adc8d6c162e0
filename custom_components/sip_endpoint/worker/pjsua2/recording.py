"""A call recording and the wait for its WAV header to be final."""

import logging
import time

import pjsua2 as pj

from ...protocol.payloads import EventName, RecordingDone
from .context import WorkerContext
from .ports import wav_duration

_LOGGER = logging.getLogger(__name__)

FINALISE_POLL = 0.1
FINALISE_ATTEMPTS = 20


class Recording:
    """An `AudioMediaRecorder` writing one call's audio to a WAV file."""

    def __init__(self, context: WorkerContext, call_id: str, path: str) -> None:
        """Create the recorder (the caller connects the call's audio to it)."""
        self._context = context
        self.call_id = call_id
        self.path = path
        self.started = time.monotonic()
        self.recorder: pj.AudioMediaRecorder | None = pj.AudioMediaRecorder()
        self.recorder.createRecorder(path)

    def close(self) -> None:
        """Drop the recorder, then report once the bridge has finalised the file."""
        self.recorder = None
        self._context.scheduler.call_later(FINALISE_POLL * 3, lambda: self._finish(0))

    def _finish(self, attempt: int) -> None:
        duration = wav_duration(self.path)
        if duration is None and attempt < FINALISE_ATTEMPTS:
            self._context.scheduler.call_later(
                FINALISE_POLL, lambda: self._finish(attempt + 1)
            )
            return
        if duration is None:
            _LOGGER.warning("Recording header never became final")
            duration = time.monotonic() - self.started
        self._context.emit(
            EventName.RECORDING_DONE,
            RecordingDone(call_id=self.call_id, path=self.path, duration=duration),
        )
