"""Tests of the SIP engine (Home Assistant side of the worker protocol)."""
