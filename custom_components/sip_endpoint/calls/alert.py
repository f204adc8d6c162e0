"""Emergency alerts: what plays on the media players, for how long, and how it stops.

An emergency alert extension starts its alert when called: on the INVITE (it only
rings, so other devices on the same extension can still answer), or, with *answer
inbound call*, after answering, a confirmation tone and the optional DTMF access code.
A call-to-cancel extension answers, stops the alerts it cancels, confirms with a tone
and hangs up. The `siren` entity and the actions start and stop alerts too.
"""

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from ..const import (
    CONF_ACCESS_CODE,
    CONF_ALERT_DURATION,
    CONF_ALERT_MEDIA,
    CONF_ALERT_TTS_MESSAGE,
    CONF_ANSWER_INBOUND_CALL,
    CONF_CANCELS,
    CONF_EXTENSION,
    CONF_MEDIA_PLAYERS,
    DEFAULT_ALERT_DURATION,
    LOGGER,
)
from ..repairs import UnavailableMedia, async_delete_media_unavailable_issue
from .audio_views import file_path
from .call_audio import tts_media_source_id
from .players import (
    async_configured_media_url,
    async_play_on_players,
    async_resolve_media,
    async_stop_players,
    media_label,
    player_url,
)
from .session import (
    CallContext,
    CallSession,
    async_hangup,
    async_media_request,
)
from .sounds import Sound

ACCESS_CODE_TIMEOUT = 30  # seconds to enter the access code
CONFIRMATION_TIMEOUT = 5  # seconds the confirmation tone may take


class AlertStopReason(StrEnum):
    """Why an alert stopped (the `reason` of alert events)."""

    CANCELLED = "cancelled"  # a call-to-cancel extension was dialed
    EXPIRED = "expired"  # its duration ran out
    TURNED_OFF = "turned_off"  # the siren entity or the cancel_alert action
    UNLOADED = "unloaded"  # the integration was unloaded or restarted


class AlertController:
    """The alert of one emergency alert extension."""

    def __init__(
        self,
        hass: HomeAssistant,
        account_id: str,
        options: Callable[[], Mapping[str, Any]],
        sounds: Mapping[Sound, Path],
        on_change: Callable[[str, bool, dict[str, Any]], None],
    ) -> None:
        """Control the alert of extension `account_id`; `on_change` reports starts/stops."""
        self.hass = hass
        self.account_id = account_id
        self._options = options
        self._sounds = sounds
        self._on_change = on_change
        self.active = False
        self.ends_at: datetime | None = None
        self.players: list[str] = []
        self._timer: CALLBACK_TYPE | None = None

    @property
    def options(self) -> Mapping[str, Any]:
        """The extension's options as applied now."""
        return self._options()

    def has_configured_media(self) -> bool:
        """Whether the extension has its own alert media or message."""
        return bool(
            self.options.get(CONF_ALERT_MEDIA)
            or self.options.get(CONF_ALERT_TTS_MESSAGE)
        )

    async def async_start(
        self,
        *,
        source: str,
        media: str | None = None,
        message: str | None = None,
        duration: int | None = None,
        volume: int | None = None,
    ) -> None:
        """Play the alert (restarting a running one); HomeAssistantError if it can't."""
        options = self.options
        url = await self._async_url(media, message, options)
        if duration is None:
            duration = options.get(CONF_ALERT_DURATION, DEFAULT_ALERT_DURATION)
        self._cancel_timer()
        self.players = list(options.get(CONF_MEDIA_PLAYERS, []))
        await async_play_on_players(
            self.hass, self.players, url, volume=volume, repeat=True
        )
        self.active = True
        self.ends_at = None
        if duration:
            self.ends_at = dt_util.utcnow() + timedelta(seconds=duration)
            self._timer = async_call_later(self.hass, duration, self._expired)
        LOGGER.info(
            "Emergency alert started on extension %s (%s)", self.account_id, source
        )
        self._on_change(
            self.account_id, True, {"source": source, "duration": duration or None}
        )

    async def async_stop(self, reason: str) -> bool:
        """Stop the alert; return whether one was running."""
        self._cancel_timer()
        if not self.active:
            return False
        self.active = False
        self.ends_at = None
        await async_stop_players(self.hass, self.players)
        LOGGER.info(
            "Emergency alert stopped on extension %s (%s)", self.account_id, reason
        )
        self._on_change(self.account_id, False, {"reason": reason})
        return True

    @callback
    def shutdown(self) -> None:
        """Forget the timer (the integration unloads)."""
        self._cancel_timer()

    async def _async_url(
        self, media: str | None, message: str | None, options: Mapping[str, Any]
    ) -> str:
        """Return what the players play: asked for, configured, or the built-in alert.

        Media or a message the action asks for must resolve (the action fails
        otherwise); the extension's own media falls back to the built-in alert.
        """
        hass = self.hass
        if media:
            return await async_resolve_media(hass, media)
        if message:
            return await async_resolve_media(hass, tts_media_source_id(hass, message))
        configured_media = options.get(CONF_ALERT_MEDIA)
        configured_message = options.get(CONF_ALERT_TTS_MESSAGE)
        if configured_media:
            label = media_label(configured_media)

            async def resolve() -> str:
                return await async_resolve_media(hass, configured_media)

        elif configured_message:
            label = f'TTS "{configured_message}"'

            async def resolve() -> str:
                return await async_resolve_media(
                    hass, tts_media_source_id(hass, configured_message)
                )

        else:
            # Nothing configured, nothing broken.
            async_delete_media_unavailable_issue(
                hass, UnavailableMedia.ALERT, self.account_id
            )
            return self._builtin_url()
        return await async_configured_media_url(
            hass,
            kind=UnavailableMedia.ALERT,
            account_id=self.account_id,
            extension=str(options.get(CONF_EXTENSION, self.account_id)),
            label=label,
            resolve=resolve,
            builtin=self._builtin_url,
        )

    def _builtin_url(self) -> str:
        """Return the URL of the built-in alert sound."""
        return player_url(self.hass, file_path(self._sounds[Sound.ALERT].name))

    @callback
    def _expired(self, _now: datetime) -> None:
        self._timer = None
        self.hass.async_create_task(
            self.async_stop(AlertStopReason.EXPIRED), eager_start=True
        )

    @callback
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None


