"""The pjsua2 engine: pjsua2 behind the JSON-lines protocol (docs/protocol.md).

This package runs on CPython 3.12 with pjsua2 and never imports Home Assistant. It is
started as ``<python3.12> -I <integration>/worker/launch.py --engine pjsua2``.

Design, and what the pjsua2 2.15.1 wheel allows:

- One thread (the main thread) owns pjlib: ``threadCnt=0``, ``mainThreadOnly``; it
  loops on ``libHandleEvents(10 ms)``, then runs queued requests, work posted from
  other threads and due timers (`loop.py`). Every SIP callback runs there. Media
  has its own ioqueue and "media" thread (RTP, RFC 4733 DTMF); a shared ioqueue
  would make that thread poll SIP too. A reader thread feeds stdin lines to the
  queue; a writer thread writes protocol lines, so pjmedia's threads (clock: stream
  frames; event: a player's end of file) only hand off. docs/architecture.md lists
  the threads.
- pjlib's log reaches the `LogWriter` only for lines at or below
  ``LogConfig.consoleLevel`` (the writer replaces the console), so both it and
  ``level`` are set to the requested ``log_level``; lines are redacted (`core/redact.py`).
- At most 8 accounts (PJSUA_MAX_ACC; the 9th would abort) and 4 calls at once
  (PJSUA_MAX_CALLS of the wheel: pjsua answers a 5th INVITE with 486 itself).
- pjsua's own registration retry is off; `core/backoff.py` decides when to retry.
- A `Call` must stay referenced until DISCONNECTED, and every pjsua2 object must be
  destroyed before ``libDestroy``: a Call destructor running afterwards fails a C
  assert and aborts the process.
- pjsua2 lets the worker intercept INVITE (source filter 403, other user 404) and
  SUBSCRIBE (403); OPTIONS and MESSAGE are answered by pjsua before any callback.
- SIP transaction timers (Timer F = 32 s) are not reachable from pjsua2's Python API.
"""
