"""RFC 4733 telephone events: receive digits, send digits."""


class DtmfUnavailableError(RuntimeError):
    """The peer did not negotiate telephone-event: send the digit by SIP INFO instead."""
