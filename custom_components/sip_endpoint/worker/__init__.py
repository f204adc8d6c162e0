"""The SIP worker process: a SIP engine behind the JSON-lines protocol (docs/protocol.md).

It never imports Home Assistant. It is started as
``<python> -I <integration>/worker/launch.py --engine builtin|pjsua2`` and runs one of
two engines (docs/builtin-engine.md):

- `core/`: what both engines share, standard library only (CPython 3.12 to 3.14):
  the protocol channel's threads, request dispatch and checks, the request handlers'
  shared part, call end causes, registration state, registration backoff, redaction,
  account URIs, read-only helpers on raw SIP text.
- `pjsua2/`: the pjsua2 engine (CPython 3.12 with the pjsua2 wheel).
- `builtin/`: the built-in engine, pure Python on asyncio (standard library plus
  `audioop-lts`).
"""
