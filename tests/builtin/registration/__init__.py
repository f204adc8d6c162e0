"""Tests of the built-in engine's registration (BuiltinAccount)."""
