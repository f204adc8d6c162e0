"""Tests of the built-in engine's media layer."""
