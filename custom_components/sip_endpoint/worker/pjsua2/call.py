"""Calls: inbound pages and rings, outbound announcements, their media and their end."""

from collections.abc import Callable
import logging
import time
from typing import TYPE_CHECKING, Any
import uuid

import pjsua2 as pj

from ...protocol.payloads import (
    CallDirection,
    CallEnded,
    CallPhase,
    CallStateChanged,
    DtmfDigit,
    EndCause,
    EventName,
    PlaybackDone,
)
from ..core.end_cause import end_cause
from ..core.sipmsg import parse_message, reason_cause
from .context import WorkerContext
from .guard import guarded, sip_callback
from .ports import FilePlayer, StreamPort
from .recording import Recording

if TYPE_CHECKING:
    from .account import ExtensionAccount

_LOGGER = logging.getLogger(__name__)

_DTMF_METHODS = {
    pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733",
    pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip_info",
}


def received_message(event: Any) -> str:
    """Return the raw SIP message a pjsua2 `SipEvent` carries, or an empty string."""
    try:
        if event.type == pj.PJSIP_EVENT_TSX_STATE:
            return str(event.body.tsxState.src.rdata.wholeMsg or "")
        if event.type == pj.PJSIP_EVENT_RX_MSG:
            return str(event.body.rxMsg.rdata.wholeMsg or "")
    except (AttributeError, TypeError):
        pass
    return ""


