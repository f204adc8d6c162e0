"""An inbound call (UAS, RFC 3261 13.3): from the INVITE to the answer or refusal.

The INVITE server transaction has already sent 100 Trying. The call opens its media
and answers the SDP offer (488 when nothing in it is usable, 400 when it does not
parse; an INVITE without SDP gets our offer in the 200 and the answer comes in the
ACK), then announces itself with ``incoming_call`` as the pjsua2 worker does. ``ring`` sends 180, ``answer`` sends
200 with SDP, retransmitted until the ACK (no ACK within 64*T1: BYE, ended
``failed``). CANCEL gets 200 and the INVITE 487 (``cancel``, or ``answered_elsewhere``
for ``Reason: SIP;cause=200``). ``hangup`` before the answer sends the final code
given, after it a BYE.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from ...protocol.payloads import (
    CallDirection,
    CallPhase,
    EventName,
    IncomingCall,
)
from ...protocol.wire import ErrorCode
from ..core.dispatch import RequestError
from ..core.sipmsg import answer_after, display_name, reason_cause
from .call import ALLOW, SDP, SUPPORTED, BuiltinCall, offer_refusal
from .dialog import Dialog
from .media.session import MediaSession, SdpError
from .session_timer import MIN_SE, answer_session_timer
from .sip.message import REASON_PHRASES, SipParseError, make_response, new_tag

if TYPE_CHECKING:
    from .callhost import CallHost
    from .registration.account import BuiltinAccount
    from .sip.message import SipRequest
    from .sip.transaction import ServerTransaction

_LOGGER = logging.getLogger(__name__)

ACK_TIMEOUT_CODE: Final = 408


class InboundCall(BuiltinCall):
    """A call someone placed to one of our extensions."""

    def __init__(
        self,
        host: CallHost,
        account: BuiltinAccount,
        transaction: ServerTransaction,
    ) -> None:
        """Take the INVITE; raises SipParseError when it cannot make a dialog."""
        super().__init__(
            host, account, CallDirection.INBOUND, transaction.source.transport
        )
        self._invite_tx = transaction
        self._invite = transaction.request
        self.dialog = Dialog.as_uas(self._invite, new_tag())
        self.local_host = self._choose_local_host(transaction.source.host)
        self.announced = False
        self._final_sent = False
        self._sdp = ""
        self._offer_in_ack = False
        self._timer_headers: tuple[tuple[str, str], ...] = ()

    def start(self) -> None:
        """Set up the media and announce the call (in the background)."""
        self.spawn(self._setup())

    async def _setup(self) -> None:
        try:
            await self._prepare()
        except Exception:
            _LOGGER.exception("Setting up an inbound call failed")
            self._refuse(500)

    async def _prepare(self) -> None:
        invite = self._invite
        timer = answer_session_timer(invite)
        if timer.too_small:
            self._refuse(422, headers=[("Min-SE", str(MIN_SE))])
            return
        self._timer_headers = timer.headers
        bind = self._host.bind_host or "0.0.0.0"  # noqa: S104 - the worker's choice
        try:
            media = await MediaSession.open(bind, advertise_host=self.local_host)
        except OSError as err:
            _LOGGER.warning("No RTP port for a call: %s", err)
            self._refuse(500)
            return
        if self.ended:  # cancelled or hung up meanwhile
            media.close()
            return
        self.attach_media(media)
        if invite.content_type == SDP and invite.body:
            try:
                self._sdp = media.answer_offer(invite.body.decode("utf-8", "replace"))
            except SdpError as err:
                _LOGGER.info("Refusing an INVITE's SDP offer: %s", err)
                self._refuse(offer_refusal(err))
                return
        else:
            self._sdp = media.local_offer()
            self._offer_in_ack = True
        self._announce()

    def _announce(self) -> None:
        invite = self._invite
        alert_info = invite.headers.get("alert-info")
        call_info = invite.headers.get("call-info")
        from_header = invite.headers.get("from") or ""
        remote_uri = self.dialog.remote_uri if self.dialog is not None else from_header
        self.announced = True
        self._emit(
            EventName.INCOMING_CALL,
            IncomingCall(
                account_id=self.account_id,
                call_id=self.call_id,
                remote_uri=remote_uri,
                display_name=display_name(from_header),
                source=self._invite_tx.source.host,
                alert_info=alert_info,
                call_info=call_info,
                answer_after=answer_after(call_info, alert_info),
            ),
        )

    def _refuse(
        self, status: int, *, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """Answer the INVITE with a final error before it was announced (silent)."""
        if self._final_sent or self.ended:
            return
        self._final_sent = True
        self._respond(self._invite_tx, status, headers=headers)
        self.finish(status, REASON_PHRASES.get(status, ""))

    # --- requests from Home Assistant ----------------------------------------------

    def ring(self) -> None:
        """Send 180 Ringing."""
        if self._final_sent:
            raise RequestError(ErrorCode.SIP_ERROR, "the call is already answered")
        self._respond(self._invite_tx, 180, headers=[("Contact", self.contact())])
        self.enter(CallPhase.RINGING)

    def answer(self) -> None:
        """Send 200 OK with our SDP."""
        if self._final_sent:
            raise RequestError(ErrorCode.SIP_ERROR, "the call is already answered")
        self._final_sent = True
        response = self._respond(
            self._invite_tx,
            200,
            headers=[
                ("Contact", self.contact()),
                ("Allow", ALLOW),
                ("Supported", SUPPORTED),
                *self._timer_headers,
            ],
            body=self._sdp.encode(),
        )
        self.expect_ack(
            self._invite_tx,
            response,
            expects_answer=self._offer_in_ack,
            on_timeout=self._ack_timed_out,
        )
        if not self._offer_in_ack:
            self.start_media()

    def hangup(self, code: int) -> None:
        """Refuse with ``code`` before the answer; BYE after it."""
        if self.ended:
            return
        self.local_hangup = True
        if not self._final_sent:
            self._final_sent = True
            self._respond(self._invite_tx, code)
            self.finish(code, REASON_PHRASES.get(code, ""))
            return
        # Answered (acknowledged or not yet): BYE now rather than leave the peer up.
        self.send_bye()
        self.finish(200, "Normal call clearing")

    # --- requests from the peer -----------------------------------------------------

    def owns(self, request: SipRequest) -> bool:
        """Our dialog's requests, and a CANCEL of our INVITE (RFC 3261 9.2)."""
        if request.method.upper() == "CANCEL":
            found = self._host.transactions.find_invite_for_cancel(request)
            return found is not None and found is self._invite_tx
        return super().owns(request)

    def remote_hung_up(self) -> None:
        """End the call after the caller's BYE; an unanswered INVITE gets 487 first.

        A BYE after our 200 but before its ACK (RFC 3261 15 allows it once the
        caller has the 2xx; two proxy processes can reorder them) ends an answered
        call: it is confirmed first, so it ends ``bye``; the late ACK finds no call.
        """
        if not self._final_sent and not self.ended:
            self._final_sent = True
            self.cancel_cause = 487
            self._respond(self._invite_tx, 487)
            self.finish(487, "Request Terminated")
            return
        self.confirm()  # nothing when already confirmed or ended
        super().remote_hung_up()

    def _on_cancel(self, transaction: ServerTransaction) -> None:
        # Read the CANCEL before answering it: an answered transaction keeps only
        # what a retransmission needs (sip/transaction.py).
        cause = reason_cause(transaction.request.headers.get("reason"))
        self._respond(transaction, 200)
        if self._final_sent or self.ended:
            return
        self.cancel_cause = cause if cause is not None else 487
        self._final_sent = True
        self._respond(self._invite_tx, 487)
        self.finish(487, "Request Terminated")

    def acked(self, request: SipRequest, *, usable: bool) -> None:
        """Confirm the call on the ACK of our 200 (a re-INVITE's: see the base)."""
        if request.cseq.seq != self._invite.cseq.seq or self.answered:
            super().acked(request, usable=usable)
            return
        if not usable:
            self.send_bye()
            self.finish(488, "Not Acceptable Here")
            return
        if self._offer_in_ack:
            self.start_media()
        self.confirm()

    def _ack_timed_out(self) -> None:
        if self.answered or self.ended:
            return
        _LOGGER.info("No ACK for our 200: hanging up")
        self.send_bye()
        self.finish(ACK_TIMEOUT_CODE, "ACK Timeout")


def accept_incoming_call(
    stack: CallHost, account: BuiltinAccount, transaction: ServerTransaction
) -> None:
    """Take a new INVITE for ``account``: set up its media and announce it."""
    try:
        call = InboundCall(stack, account, transaction)
    except SipParseError as err:
        _LOGGER.info("Refusing an INVITE: %s", err.reason)
        transaction.respond(make_response(transaction.request, 400, err.reason[:80]))
        return
    stack.calls[call.call_id] = call
    call.start()
