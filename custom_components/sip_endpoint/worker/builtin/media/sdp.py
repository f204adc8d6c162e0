"""SDP (RFC 4566) parsing and building, offer/answer (RFC 3264) for G.711 audio."""


class SdpError(ValueError):
    """An SDP body that cannot be parsed or accepted (the call layer answers 488)."""


class NoCommonCodecError(SdpError):
    """An offer with no audio stream we can take: no PCMU or PCMA over RTP/AVP."""
