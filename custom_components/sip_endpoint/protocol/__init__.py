"""The protocol between Home Assistant's side and the SIP worker processes.

This package is pure standard library and runs on both sides: on CPython 3.13 inside
Home Assistant and on CPython 3.12 inside a worker. It must not import homeassistant
or pjsua2. The wire format is described in docs/protocol.md.
"""

# 3: account_id (was ext_id), CallStateChanged.phase (was state); no
# set_allowed_sources, stop_playing, answer's tone or play's loop.
PROTOCOL_VERSION = 3
