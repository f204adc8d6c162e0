"""What an extension does with an incoming call, by role."""

import asyncio

from .const import LOGGER, ExtensionRole
from .engine.errors import EngineError
from .engine.sip_engine import SipEngine
from .protocol.payloads import IncomingCall

MAX_ANSWER_AFTER = 10  # seconds; a longer Call-Info answer-after is capped


async def async_route_incoming_call(
    engine: SipEngine, role: ExtensionRole, call: IncomingCall
) -> None:
    """Answer a page, ring a ring extension; alert extensions ring until handled."""
    try:
        if role is ExtensionRole.PAGE:
            if call.answer_after:
                await engine.ring(call.call_id)
                await asyncio.sleep(min(call.answer_after, MAX_ANSWER_AFTER))
            await engine.answer(call.call_id)
        else:
            await engine.ring(call.call_id)
    except EngineError as err:
        # The caller may have hung up in between; the call's end event follows.
        LOGGER.debug("Could not handle call %s: %s", call.call_id, err)
