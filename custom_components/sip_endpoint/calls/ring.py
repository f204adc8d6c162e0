"""Ring extensions: 180 Ringing, never answered; the ringtone plays while it rings."""

from ..const import CONF_EXTENSION, CONF_MEDIA_PLAYERS, CONF_RINGTONE
from ..repairs import UnavailableMedia, async_delete_media_unavailable_issue
from .audio_views import file_path
from .players import (
    async_configured_media_url,
    async_play_on_players,
    async_resolve_media,
    async_stop_players,
    media_label,
    player_url,
)
from .session import CallContext, CallSession
from .sounds import Sound


async def async_handle_ring(context: CallContext, session: CallSession) -> None:
    """Ring until the caller gives up, hangs up or the call is answered elsewhere."""
    hass = context.hass
    await context.engine.ring(session.call_id)
    players = context.options.get(CONF_MEDIA_PLAYERS, [])
    ringtone: str | None = context.options.get(CONF_RINGTONE)

    def builtin() -> str:
        return player_url(hass, file_path(context.sounds[Sound.RINGTONE].name))

    if ringtone:
        url = await async_configured_media_url(
            hass,
            kind=UnavailableMedia.RINGTONE,
            account_id=context.account_id,
            extension=str(context.options.get(CONF_EXTENSION, context.account_id)),
            label=media_label(ringtone),
            resolve=lambda: async_resolve_media(hass, ringtone),
            builtin=builtin,
        )
    else:
        async_delete_media_unavailable_issue(
            hass, UnavailableMedia.RINGTONE, context.account_id
        )
        url = builtin()
    if session.ended.done():
        return
    await async_play_on_players(hass, players, url, repeat=True)
    try:
        await session.wait_ended()
    finally:
        await async_stop_players(hass, players)
