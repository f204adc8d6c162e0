"""Tests of the SIP worker process against real Kamailio and baresip."""
