"""Reliability suite: faults, load, bad input and security, through the real test bed."""
