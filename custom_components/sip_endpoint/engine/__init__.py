"""The SIP engine as Home Assistant's process sees it.

An asyncio client and supervisor for the pjsua2 worker processes. It imports neither
homeassistant nor pjsua2, so `scripts/sip-check` runs it outside Home Assistant.
"""
