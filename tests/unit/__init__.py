"""Fast Home Assistant side tests on an engine double (no worker, no SIP)."""
