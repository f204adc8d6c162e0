"""A real SIP test bed: Kamailio registrar/proxy and baresip callers on loopback."""
