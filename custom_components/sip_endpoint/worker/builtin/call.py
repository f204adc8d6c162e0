"""One call of the built-in engine: what inbound and outbound calls share.

:class:`BuiltinCall` implements ``interfaces.Call`` for both directions: its
protocol id, its media (play, record, stream, DTMF through a
:class:`~.media.session.MediaSession`), the requests the peer sends inside the dialog
(BYE, ACK, re-INVITE, UPDATE, INFO; the stack answers OPTIONS), the BYE we send,
and the end: the ``call_state`` / ``call_ended`` events with the same causes as the
pjsua2 worker (``worker/pjsua2/call.py``), the ``recording_done`` after them, and
the removal from the stack. ``inbound.InboundCall`` (UAS) and
``outbound.OutboundCall`` (UAC) add the INVITE transaction of each side.

The two entry points the stack calls are beside their classes:
``inbound.accept_incoming_call`` and ``outbound.start_outbound_call``. Nothing raises
out of a SIP callback: each handler logs what went wrong and answers 500 where an
answer is due.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, Final
import uuid

from ...protocol.payloads import (
    AudioFrame,
    CallDirection,
    CallEnded,
    CallPhase,
    CallStateChanged,
    DtmfDigit,
    EndCause,
    EventName,
    PlaybackDone,
    RecordingDone,
    Transport,
)
from ...protocol.wire import ErrorCode
from ..core.dispatch import RequestError
from ..core.end_cause import end_cause
from .info_dtmf import info_digit
from .media.session import MediaSession, NoCommonCodecError, SdpError, WavError
from .registration.target import Destination, TargetError, local_address, resolve
from .session_timer import MIN_SE, answer_session_timer
from .sip.message import (
    REASON_PHRASES,
    SipRequest,
    SipResponse,
    SipUri,
    make_response,
    new_branch,
)
from .sip.transaction import InviteOkRetransmitter
from .sip.transport import TransportError, via_for

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from .callhost import CallHost
    from .dialog import Dialog
    from .registration.account import BuiltinAccount
    from .sip.transaction import ServerTransaction
    from .sip.transport import Source, Target

_LOGGER = logging.getLogger(__name__)

SDP: Final = "application/sdp"
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
SUPPORTED: Final = "timer"
USER_AGENT: Final = "sip-endpoint builtin"
AUTH_HEADERS: Final = frozenset({"authorization", "proxy-authorization"})
_ANY_HOST: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared only
# Tasks that must outlive the call object (a BYE sent as the call ends).
_BACKGROUND: set[asyncio.Task[Any]] = set()


class BuiltinCall:
    """One call and everything attached to it (both directions)."""

    def __init__(
        self,
        host: CallHost,
        account: BuiltinAccount,
        direction: CallDirection,
        transport: str,
    ) -> None:
        """Belong to ``account``; SIP goes over ``transport`` (udp, tcp, tls)."""
        self._host = host
        self._account = account
        self.account_id = account.params.account_id
        self.direction = direction
        self.transport = transport.lower()
        self._call_id = uuid.uuid4().hex
        self.dialog: Dialog | None = None
        self.media: MediaSession | None = None
        self.media_up = False
        self.phase: CallPhase | None = None
        self.announced = True  # inbound calls: only once `incoming_call` is out
        self.answered = False
        self.confirmed_at: float | None = None
        self.local_hangup = False
        self.remote_bye = False
        self.cancel_cause: int | None = None
        self.local_host = ""  # our address toward the peer (Via, Contact, SDP)
        self._ended = False
        self._recording: str | None = None
        self._stream_seq = itertools.count()
        self._on_media: list[Callable[[], None]] = []
        self._pending_acks: dict[int, tuple[InviteOkRetransmitter, bool]] = {}
        self._timers: list[asyncio.TimerHandle] = []

    # --- interfaces.Call -----------------------------------------------------------

    @property
    def call_id(self) -> str:
        """Return the call's id in the worker protocol."""
        return self._call_id

    @property
    def account(self) -> BuiltinAccount:
        """Return the extension the call belongs to."""
        return self._account

    @property
    def ended(self) -> bool:
        """Return whether the call is over."""
        return self._ended

    @property
    def has_audio(self) -> bool:
        """Return whether the call's audio is up."""
        return self.media_up and self.media is not None and not self._ended

    def owns(self, request: SipRequest) -> bool:
        """Return whether an in-dialog request belongs to this call."""
        return self.dialog is not None and self.dialog.matches(request)

    def ring(self) -> None:
        """Send 180 Ringing (inbound only)."""
        raise RequestError(ErrorCode.SIP_ERROR, "only an inbound call rings")

    def answer(self) -> None:
        """Answer 200 OK (inbound only)."""
        raise RequestError(ErrorCode.SIP_ERROR, "only an inbound call is answered")

    def hangup(self, code: int) -> None:
        """End the call (each direction does it its own way)."""
        raise NotImplementedError

    # --- media ---------------------------------------------------------------------

    def play(self, path: str) -> None:
        """Play a WAV file into the call once; ``playback_done`` at its end."""
        self.play_file(path, report=True)

    def play_file(
        self,
        path: str,
        *,
        report: bool,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Play ``path``; report its end (``report``) and run ``then`` after it."""
        media = self._active_media()

        def done() -> None:
            if report and not self._ended:
                self._emit(EventName.PLAYBACK_DONE, PlaybackDone(call_id=self.call_id))
            if then is not None:
                then()

        try:
            media.play(path, on_done=self._guarded(done))
        except (WavError, OSError) as err:
            raise RequestError(
                ErrorCode.SIP_ERROR, f"cannot play the file: {err}"
            ) from err

    def record(self, path: str) -> None:
        """Record the caller's audio to ``path`` until the call ends."""
        media = self._active_media()
        if self._recording is not None:
            raise ValueError("this call is already being recorded")
        try:
            media.record(path)
        except OSError as err:
            raise ValueError(f"cannot record to this file: {err.strerror}") from err
        self._recording = path

    def set_streaming(self, enable: bool) -> None:
        """Start or stop ``audio`` events with the caller's audio."""
        if not enable:
            if self.media is not None:
                self.media.set_stream(None)
            return
        self._active_media().set_stream(self._guarded_audio)

    def when_media(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if the audio is up, else as soon as it is."""
        if self.has_audio:
            action()
        else:
            self._on_media.append(action)

    def _active_media(self) -> MediaSession:
        if not self.has_audio or self.media is None:
            raise RequestError(
                ErrorCode.NO_ACTIVE_AUDIO, "the call has no active audio"
            )
        return self.media

    def start_media(self) -> None:
        """Start sending and receiving RTP and run what waited for the audio."""
        if self.media is None or self._ended:
            return
        self.media.start()
        self.media_up = True
        actions, self._on_media = self._on_media, []
        for action in actions:
            try:
                action()
            except Exception as err:  # noqa: BLE001 - one failed action, not the call
                _LOGGER.warning("Media action failed: %s", err)

    def attach_media(self, media: MediaSession) -> None:
        """Take the call's media session; its RFC 4733 digits become `dtmf` events."""
        self.media = media
        media.on_dtmf = self._guarded_digit

    def _guarded_audio(self, pcm: bytes, rate: int) -> None:
        try:
            self._emit(
                EventName.AUDIO,
                AudioFrame(
                    call_id=self.call_id,
                    seq=next(self._stream_seq),
                    rate=rate,
                    pcm=base64.b64encode(pcm).decode("ascii"),
                ),
            )
        except Exception:
            _LOGGER.exception("Audio frame dropped")

    def _guarded_digit(self, digit: str) -> None:
        try:
            self._digit(digit, "rfc4733")
        except Exception:
            _LOGGER.exception("DTMF digit dropped")

    def _digit(self, digit: str, method: str) -> None:
        if self._ended or not self.announced:
            return
        self._emit(
            EventName.DTMF,
            DtmfDigit(
                call_id=self.call_id,
                account_id=self.account_id,
                digit=digit,
                method=method,
            ),
        )

    def _guarded(self, action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                action()
            except Exception:
                _LOGGER.exception("Call callback failed")

        return run

    # --- addresses and sending ------------------------------------------------------

    def _choose_local_host(self, remote_host: str) -> str:
        """Return the address the peer reaches us at (the bound one, or the route's)."""
        bound = self._host.bind_host
        if bound not in _ANY_HOST:
            return bound
        return local_address(Destination(Transport.UDP, remote_host, remote_host, 5060))

    def _local_port(self) -> int:
        layer = self._host.transactions
        if layer.transport is None:
            return 0
        return layer.transport.local_port(self.transport)

    def contact(self) -> str:
        """Return our Contact value (a name-addr)."""
        host = self.local_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        params: dict[str, str | None] = {}
        if self.transport != "udp":
            params["transport"] = self.transport
        uri = SipUri(
            "sip", self._account.params.extension, host, self._local_port(), params
        )
        return f"<{uri}>"

    def _via(self) -> str:
        layer = self._host.transactions.sender
        return str(via_for(layer, self.transport, self.local_host, new_branch()))

    async def _target_for(self, uri: SipUri) -> Target:
        """Resolve a next-hop URI to a transport target (raises TargetError)."""
        name = uri.transport or self.transport
        try:
            transport = Transport(name)
        except ValueError:
            transport = Transport(self.transport)
        if transport is Transport.AUTO:
            transport = Transport.UDP
        return self._host.target_for(await resolve(uri, transport))

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task that logs its failure."""
        task = asyncio.get_running_loop().create_task(coroutine)
        _BACKGROUND.add(task)
        task.add_done_callback(_task_done)

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` seconds unless the call has ended."""

        def fire() -> None:
            if not self._ended:
                self._guarded(action)()

        self._timers.append(asyncio.get_running_loop().call_later(delay, fire))

    async def send_in_dialog(
        self,
        method: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        dialog: Dialog | None = None,
    ) -> SipResponse | None:
        """Send a request in the dialog; return its final response (None: not sent).

        A 401 or 407 is answered once with the extension's digest (a new CSeq).
        ``dialog`` is another dialog than the call's own (a forked answer's).
        """
        dialog = dialog or self.dialog
        if dialog is None:
            return None
        credentials: list[tuple[str, str]] = []
        for _ in range(2):
            request = dialog.request(
                method,
                via=self._via(),
                contact=self.contact() if method in ("INVITE", "UPDATE") else None,
                headers=[*(headers or []), *credentials],
                body=body,
                content_type=content_type,
            )
            try:
                target = await self._target_for(dialog.next_hop())
                transaction = self._host.transactions.send_request(request, target)
            except (TargetError, TransportError, ValueError) as err:
                _LOGGER.info("%s not sent: %s", method, err)
                return None
            response = await transaction.final()
            if (
                response.status not in (401, 407)
                or credentials
                or not self._account.authorize(
                    self._account.new_digest(), request, response
                )
            ):
                return response
            credentials = credentials_of(request)
        return response

    def send_bye(self, dialog: Dialog | None = None) -> None:
        """Send BYE in the background (its answer changes nothing)."""
        self.spawn(self._bye(dialog))

    async def _bye(self, dialog: Dialog | None) -> None:
        response = await self.send_in_dialog("BYE", dialog=dialog)
        if response is not None and response.status >= 300:
            _LOGGER.debug("BYE answered %s", response.status)

    # --- requests from the peer --------------------------------------------------------

    def handle_request(
        self,
        request: SipRequest,
        source: Source,
        transaction: ServerTransaction | None,
    ) -> None:
        """Answer a request of this call (never raises); no transaction: an ACK."""
        del source  # the transaction knows where its answers go
        try:
            if request.method.upper() == "ACK":
                self._on_ack(request)
            elif transaction is not None:
                self._handle(transaction)
        except Exception:
            _LOGGER.exception("Handling %s failed", request.method)
            if transaction is not None and request.method != "ACK":
                try:
                    transaction.respond(make_response(request, 500))
                except Exception:
                    _LOGGER.debug("Answering 500 failed", exc_info=True)

    def _handle(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        method = request.method.upper()
        if method == "CANCEL":
            self._on_cancel(transaction)
            return
        if self.dialog is not None and not self.dialog.accept_cseq(request):
            self._respond(transaction, 500, "Out of order CSeq")
            return
        if method == "BYE":
            self._respond(transaction, 200)
            self.remote_bye = True
            self.remote_hung_up()
        elif method in ("INVITE", "UPDATE"):
            self._on_offer(transaction)
        elif method == "INFO":
            self._respond(transaction, 200)
            digit = info_digit(request)
            if digit is not None:
                self._digit(digit, "sip_info")
        else:
            self._respond(transaction, 405, headers=[("Allow", ALLOW)])

    def _respond(
        self,
        transaction: ServerTransaction,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> SipResponse:
        request = transaction.request
        response = make_response(
            request,
            status,
            reason,
            to_tag=self.dialog.local_tag if self.dialog is not None else None,
            headers=headers or [],
            body=body,
            content_type=SDP if body else None,
            # The responses that make (or refresh) a dialog carry its route set
            # back to the caller (RFC 3261 12.1.1).
            copy_record_route=request.method == "INVITE" and 100 < status < 300,
        )
        transaction.respond(response)
        return response

    def remote_hung_up(self) -> None:
        """End the call after the peer's BYE (answered 200 already)."""
        self.finish(200, "Normal call clearing")

    def _on_cancel(self, transaction: ServerTransaction) -> None:
        """Answer a CANCEL for a call with nothing left to cancel: 200 only."""
        self._respond(transaction, 200)

    def _on_offer(self, transaction: ServerTransaction) -> None:
        """Answer a re-INVITE or UPDATE: our current SDP, the new remote address."""
        request = transaction.request
        timer = answer_session_timer(request)
        if timer.too_small:
            self._respond(transaction, 422, headers=[("Min-SE", str(MIN_SE))])
            return
        media = self.media
        if media is None:
            self._respond(transaction, 500)
            return
        expects_answer = False
        if request.content_type == SDP and request.body:
            try:
                sdp = media.answer_offer(request.body.decode("utf-8", "replace"))
            except SdpError as err:
                _LOGGER.info("Refusing an SDP offer: %s", err)
                self._respond(transaction, offer_refusal(err))
                return
        elif request.method == "INVITE":
            sdp = media.local_offer()
            expects_answer = True
        else:
            sdp = ""
        if self.dialog is not None:
            self.dialog.refresh_target(request)
        response = self._respond(
            transaction,
            200,
            headers=[
                ("Contact", self.contact()),
                ("Allow", ALLOW),
                ("Supported", SUPPORTED),
                *timer.headers,
            ],
            body=sdp.encode(),
        )
        if request.method == "INVITE":
            self.expect_ack(transaction, response, expects_answer=expects_answer)

    def expect_ack(
        self,
        transaction: ServerTransaction,
        response: SipResponse,
        *,
        expects_answer: bool,
        on_timeout: Callable[[], None] | None = None,
    ) -> None:
        """Retransmit a 2xx to an INVITE until its ACK (RFC 3261 13.3.1.4)."""
        retransmitter = InviteOkRetransmitter(
            self._host.transactions,
            response,
            transaction.source,
            reliable=transaction.source.transport.lower() != "udp",
            on_timeout=self._guarded(on_timeout) if on_timeout else None,
        )
        self._pending_acks[transaction.request.cseq.seq] = (
            retransmitter,
            expects_answer,
        )

    def _on_ack(self, request: SipRequest) -> None:
        pending = self._pending_acks.pop(request.cseq.seq, None)
        if pending is None:
            return  # a retransmitted ACK, or one for a non-2xx
        retransmitter, expects_answer = pending
        retransmitter.ack_received()
        if expects_answer and self.media is not None:
            try:
                self.media.apply_answer(request.body.decode("utf-8", "replace"))
            except SdpError as err:
                _LOGGER.info("The ACK's SDP answer is not usable: %s", err)
                self.acked(request, usable=False)
                return
        self.acked(request, usable=True)

    def acked(self, request: SipRequest, *, usable: bool) -> None:
        """Act on the ACK of a 2xx of ours (``usable``: its SDP exchange worked)."""
        if not usable:
            self.send_bye()
            self.finish(488, "Not Acceptable Here")

    # --- the end -----------------------------------------------------------------------

    def enter(self, phase: CallPhase) -> None:
        """Move to ``phase`` and report it (once per phase)."""
        if phase is self.phase or not self.announced:
            return
        self.phase = phase
        self._emit(
            EventName.CALL_STATE,
            CallStateChanged(
                call_id=self.call_id, account_id=self.account_id, phase=phase
            ),
        )

    def confirm(self) -> None:
        """Mark the call answered and acknowledged; report ``confirmed``."""
        if self._ended or self.answered:
            return
        self.answered = True
        self.confirmed_at = time.monotonic()
        self.enter(CallPhase.CONFIRMED)

    def finish(self, code: int, reason: str) -> None:
        """End the call: release its media, report its end, leave the stack."""
        if self._ended:
            return
        self._ended = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for retransmitter, _ in self._pending_acks.values():
            retransmitter.stop()
        self._pending_acks.clear()
        self._on_media.clear()
        duration = (
            time.monotonic() - self.confirmed_at
            if self.answered and self.confirmed_at is not None
            else 0.0
        )
        recorded = self._close_media()
        if self.announced:
            self.enter(CallPhase.DISCONNECTED)
            self._emit(
                EventName.CALL_ENDED,
                CallEnded(
                    call_id=self.call_id,
                    account_id=self.account_id,
                    direction=self.direction,
                    cause=self.end_cause(code),
                    code=code,
                    reason=reason or REASON_PHRASES.get(code, ""),
                    answered=self.answered,
                    duration=float(duration),
                ),
            )
            if self._recording is not None:
                self._emit(
                    EventName.RECORDING_DONE,
                    RecordingDone(
                        call_id=self.call_id,
                        path=self._recording,
                        duration=float(recorded or 0.0),
                    ),
                )
        self._host.forget_call(self)

    def _close_media(self) -> float | None:
        media, self.media = self.media, None
        self.media_up = False
        if media is None:
            return None
        media.on_dtmf = None
        try:
            return media.close()
        except Exception:
            _LOGGER.exception("Closing the call's media failed")
            return None

    def end_cause(self, code: int) -> EndCause:
        """Return why the call ended (core/end_cause.py, shared with pjsua2)."""
        return end_cause(self, code)

    def _emit(self, name: EventName, payload: Any) -> None:
        self._host.emit(name, payload)


def credentials_of(request: SipRequest) -> list[tuple[str, str]]:
    """Return the Authorization and Proxy-Authorization headers of ``request``."""
    return [
        (name, value)
        for name, value in request.headers.items()
        if name.lower() in AUTH_HEADERS
    ]


def offer_refusal(error: SdpError) -> int:
    """Return the answer to an unusable offer: 488 if it parsed, 400 if it did not."""
    return 488 if isinstance(error, NoCommonCodecError) else 400


def _task_done(task: asyncio.Task[Any]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        _LOGGER.error("Call task failed", exc_info=error)
