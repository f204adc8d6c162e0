"""The protocol between Home Assistant's side and the SIP worker processes.

This package is pure standard library and runs on both sides: on CPython 3.13 inside
Home Assistant and on CPython 3.12 inside a worker. It must not import homeassistant
or pjsua2. The wire format is described in docs/protocol.md.
"""

PROTOCOL_VERSION = 2
