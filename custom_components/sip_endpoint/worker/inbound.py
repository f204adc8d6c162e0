"""What happens when an INVITE arrives: source filter, extension check, announcement."""

import logging
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from ..protocol.payloads import CallDirection, EventName, IncomingCall, Refused
from .call import WorkerCall
from .context import WorkerContext
from .sipmsg import answer_after, display_name, parse_message, source_host, uri_user

if TYPE_CHECKING:
    from .account import ExtensionAccount

_LOGGER = logging.getLogger(__name__)


def check_source(context: WorkerContext, address: str, method: str) -> bool:
    """Return whether a request from ``address`` is allowed; report it if not."""
    host = source_host(address)
    if context.source_allowed(host):
        return True
    _LOGGER.info("Refused %s from %s", method, host)
    context.emit(EventName.REFUSED, Refused(source=host, method=method))
    return False


def handle_incoming_call(
    context: WorkerContext, account: "ExtensionAccount", prm: Any
) -> None:
    """Refuse, or announce, a new inbound call (runs in `onIncomingCall`)."""
    rdata = prm.rdata
    raw = str(rdata.wholeMsg)
    message = parse_message(raw)
    source = str(rdata.srcAddress)
    if not check_source(context, source, "INVITE"):
        _refuse(context, account, prm.callId, 403)
        return
    if uri_user(message.request_uri) != account.params.extension:
        _LOGGER.info("Refused INVITE for another user: %s", message.request_uri)
        _refuse(context, account, prm.callId, 404)
        return
    call = WorkerCall(context, account, CallDirection.INBOUND, prm.callId)
    context.calls[call.call_id] = call
    info = call.getInfo()
    alert_info = message.header("alert-info")
    call_info = message.header("call-info")
    from_header = message.header("from") or str(info.remoteUri)
    context.emit(
        EventName.INCOMING_CALL,
        IncomingCall(
            ext_id=account.params.ext_id,
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
    context: WorkerContext, account: "ExtensionAccount", pjsua_call_id: int, code: int
) -> None:
    call = WorkerCall(
        context, account, CallDirection.INBOUND, pjsua_call_id, silent=True
    )
    # Keep the object until it is disconnected: a collected Call hangs up on its own.
    context.refused_calls.append(call)
    call.local_hangup = True
    # Hang up from the polling loop, not inside onIncomingCall: for an INVITE without
    # SDP, pjsua frees the request after the callback and a hangup inside it made
    # that fail a C assert (pjsip_rx_data_free_cloned) and abort the worker.
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
