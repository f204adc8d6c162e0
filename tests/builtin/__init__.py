"""Tests of the built-in SIP engine."""
