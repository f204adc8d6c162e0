"""Signalling of the built-in engine, to RFC 3261: messages, transports, transactions."""
