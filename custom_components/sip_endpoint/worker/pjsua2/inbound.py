"""What happens when an INVITE arrives: source filter, extension check, announcement."""

import logging
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from ...protocol.payloads import CallDirection, EventName, IncomingCall
from ..core.sipmsg import (
    answer_after,
    display_name,
    parse_message,
    source_host,
    uri_user,
)
from .call import WorkerCall
from .call_table import CallTable
from .context import WorkerContext

if TYPE_CHECKING:
    from .account import ExtensionAccount

_LOGGER = logging.getLogger(__name__)

# A call with SDP refused for its source keeps its call slot this long before its 403.
# pjsua opens an RTP and an RTCP socket for every INVITE with SDP before any callback
# runs, and pjlib's ioqueue (64 slots, compiled in) gives a closed socket's slot back
# only 500 ms later: refused at once, a flood churns sockets faster than that and the
# worker aborts. Held, the wheel's 4 call slots stay taken, pjsua answers further
# INVITEs 486 by itself before it opens any socket, and the churn stays at 4 calls per
# hold. While a stranger floods, calls through the registrar are busy too, but the
# worker lives and keeps its registrations.
STRANGER_HOLD_SECONDS = 0.5


def check_source(context: WorkerContext, address: str, method: str) -> bool:
    """Return whether a request from ``address`` is allowed; count it if not.

    Refusals are logged and reported per burst (`core/refusals.py`), as the built-in
    engine does: the first one, then a summary per source and minute.
    """
    host = source_host(address)
    if context.source_allowed(host):
        return True
    context.refusals.refuse(host, method)
    return False


def handle_incoming_call(
    context: WorkerContext, calls: CallTable, account: "ExtensionAccount", prm: Any
) -> None:
    """Refuse, or announce, a new inbound call (runs in `onIncomingCall`)."""
    rdata = prm.rdata
    raw = str(rdata.wholeMsg)
    message = parse_message(raw)
    source = str(rdata.srcAddress)
    if not check_source(context, source, "INVITE"):
        offers_media = "sdp" in (message.header("content-type") or "").lower()
        hold = STRANGER_HOLD_SECONDS if offers_media else 0.0
        _refuse(context, calls, account, prm.callId, 403, hold=hold)
        return
    if uri_user(message.request_uri) != account.params.extension:
        context.refusals.not_found(source_host(source), message.request_uri or "")
        _refuse(context, calls, account, prm.callId, 404)
        return
    call = WorkerCall(context, account, CallDirection.INBOUND, calls.finish, prm.callId)
    calls.add(call)
    info = call.getInfo()
    alert_info = message.header("alert-info")
    call_info = message.header("call-info")
    from_header = message.header("from") or str(info.remoteUri)
    context.emit(
        EventName.INCOMING_CALL,
        IncomingCall(
            account_id=account.params.account_id,
            call_id=call.call_id,
            remote_uri=str(info.remoteUri),
            display_name=display_name(from_header),
            source=source_host(source),
            alert_info=alert_info,
            call_info=call_info,
            answer_after=answer_after(call_info, alert_info),
        ),
    )


def _refuse(
    context: WorkerContext,
    calls: CallTable,
    account: "ExtensionAccount",
    pjsua_call_id: int,
    code: int,
    *,
    hold: float = 0.0,
) -> None:
    call = WorkerCall(
        context,
        account,
        CallDirection.INBOUND,
        calls.finish,
        pjsua_call_id,
        silent=True,
    )
    # Keep the object until it is disconnected: a collected Call hangs up on its own.
    calls.keep_refused(call)
    call.local_hangup = True
    # Hang up from the polling loop, not inside onIncomingCall: for an INVITE without
    # SDP, pjsua frees the request after the callback and a hangup inside it made
    # that fail a C assert (pjsip_rx_data_free_cloned) and abort the worker.
    if hold > 0:
        context.scheduler.call_later(hold, lambda: _hang_up(call, code))
    else:
        context.post(lambda: _hang_up(call, code))


def _hang_up(call: WorkerCall, code: int) -> None:
    if call.disconnected:
        return
    prm = pj.CallOpParam()
    prm.statusCode = code
    try:
        call.hangup(prm)
    except pj.Error as err:
        _LOGGER.debug("Refusing a call: %s", err.info())
