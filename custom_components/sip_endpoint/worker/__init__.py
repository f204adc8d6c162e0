"""
The SIP worker process: pjsua2 behind the JSON-lines protocol.

This package runs on CPython 3.12 with pjsua2 and never imports Home Assistant. It is
started through ``launch.py``; see docs/protocol.md for the protocol it speaks.
"""