async def async_handle_alert_call(context: CallContext, session: CallSession) -> None:
    """Start the alert: on the INVITE, or once answered (and the code entered)."""
    controller = context.alerts.get(context.account_id)
    if controller is None:
        return
    caller = session.call.remote_uri
    if not context.options.get(CONF_ANSWER_INBOUND_CALL, False):
        await context.engine.ring(session.call_id)
        await controller.async_start(source=caller)
        return
    await context.engine.answer(session.call_id)
    if not await session.wait_answered():
        return
    if not await _async_confirm(context, session):
        return
    if code := context.options.get(CONF_ACCESS_CODE):
        if not await _async_access_code(session, str(code)):
            LOGGER.info("No valid access code on call %s", session.call_id)
            await async_hangup(context, session)
            return
        if not await _async_confirm(context, session):
            return
    await controller.async_start(source=caller)
    await async_hangup(context, session)


async def async_handle_cancel_call(context: CallContext, session: CallSession) -> None:
    """Answer, stop the alerts this extension cancels, confirm with a tone, hang up."""
    await context.engine.answer(session.call_id)
    if not await session.wait_answered():
        return
    cancels = context.options.get(CONF_CANCELS) or list(context.alerts)
    for account_id in cancels:
        if (controller := context.alerts.get(account_id)) is not None:
            await controller.async_stop(AlertStopReason.CANCELLED)
    await _async_confirm(context, session)
    await async_hangup(context, session)


async def _async_confirm(context: CallContext, session: CallSession) -> bool:
    """Play the confirmation tone to the caller; False if the call is over."""
    tone = str(context.sounds[Sound.CONFIRMATION])
    if not await async_media_request(
        session, lambda: context.engine.play(session.call_id, tone)
    ):
        return False
    ended = asyncio.ensure_future(session.wait_ended())
    played = asyncio.ensure_future(session.playbacks.get())
    try:
        await asyncio.wait(
            [ended, played],
            timeout=CONFIRMATION_TIMEOUT,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        ended.cancel()
        played.cancel()
    return not session.ended.done()


async def _async_access_code(session: CallSession, code: str) -> bool:
    """Collect digits until they end with the access code; False on timeout or end."""
    entered = ""
    try:
        async with asyncio.timeout(ACCESS_CODE_TIMEOUT):
            while not entered.endswith(code):
                digit = asyncio.ensure_future(session.digits.get())
                ended = asyncio.ensure_future(session.wait_ended())
                try:
                    await asyncio.wait(
                        [digit, ended], return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    ended.cancel()
                    if not digit.done():
                        digit.cancel()
                if not digit.done() or digit.cancelled():
                    return False
                entered = (entered + digit.result())[-len(code) :]
    except TimeoutError:
        return False
    return True
