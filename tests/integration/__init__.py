"""Tests of the Home Assistant side of SIP Endpoint."""
