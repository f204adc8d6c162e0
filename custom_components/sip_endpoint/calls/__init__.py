"""What an extension does with a call.

`router.py` hands each inbound call to its extension's role handler (`page.py`,
`ring.py`, `alert.py`) with a `session.CallSession` and a `session.CallContext`.
The handlers play on media players (`players.py`), serve audio to them
(`audio_views.py`), turn a media id or a TTS message into call audio
(`call_audio.py`) and use the built-in sounds (`sounds.py`).
"""
