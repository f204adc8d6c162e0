"""The built-in SIP engine: asyncio, standard library and audioop only.

Design (docs/builtin-engine.md):

- One thread runs one asyncio loop (`loop.py`): transports, transactions, timers,
  RTP, and the protocol's requests, one at a time and in order. The protocol
  channel's reader and writer threads (`core/channel.py`) only move lines.
- `handlers.py` runs each request with the checks and error codes of
  `core/dispatch.py` (the pjsua2 engine uses the same).
- `stack.py` (`BuiltinStack`) is what accounts and calls share: events, secrets and
  redaction, the source filter, the transport and transaction layers (`sip/`),
  client transactions with a fresh Via, the tables of accounts and calls, and the
  routing of every new request (source filter first, for every method).
- `account.py` / `registration/` (one extension: REGISTER, digest, refresh, retry,
  keep-alive) and `call.py` / `dialog.py` (one call and its dialog; its media in
  `media/`) implement the protocols of `interfaces.py`.
- Limits (`limits.py`): 100 extensions and 32 calls per worker, announced in hello.
"""
