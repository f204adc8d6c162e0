"""Media players: what an extension plays on them, and the URLs they fetch."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
import re
from urllib.parse import urlsplit, urlunsplit

from homeassistant.components import media_source
from homeassistant.components.media_player.browse_media import (
    async_process_play_media_url,
)
from homeassistant.components.media_player.const import (
    ATTR_MEDIA_CONTENT_ID,
    ATTR_MEDIA_CONTENT_TYPE,
    ATTR_MEDIA_REPEAT,
    ATTR_MEDIA_VOLUME_LEVEL,
    DOMAIN as MEDIA_PLAYER_DOMAIN,
    SERVICE_PLAY_MEDIA,
    MediaPlayerEntityFeature,
    MediaType,
    RepeatMode,
)
from homeassistant.const import (
    ATTR_ENTITY_ID,
    ATTR_SUPPORTED_FEATURES,
    SERVICE_MEDIA_STOP,
    SERVICE_REPEAT_SET,
    SERVICE_VOLUME_SET,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import voluptuous as vol

from ..const import LOGGER
from ..repairs import (
    UnavailableMedia,
    async_create_media_unavailable_issue,
    async_delete_media_unavailable_issue,
)

# Seconds an extension's configured media (a media source, a TTS engine) may take to
# resolve before the built-in sound plays instead: an alert must not wait on a cloud.
MEDIA_RESOLVE_TIMEOUT = 10


def player_url(hass: HomeAssistant, path: str) -> str:
    """Return a signed absolute URL of one of Home Assistant's paths, for a player."""
    return async_process_play_media_url(hass, path)


async def async_resolve_media(hass: HomeAssistant, media_id: str) -> str:
    """Turn a media source id into a URL a player can fetch; URLs pass unchanged."""
    if media_source.is_media_source_id(media_id):
        resolved = await media_source.async_resolve_media(hass, media_id, None)
        return async_process_play_media_url(hass, resolved.url)
    return async_process_play_media_url(hass, media_id)


def media_label(media: str) -> str:
    """Return a media id or URL fit for a log line or an issue: no user, no query."""
    parts = urlsplit(media)
    return urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
    )


# A URL in a sentence: it ends before spaces, quotes, brackets and closing punctuation.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"()<>]*[^\s'\"()<>:,.;]")


def redact_media(text: str) -> str:
    """Return a text (an error's) with each URL in it shortened to its `media_label`."""
    return _URL_IN_TEXT.sub(lambda match: media_label(match.group()), text)


async def async_configured_media_url(
    hass: HomeAssistant,
    *,
    kind: UnavailableMedia,
    account_id: str,
    extension: str,
    label: str,
    resolve: Callable[[], Awaitable[str]],
    builtin: Callable[[], str],
) -> str:
    """Return the URL of an extension's configured media, or of its built-in sound.

    An alert or a ringtone must sound even when its own media cannot be had (a media
    source or TTS engine removed or too slow, a file gone): the built-in sound plays
    instead, a warning names the extension and the media (`label`), and a repair
    issue stays until the media resolves again.
    """
    try:
        async with asyncio.timeout(MEDIA_RESOLVE_TIMEOUT):
            url = await resolve()
    except (HomeAssistantError, ValueError, TimeoutError) as err:
        if isinstance(err, TimeoutError):
            error = f"no answer within {MEDIA_RESOLVE_TIMEOUT} s"
        else:
            error = redact_media(str(err)) or type(err).__name__
        LOGGER.warning(
            "Extension %s cannot play its %s %s (%s); it plays the built-in sound",
            extension,
            "ringtone" if kind is UnavailableMedia.RINGTONE else "alert media",
            label,
            error,
        )
        async_create_media_unavailable_issue(
            hass,
            kind,
            account_id,
            {"extension": extension, "media": label, "error": error},
        )
        return builtin()
    async_delete_media_unavailable_issue(hass, kind, account_id)
    return url


def _supports(hass: HomeAssistant, entity_id: str, feature: int) -> bool:
    state = hass.states.get(entity_id)
    return state is not None and bool(
        state.attributes.get(ATTR_SUPPORTED_FEATURES, 0) & feature
    )


async def _async_call(
    hass: HomeAssistant, service: str, players: Sequence[str], data: dict[str, object]
) -> None:
    """Call a media_player action on each player; one failing player spares the rest."""
    for entity_id in players:
        try:
            await hass.services.async_call(
                MEDIA_PLAYER_DOMAIN,
                service,
                {ATTR_ENTITY_ID: entity_id, **data},
                blocking=True,
            )
        except (HomeAssistantError, vol.Invalid) as err:
            LOGGER.warning("%s on %s failed: %s", service, entity_id, err)


async def async_play_on_players(
    hass: HomeAssistant,
    players: Sequence[str],
    url: str,
    *,
    volume: int | None = None,
    repeat: bool = False,
) -> None:
    """Set the volume (0-100) and play a URL on the players, optionally repeating."""
    if volume is not None:
        await _async_call(
            hass,
            SERVICE_VOLUME_SET,
            [
                p
                for p in players
                if _supports(hass, p, MediaPlayerEntityFeature.VOLUME_SET)
            ],
            {ATTR_MEDIA_VOLUME_LEVEL: volume / 100},
        )
    await _async_call(
        hass,
        SERVICE_PLAY_MEDIA,
        players,
        {
            ATTR_MEDIA_CONTENT_ID: url,
            ATTR_MEDIA_CONTENT_TYPE: MediaType.MUSIC,
        },
    )
    if repeat:
        await _async_call(
            hass,
            SERVICE_REPEAT_SET,
            [
                p
                for p in players
                if _supports(hass, p, MediaPlayerEntityFeature.REPEAT_SET)
            ],
            {ATTR_MEDIA_REPEAT: RepeatMode.ONE},
        )


async def async_stop_players(hass: HomeAssistant, players: Sequence[str]) -> None:
    """Stop the players."""
    await _async_call(hass, SERVICE_MEDIA_STOP, players, {})
