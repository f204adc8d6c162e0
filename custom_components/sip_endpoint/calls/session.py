"""One inbound call as a role handler sees it, and what the handler works with.

This module is a leaf of the `calls` package: the router and every role handler
(`page.py`, `ring.py`, `alert.py`) import it, and it imports none of them.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from homeassistant.core import HomeAssistant

from ..engine import RequestFailedError, SipEngine
from ..protocol.payloads import CallEnded, IncomingCall, RecordingDone
from ..protocol.wire import ErrorCode
from .sounds import Sound

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


class Alert(Protocol):
    """What a call handler does with an emergency alert (`alert.AlertController`)."""

    async def async_start(self, *, source: str) -> None:
        """Start the alert, naming who started it."""

    async def async_stop(self, reason: str) -> bool:
        """Stop the alert; return whether one was running."""


@dataclass
class CallContext:
    """What a role handler needs besides its call."""

    hass: HomeAssistant
    engine: SipEngine
    account_id: str
    options: Mapping[str, Any]
    sounds: Mapping[Sound, Path]
    alerts: Mapping[str, Alert]  # the entry's emergency alerts, by subentry id


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
            if err.code != ErrorCode.NO_ACTIVE_AUDIO:
                raise
            await asyncio.sleep(MEDIA_WAIT_STEP)
        else:
            return True
    return False


async def async_hangup(context: CallContext, session: CallSession) -> None:
    """Hang up the call unless it is already over."""
    if not session.ended.done():
        await context.engine.hangup(session.call_id)
