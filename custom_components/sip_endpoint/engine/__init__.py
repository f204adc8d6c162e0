"""The SIP engine as Home Assistant's process sees it.

An asyncio client and supervisor for the worker processes, which run the pjsua2 or
the built-in engine. It imports neither homeassistant nor pjsua2, so
`scripts/sip-check` runs it outside Home Assistant.
"""
