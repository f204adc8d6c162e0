"""Tests for SIP Endpoint."""
