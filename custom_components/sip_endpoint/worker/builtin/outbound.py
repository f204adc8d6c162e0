"""An outbound call (UAC, RFC 3261 13.2): `make_call`'s INVITE, its answer and its end.

The INVITE carries our SDP offer and goes to the account's outbound proxy, else to
the target URI itself. A 401 or 407 is answered once with the extension's digest.
A 2xx is acknowledged (again for each retransmission), the call is confirmed and the
file plays once, then we hang up (at once when there is nothing to play), as the
pjsua2 worker's `make_call` does. A non-2xx ends the call ``rejected`` (``failed``
for a local failure: no answer, a transport error). Unanswered after the timeout,
or hung up before the answer, the INVITE is cancelled (CANCEL, then its 487).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Final
import weakref

from ...protocol.payloads import CallDirection, CallPhase
from ...protocol.wire import ErrorCode
from ..core.dispatch import RequestError
from ..core.uris import target_uri
from .call import ALLOW, SDP, SUPPORTED, USER_AGENT, BuiltinCall, credentials_of
from .dialog import Dialog
from .media.session import MediaSession, SdpError
from .registration.target import TargetError
from .sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    new_call_id,
    new_tag,
    parse_uri,
)
from .sip.transaction import cancel_request
from .sip.transport import TransportError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...protocol.payloads import MakeCallParams
    from .callhost import CallHost
    from .registration.account import BuiltinAccount
    from .sip.transaction import ClientTransaction
    from .sip.transport import Target

_LOGGER = logging.getLogger(__name__)

NOT_SENT_CODE: Final = 503
INTERNAL_CODE: Final = 500
MAX_FORKS: Final = 8  # second answers from other forks we ACK and hang up


class OutboundCall(BuiltinCall):
    """A call we place from one of our extensions (`make_call`)."""

    def __init__(
        self, host: CallHost, account: BuiltinAccount, params: MakeCallParams
    ) -> None:
        """Check the target; raises RequestError (bad_request) when it is no URI."""
        try:
            target = parse_uri(target_uri(params.target, account.params))
        except SipParseError as err:
            raise RequestError(
                ErrorCode.BAD_REQUEST, f"the target is not a SIP URI: {err.reason}"
            ) from None
        if target.scheme == "tel":
            raise RequestError(ErrorCode.BAD_REQUEST, "tel: targets are not supported")
        transport = (
            account.transport.value
            if account.route_set or not target.transport
            else target.transport
        )
        super().__init__(host, account, CallDirection.OUTBOUND, transport)
        self._target_uri = target
        self._play = params.play
        self._timeout = float(params.timeout)
        self._next_hop: Target | None = None
        self._invite: SipRequest | None = None
        self._invite_tx: ClientTransaction | None = None
        self._ack: SipRequest | None = None
        self._provisional = False
        self._cancel_wanted = False
        self._cancel_sent = False
        self._fork_acks: dict[str, tuple[Dialog, SipRequest]] = {}

    def start(self) -> None:
        """Send the INVITE in the background; give up after the timeout."""
        self.enter(CallPhase.CALLING)
        self.call_later(self._timeout, self._give_up)
        self.spawn(self._run())

    async def _run(self) -> None:
        try:
            await self._dial()
        except Exception:
            _LOGGER.exception("Placing a call failed")
            self.finish(INTERNAL_CODE, "Internal Server Error")

    async def _dial(self) -> None:
        account = self._account
        hop = account.route_set[0] if account.route_set else self._target_uri
        try:
            next_hop = await self._target_for(hop)
        except TargetError as err:
            self.finish(NOT_SENT_CODE, str(err)[:120])
            return
        self._next_hop = next_hop
        self.local_host = self._choose_local_host(next_hop.host)
        bind = self._host.bind_host or "0.0.0.0"  # noqa: S104 - the worker's choice
        try:
            media = await MediaSession.open(bind, advertise_host=self.local_host)
        except OSError as err:
            self.finish(INTERNAL_CODE, f"No RTP port: {err}"[:120])
            return
        if self.ended:
            media.close()
            return
        self.attach_media(media)
        offer = media.local_offer().encode()
        self.dialog = Dialog.as_uac(
            call_id=new_call_id(self.local_host.strip("[]") or "localhost"),
            local_tag=new_tag(),
            local_uri=f"<{account.aor}>",
            remote_uri=f"<{self._target_uri}>",
            target=self._target_uri,
            route_set=[f"<{route}>" for route in account.route_set],
        )
        await self._invite_until_final(next_hop, offer)

    async def _invite_until_final(self, next_hop: Target, offer: bytes) -> None:
        """Send the INVITE (again once with credentials); end on a non-2xx."""
        layer = self._host.transactions
        dialog = self.dialog
        if dialog is None:
            self.finish(NOT_SENT_CODE, "Not started")
            return
        credentials: list[tuple[str, str]] = []
        challenged = False
        while True:
            invite = dialog.request(
                "INVITE",
                via=self._via(),
                contact=self.contact(),
                headers=[
                    ("Allow", ALLOW),
                    ("Supported", SUPPORTED),
                    ("User-Agent", USER_AGENT),
                    *credentials,
                ],
                body=offer,
                content_type=SDP,
            )
            self._invite = invite
            self._provisional = False
            try:
                transaction = layer.send_request(
                    invite, next_hop, on_response=_weakly(self)
                )
            except (TransportError, ValueError) as err:
                self.finish(NOT_SENT_CODE, f"Transport Error ({err})"[:120])
                return
            self._invite_tx = transaction
            response = await transaction.final()
            if self.ended or 200 <= response.status < 300:
                return
            if (
                response.status in (401, 407)
                and not challenged
                and not self.local_hangup
                and self._account.authorize(
                    self._account.new_digest(), invite, response
                )
            ):
                challenged = True
                credentials = credentials_of(invite)
                continue
            self.finish(response.status, response.reason)
            return

    # --- responses -----------------------------------------------------------------

    def on_invite_response(self, response: SipResponse) -> None:
        """Handle a response to our INVITE (provisional, 2xx, retransmitted 2xx)."""
        try:
            self._on_response(response)
        except Exception:
            _LOGGER.exception("Handling a response to our INVITE failed")
            if 200 <= response.status < 300 and not self.answered:
                self.finish(INTERNAL_CODE, "Internal Server Error")

    def _on_response(self, response: SipResponse) -> None:
        if response.status < 200:
            self._provisional = True
            if response.status > 100 and self.dialog is not None:
                with contextlib.suppress(SipParseError):
                    self.dialog.confirm_uac(response)
            if self._cancel_wanted:
                self._send_cancel()
            return
        if not 200 <= response.status < 300:
            return  # the transaction sends the ACK; `_invite_until_final` ends the call
        if self._ack is not None and self.dialog is not None:
            tag = response.to_addr.tag
            if tag is None or tag == self.dialog.remote_tag:
                self._send_ack(self._ack)  # a retransmitted 2xx
            else:
                self._refuse_fork(response, tag)
            return
        self._answered(response)

    def _refuse_fork(self, response: SipResponse, tag: str) -> None:
        """ACK a 2xx from another fork of our INVITE, then BYE it (RFC 3261 13.2.2.4)."""
        known = self._fork_acks.get(tag)
        if known is not None:
            self._send_ack(known[1], known[0])
            return
        if self.dialog is None or self._invite is None:
            return
        if len(self._fork_acks) >= MAX_FORKS:
            return
        fork = dataclasses.replace(self.dialog, remote_tag=None)
        fork.confirm_uac(response)
        ack = fork.request(
            "ACK",
            cseq=self._invite.cseq.seq,
            via=self._via(),
            headers=credentials_of(self._invite),
        )
        self._fork_acks[tag] = (fork, ack)
        _LOGGER.info("Hanging up a second answer to our INVITE (another fork)")
        self._send_ack(ack, fork)
        self.send_bye(fork)

    def _answered(self, response: SipResponse) -> None:
        dialog = self.dialog
        invite = self._invite
        if dialog is None or invite is None:
            return
        dialog.confirm_uac(response)
        ack = dialog.request(
            "ACK",
            cseq=invite.cseq.seq,
            via=self._via(),
            headers=credentials_of(invite),
        )
        self._ack = ack
        self._send_ack(ack)
        if self.ended or self.local_hangup:
            # We hung up (or gave up) while the answer was on its way.
            self.send_bye()
            self.finish(200, "Normal call clearing")
            return
        media = self.media
        if media is None:
            return
        try:
            media.apply_answer(response.body.decode("utf-8", "replace"))
        except SdpError as err:
            _LOGGER.info("The callee's SDP answer is not usable: %s", err)
            self.send_bye()
            self.finish(488, "Not Acceptable Here")
            return
        self.start_media()
        self.confirm()
        self.when_media(self._announce)

    def _announce(self) -> None:
        """Play the file once, then hang up (at once without a file)."""
        if self._play:
            try:
                self.play_file(self._play, report=False, then=lambda: self.hangup(200))
            except RequestError as err:
                _LOGGER.warning("Cannot play the announcement: %s", err.message)
            else:
                return
        self.hangup(200)

    def _send_ack(self, ack: SipRequest, dialog: Dialog | None = None) -> None:
        self.spawn(self._ack_async(ack, dialog or self.dialog))

    async def _ack_async(self, ack: SipRequest, dialog: Dialog | None) -> None:
        layer = self._host.transactions
        if dialog is None:
            return
        try:
            target = await self._target_for(dialog.next_hop())
            await layer.sender.send(ack, target)
        except (TargetError, TransportError) as err:
            _LOGGER.info("ACK not sent: %s", err)

    # --- giving up -------------------------------------------------------------------

    def hangup(self, code: int) -> None:
        """BYE once answered; before that, CANCEL the INVITE."""
        del code  # a final code is for inbound calls only
        if self.ended:
            return
        self.local_hangup = True
        if self.answered:
            self.send_bye()
            self.finish(200, "Normal call clearing")
            return
        if self._invite is None:
            self.finish(487, "Request Terminated")  # nothing sent yet
            return
        self._cancel_wanted = True
        self._send_cancel()

    def _give_up(self) -> None:
        if not self.answered and not self.ended:
            _LOGGER.info("No answer in %.0f s: cancelling", self._timeout)
            self.hangup(487)

    def _send_cancel(self) -> None:
        """CANCEL the INVITE once a provisional response came (RFC 3261 9.1)."""
        invite, transaction = self._invite, self._invite_tx
        layer = self._host.transactions
        if (
            self._cancel_sent
            or not self._provisional
            or invite is None
            or transaction is None
            or self._ack is not None
        ):
            return
        self._cancel_sent = True
        try:
            layer.send_request(cancel_request(invite), transaction.target)
        except (TransportError, ValueError) as err:
            _LOGGER.info("CANCEL not sent: %s", err)


def _weakly(call: OutboundCall) -> Callable[[SipResponse], None]:
    """Return the INVITE transaction's response handler, without keeping ``call``.

    The transaction lives on for 64*T1 after a 2xx (RFC 6026 Accepted); an ended
    call must not live as long.
    """
    ref = weakref.ref(call)

    def on_response(response: SipResponse) -> None:
        target = ref()
        if target is not None:
            target.on_invite_response(response)

    return on_response


def start_outbound_call(
    stack: CallHost, account: BuiltinAccount, params: MakeCallParams
) -> BuiltinCall:
    """Start `make_call`: the INVITE goes out in the background; the call is in calls."""
    call = OutboundCall(stack, account, params)
    stack.calls[call.call_id] = call
    call.start()
    return call