class WorkerCall(pj.Call):  # type: ignore[misc]
    """One call and everything attached to it."""

    def __init__(
        self,
        context: WorkerContext,
        account: "ExtensionAccount",
        direction: CallDirection,
        on_finished: Callable[["WorkerCall"], None],
        pjsua_call_id: int = pj.PJSUA_INVALID_ID,
        *,
        silent: bool = False,
    ) -> None:
        """Wrap a pjsua call; ``silent`` calls (refused ones) send no events.

        ``on_finished(call)`` runs once the call is disconnected, inside its pjsua2
        callback: it may only take note (`CallTable.finish`), not drop the call.
        """
        super().__init__(account, pjsua_call_id)
        self.context = context
        self._on_finished = on_finished
        self.account = account
        self.account_id = account.params.account_id
        self.direction = direction
        self.silent = silent
        self.call_id = uuid.uuid4().hex
        self.created_at = time.monotonic()
        self.answered = False
        self.local_hangup = False
        self.remote_bye = False
        self.cancel_cause: int | None = None
        self.disconnected = False
        self.phase: CallPhase | None = None
        self.audio: Any = None
        self.players: list[FilePlayer] = []
        self.recording: Recording | None = None
        self.stream: StreamPort | None = None
        self._on_media: list[Callable[[], None]] = []
        self.after_confirmed: Callable[[], None] | None = None

    # --- requests from the Home Assistant side -------------------------------------

    @property
    def ended(self) -> bool:
        """Return whether the call is disconnected (requests name an unknown call)."""
        return self.disconnected

    @property
    def has_audio(self) -> bool:
        """Return whether the call's audio is up (media requests need it)."""
        return self.audio is not None

    def ring(self) -> None:
        """Send 180 Ringing."""
        prm = pj.CallOpParam()
        prm.statusCode = 180
        self.answer(prm)
        self._enter(CallPhase.RINGING)

    def accept(self) -> None:
        """Send 200 OK."""
        prm = pj.CallOpParam()
        prm.statusCode = 200
        self.answer(prm)

    def end(self, code: int) -> None:
        """Hang up: a final answer ``code`` if not answered yet, BYE otherwise."""
        if self.disconnected:
            return
        self.local_hangup = True
        prm = pj.CallOpParam()
        if not self.answered and self.direction is CallDirection.INBOUND:
            prm.statusCode = code
        self.hangup(prm)

    def when_media(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if the audio is up, otherwise as soon as it is."""
        if self.audio is not None:
            action()
        else:
            self._on_media.append(action)

    def play(
        self,
        path: str,
        *,
        report: bool = True,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Play a WAV file into the call once; report its end, then run ``then``."""
        player = FilePlayer(
            self.context, lambda ended: self._playback_ended(ended, report, then)
        )
        player.open(path)
        player.startTransmit(self.audio)
        self.players.append(player)

    def _playback_ended(
        self, player: FilePlayer, report: bool, then: Callable[[], None] | None
    ) -> None:
        if player in self.players:
            self.players.remove(player)
            self._retire_player(player)
        if report and not self.silent:
            self.context.emit(
                EventName.PLAYBACK_DONE, PlaybackDone(call_id=self.call_id)
            )
        if then is not None:
            then()

    def _stop_playing(self) -> None:
        """Stop every file playing into the call."""
        players, self.players = self.players, []
        for player in players:
            self._retire_player(player)

    def _retire_player(self, player: FilePlayer) -> None:
        player.release()
        if self.audio is not None and not self.disconnected:
            player.stopTransmit(self.audio)
        self.context.retire(player)

    def record(self, path: str) -> None:
        """Record the caller's audio to ``path`` until the call ends."""
        if self.recording is not None:
            raise ValueError("this call is already being recorded")
        self.recording = Recording(self.context, self.call_id, path)
        self.audio.startTransmit(self.recording.recorder)

    def set_streaming(self, enable: bool) -> None:
        """Start or stop `audio` events with the caller's audio."""
        if enable and self.stream is None:
            self.stream = StreamPort(self.context, self.call_id)
            self.audio.startTransmit(self.stream)
        elif enable and self.stream is not None:
            self.stream.enabled = True
        elif self.stream is not None:
            self.stream.enabled = False
            if self.audio is not None and not self.disconnected:
                self.audio.stopTransmit(self.stream)
            self.context.retire(self.stream)
            self.stream = None

    # --- pjsua2 callbacks (polling thread) ----------------------------------------

    @sip_callback
    def onCallState(self, prm: Any) -> None:
        """Follow the call through its states."""
        info = self.getInfo()
        state = info.state
        if (
            state == pj.PJSIP_INV_STATE_CALLING
            and self.direction is CallDirection.OUTBOUND
        ):
            self._enter(CallPhase.CALLING)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.answered = True
            self._enter(CallPhase.CONFIRMED)
            if self.after_confirmed is not None:
                action, self.after_confirmed = self.after_confirmed, None
                self.when_media(action)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._note_cancel(received_message(prm.e))
            self._disconnected(info)

    @sip_callback
    def onCallTsxState(self, prm: Any) -> None:
        """Notice a remote BYE, and a CANCEL's Reason header."""
        event = prm.e
        if event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = event.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAS:
            return
        if tsx.method == "BYE":
            self.remote_bye = True
        elif tsx.method == "CANCEL":
            self._note_cancel(received_message(event), cancel=True)

    def _note_cancel(self, raw: str, *, cancel: bool = False) -> None:
        if not raw:
            return
        message = parse_message(raw)
        if not (cancel or message.start_line.upper().startswith("CANCEL ")):
            return
        cause = reason_cause(message.header("reason"))
        if self.cancel_cause is None or cause is not None:
            self.cancel_cause = cause if cause is not None else 487

    @sip_callback
    def onCallMediaState(self, prm: Any) -> None:
        """Pick up the call's audio once it is active and run what waited for it."""
        info = self.getInfo()
        for media in info.media:
            if (
                media.type == pj.PJMEDIA_TYPE_AUDIO
                and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
            ):
                self.audio = self.getAudioMedia(media.index)
                break
        else:
            self.audio = None
            return
        actions, self._on_media = self._on_media, []
        for action in actions:
            try:
                action()
            except pj.Error as err:
                _LOGGER.warning("Media action failed: %s", err.info())

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:
        """Report a DTMF digit, once per digit.

        RFC 4733 digits arrive on pjsua's media thread, SIP INFO digits on the
        polling thread; this only sends an event, which is safe from either.
        """
        if self.silent:
            return
        self.context.emit(
            EventName.DTMF,
            DtmfDigit(
                call_id=self.call_id,
                account_id=self.account_id,
                digit=str(prm.digit),
                method=_DTMF_METHODS.get(prm.method, "rfc4733"),
            ),
        )

    # --- the end ---------------------------------------------------------------------

    def _enter(self, phase: CallPhase) -> None:
        if phase is self.phase or self.silent:
            return
        self.phase = phase
        self.context.emit(
            EventName.CALL_STATE,
            CallStateChanged(
                call_id=self.call_id, account_id=self.account_id, phase=phase
            ),
        )

    def _disconnected(self, info: Any) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        code = int(info.lastStatusCode)
        duration = (
            info.connectDuration.sec + info.connectDuration.msec / 1000
            if self.answered
            else 0.0
        )
        cause = self._end_cause(code)
        self.audio = None
        self._on_media.clear()
        if not self.silent:
            self._enter(CallPhase.DISCONNECTED)
            self.context.emit(
                EventName.CALL_ENDED,
                CallEnded(
                    call_id=self.call_id,
                    account_id=self.account_id,
                    direction=self.direction,
                    cause=cause,
                    code=code,
                    reason=str(info.lastReason),
                    answered=self.answered,
                    duration=float(duration),
                ),
            )
        # Never drop a call inside its own callback: the polling loop reaps it.
        self._on_finished(self)

    def _end_cause(self, code: int) -> EndCause:
        return end_cause(self, code)

    def release_media(self) -> None:
        """Drop players and the stream; close the recording (polling thread)."""
        self._stop_playing()
        self.set_streaming(False)
        self.after_confirmed = None
        self._on_media.clear()
        if self.recording is not None:
            self.recording.close()
            self.recording = None
