"""Audio that media players fetch from Home Assistant: live pages and stored files.

Both views need authentication; media players get signed URLs (see `players.py`), valid
for a short time. A live page is served as a WAV stream whose header announces an
unknown (maximal) length, followed by the caller's PCM as it arrives.
"""

import asyncio
from dataclasses import dataclass, field
import re
import secrets
import struct

from aiohttp import web
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util.hass_dict import HassKey

from ..const import DOMAIN
from .sounds import AUDIO_DIR, audio_dir

LIVE_URL = f"/api/{DOMAIN}/live/{{token}}"
FILE_URL = f"/api/{DOMAIN}/audio/{{name}}"
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.wav$")
_STREAMING_SIZE = 0xFFFFFFFF - 36
MAX_BUFFERED_BYTES = 32000 * 3600  # one hour of 16 kHz 16-bit mono


def wav_stream_header(rate: int) -> bytes:
    """Return a 44-byte WAV header for mono 16-bit PCM of unknown length."""
    return (
        b"RIFF"
        + struct.pack("<I", _STREAMING_SIZE + 36)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", _STREAMING_SIZE)
    )


@dataclass
class LiveAudio:
    """The caller's audio of one live page, kept from its start for late listeners."""

    rate: int
    chunks: list[bytes] = field(default_factory=list)
    closed: bool = False
    _size: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @callback
    def feed(self, pcm: bytes) -> None:
        """Add PCM from the call."""
        if self.closed or self._size + len(pcm) > MAX_BUFFERED_BYTES:
            return
        self.chunks.append(pcm)
        self._size += len(pcm)
        self._wake()

    @callback
    def close(self) -> None:
        """End the page: listeners get the rest, then the end."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_more(self, have: int) -> None:
        """Wait until there are more than `have` chunks, or the page is over."""
        while len(self.chunks) <= have and not self.closed:
            await self._changed.wait()


LIVE_AUDIO: HassKey[dict[str, LiveAudio]] = HassKey(f"{DOMAIN}_live_audio")


@callback
def async_open_live_audio(hass: HomeAssistant, rate: int) -> tuple[str, LiveAudio]:
    """Start a live stream; return its token (part of its URL) and the stream."""
    token = secrets.token_urlsafe(16)
    live = hass.data.setdefault(LIVE_AUDIO, {})[token] = LiveAudio(rate)
    return token, live


@callback
def async_close_live_audio(hass: HomeAssistant, token: str) -> None:
    """End a live stream and forget it."""
    if (live := hass.data.get(LIVE_AUDIO, {}).pop(token, None)) is not None:
        live.close()


def live_path(token: str) -> str:
    """Return the (unsigned) path of a live stream."""
    return LIVE_URL.format(token=token)


def file_path(name: str) -> str:
    """Return the (unsigned) path of a file in the audio folder."""
    return FILE_URL.format(name=name)


class LiveAudioView(HomeAssistantView):
    """Streams a live page as WAV."""

    url = LIVE_URL
    name = f"api:{DOMAIN}:live"
    requires_auth = True

    async def get(self, request: web.Request, token: str) -> web.StreamResponse:
        """Send the header, what was said so far, then the rest as it comes."""
        hass = request.app[KEY_HASS]
        live = hass.data.get(LIVE_AUDIO, {}).get(token)
        if live is None:
            return web.Response(status=404)
        response = web.StreamResponse(
            headers={"Content-Type": "audio/wav", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        await response.write(wav_stream_header(live.rate))
        sent = 0
        while True:
            await live.wait_for_more(sent)
            chunks = live.chunks[sent:]
            if chunks:
                sent += len(chunks)
                await response.write(b"".join(chunks))
            elif live.closed:
                break
        await response.write_eof()
        return response


class AudioFileView(HomeAssistantView):
    """Serves the generated sounds and page recordings."""

    url = FILE_URL
    name = f"api:{DOMAIN}:audio"
    requires_auth = True

    async def get(self, request: web.Request, name: str) -> web.StreamResponse:
        """Send one WAV file of the audio folder."""
        hass = request.app[KEY_HASS]
        if not _FILE_NAME.match(name) or AUDIO_DIR not in hass.data:
            return web.Response(status=404)
        path = audio_dir(hass) / name
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@callback
def async_register_views(hass: HomeAssistant) -> None:
    """Register the audio views (once, at integration setup)."""
    hass.http.register_view(LiveAudioView())
    hass.http.register_view(AudioFileView())
