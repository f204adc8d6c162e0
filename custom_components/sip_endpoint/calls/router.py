"""What an extension does with an incoming call, by role.

The router gives each inbound call a `CallSession` (its answer, DTMF digits, playback
and recording ends, audio and end, as awaitables) and runs the role's handler for it as
a background task of the config entry: `page.py`, `ring.py`, `alert.py`.
"""

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from ..const import DOMAIN, LOGGER, ExtensionRole
from ..engine import EngineError, EngineEvent, SipEngine
from ..protocol.payloads import (
    AudioFrame,
    CallEnded,
    CallPhase,
    CallStateChanged,
    DtmfDigit,
    IncomingCall,
    PlaybackDone,
    RecordingDone,
)
from .alert import AlertController, async_handle_alert_call, async_handle_cancel_call
from .page import async_handle_page
from .ring import async_handle_ring
from .session import CallContext, CallSession, RoleHandler
from .sounds import Sound

ROLE_HANDLERS: dict[ExtensionRole, RoleHandler] = {
    ExtensionRole.PAGE: async_handle_page,
    ExtensionRole.RING: async_handle_ring,
    ExtensionRole.EMERGENCY_ALERT: async_handle_alert_call,
    ExtensionRole.CALL_TO_CANCEL: async_handle_cancel_call,
}


class CallRouter:
    """Hands each inbound call to its extension's role handler."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        engine: SipEngine,
        sounds: Mapping[Sound, Path],
        alerts: Mapping[str, AlertController],
    ) -> None:
        """Route the calls of one config entry (``alerts``: its emergency alerts)."""
        self.hass = hass
        self.entry = entry
        self.engine = engine
        self.sounds = sounds
        self.alerts = alerts
        self.sessions: dict[str, CallSession] = {}

    @callback
    def start(
        self, call: IncomingCall, role: ExtensionRole, options: Mapping[str, Any]
    ) -> None:
        """Run the role's handler for a new inbound call, with the extension's options."""
        session = self.sessions[call.call_id] = CallSession(call)
        context = CallContext(
            self.hass, self.engine, call.account_id, options, self.sounds, self.alerts
        )
        self.entry.async_create_background_task(
            self.hass,
            self._run(ROLE_HANDLERS[role], context, session),
            f"{DOMAIN} call {call.call_id}",
        )

    @callback
    def handle_event(self, event: EngineEvent) -> None:
        """Take an engine event (after the runtime updated the status)."""
        match event:
            case IncomingCall():
                return  # the runtime starts the call's handler
            case AudioFrame():
                session = self.sessions.get(event.call_id)
                if session is not None and session.on_audio is not None:
                    session.on_audio(base64.b64decode(event.pcm), event.rate)
                return
        session = self.sessions.get(getattr(event, "call_id", ""))
        if session is None:
            return
        match event:
            case CallStateChanged(phase=CallPhase.CONFIRMED):
                session.confirmed.set()
            case DtmfDigit(digit=digit):
                session.digits.put_nowait(digit)
            case PlaybackDone():
                session.playbacks.put_nowait(None)
            case RecordingDone():
                if not session.recording.done():
                    session.recording.set_result(event)
            case CallEnded():
                # The session stays until its handler is done: a recording's end
                # (RecordingDone) comes after the call's.
                if not session.ended.done():
                    session.ended.set_result(event)

    async def _run(
        self, handler: RoleHandler, context: CallContext, session: CallSession
    ) -> None:
        try:
            await handler(context, session)
        except EngineError as err:
            # The caller may have hung up in between; the call's end event follows.
            LOGGER.debug("Could not handle call %s: %s", session.call_id, err)
        except HomeAssistantError as err:
            LOGGER.warning("Could not handle call %s: %s", session.call_id, err)
        finally:
            self.sessions.pop(session.call_id, None)
