"""The built-in SIP engine: asyncio, standard library and audioop only."""
