"""What an extension does with an incoming call, by role.

The router gives each inbound call a `CallSession` (its answer, DTMF digits, playback
and recording ends, audio and end, as awaitables) and runs the role's handler for it as
a background task of the config entry: `page.py`, `ring.py`, `alert.py`.
"""

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN, LOGGER, ExtensionRole
from .engine.errors import EngineError, RequestFailedError
from .engine.models import EngineEvent
from .engine.sip_engine import SipEngine
from .protocol.payloads import (
    AudioFrame,
    CallEnded,
    CallPhase,
    CallStateChanged,
    DtmfDigit,
    IncomingCall,
    PlaybackDone,
    RecordingDone,
)
from .sounds import Sound

if TYPE_CHECKING:
    from .alert import AlertController
    from .runtime import SipEndpointConfigEntry

MAX_ANSWER_AFTER = 10  # seconds; a longer Call-Info answer-after is capped
MEDIA_WAIT_TRIES = 40  # the audio of a just-answered call comes up within a moment
MEDIA_WAIT_STEP = 0.05


@dataclass
class CallSession:
    """One inbound call as its handler sees it."""

    call: IncomingCall
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Future[CallEnded] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    playbacks: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    recording: asyncio.Future[RecordingDone] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    on_audio: Callable[[bytes, int], None] | None = None

    @property
    def call_id(self) -> str:
        """The engine's id of the call."""
        return self.call.call_id

    async def wait_answered(self) -> bool:
        """Wait until the call is answered (True) or over (False)."""
        answered = asyncio.ensure_future(self.confirmed.wait())
        waits: list[asyncio.Future[Any]] = [answered, asyncio.shield(self.ended)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answered.cancel()
        return self.confirmed.is_set() and not self.ended.done()

    async def wait_ended(self) -> CallEnded:
        """Wait until the call is over."""
        return await asyncio.shield(self.ended)


@dataclass
class CallContext:
    """What a role handler needs besides its call."""

    hass: HomeAssistant
    engine: SipEngine
    ext_id: str
    options: Mapping[str, Any]
    sounds: Mapping[Sound, Path]
    router: "CallRouter"


type RoleHandler = Callable[[CallContext, CallSession], Awaitable[None]]


async def async_media_request(
    session: CallSession, request: Callable[[], Awaitable[None]]
) -> bool:
    """Run a request that needs the call's audio, waiting briefly for it to come up."""
    for _ in range(MEDIA_WAIT_TRIES):
        if session.ended.done():
            return False
        try:
            await request()
        except RequestFailedError as err:
            if "no active audio" not in str(err):
                raise
            await asyncio.sleep(MEDIA_WAIT_STEP)
        else:
            return True
    return False


class CallRouter:
    """Hands each inbound call to its extension's role handler."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: "SipEndpointConfigEntry",
        engine: SipEngine,
        sounds: Mapping[Sound, Path],
    ) -> None:
        """Route the calls of one config entry."""
        self.hass = hass
        self.entry = entry
        self.engine = engine
        self.sounds = sounds
        self.sessions: dict[str, CallSession] = {}
        self.alerts: dict[str, AlertController] = {}
        self.roles: dict[str, ExtensionRole] = {}
        self.options: Callable[[str], Mapping[str, Any]] = lambda _ext_id: {}

    def context(self, ext_id: str) -> CallContext:
        """Return a handler's context for an extension (options as applied now)."""
        return CallContext(
            self.hass, self.engine, ext_id, self.options(ext_id), self.sounds, self
        )

    @callback
    def handle_event(self, event: EngineEvent) -> None:
        """Take an engine event (after the runtime updated the status)."""
        match event:
            case IncomingCall():
                self._start(event)
                return
            case AudioFrame():
                session = self.sessions.get(event.call_id)
                if session is not None and session.on_audio is not None:
                    session.on_audio(base64.b64decode(event.pcm), event.rate)
                return
        session = self.sessions.get(getattr(event, "call_id", ""))
        if session is None:
            return
        match event:
            case CallStateChanged(state=CallPhase.CONFIRMED):
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

    @callback
    def _start(self, call: IncomingCall) -> None:
        role = self.roles.get(call.ext_id)
        if role is None:
            return
        session = self.sessions[call.call_id] = CallSession(call)
        self.entry.async_create_background_task(
            self.hass,
            self._run(_handler(role), self.context(call.ext_id), session),
            f"{DOMAIN} call {call.call_id}",
        )

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


def _handler(role: ExtensionRole) -> RoleHandler:
    # Imported here: the role modules use this module's session and context.
    from .alert import async_handle_alert_call, async_handle_cancel_call
    from .page import async_handle_page
    from .ring import async_handle_ring

    return {
        ExtensionRole.PAGE: async_handle_page,
        ExtensionRole.RING: async_handle_ring,
        ExtensionRole.EMERGENCY_ALERT: async_handle_alert_call,
        ExtensionRole.CALL_TO_CANCEL: async_handle_cancel_call,
    }[role]
