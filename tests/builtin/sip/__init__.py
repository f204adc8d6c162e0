"""Tests of the built-in engine's SIP layer: parser, digest, transports, transactions."""
