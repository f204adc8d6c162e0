"""Tests of the protocol package shared by Home Assistant and the workers."""
