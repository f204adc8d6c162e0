"""Tests of the built-in engine's calls: dialogs, inbound and outbound calls."""
