"""Registration status vocabulary, as SIP paging devices show it."""

from enum import StrEnum


class RegistrationStatus(StrEnum):
    """The registration status of one extension."""

    SUCCESSFUL = "successful"
    REGISTERING = "registering"
    REJECTED_BY_SERVER = "rejected_by_server"
    NOT_FOUND = "not_found"
    NO_REPLY_FROM_SERVER = "no_reply_from_server"
    SERVER_ERROR = "server_error"
    TLS_CERTIFICATE_INVALID = "tls_certificate_invalid"
    UNREGISTERED = "unregistered"


FAILURE_STATUSES = frozenset(
    {
        RegistrationStatus.REJECTED_BY_SERVER,
        RegistrationStatus.NOT_FOUND,
        RegistrationStatus.NO_REPLY_FROM_SERVER,
        RegistrationStatus.SERVER_ERROR,
        RegistrationStatus.TLS_CERTIFICATE_INVALID,
    }
)

_REJECTED_CODES = frozenset({401, 403, 407})
# 404 is the usual answer for an unknown extension; some servers say 484
# (address incomplete) or 604 (does not exist anywhere) instead.
_NOT_FOUND_CODES = frozenset({404, 484, 604})


def classify_registration_reply(
    code: int, *, from_server: bool, expires: int
) -> RegistrationStatus:
    """Map the final answer to a REGISTER onto a status.

    `from_server` is False when the answer was generated locally by the SIP stack
    (Timer F's 408, a 503 for a refused TCP connection, a transport error with code 0):
    the server never replied. `expires` is the expiry the server granted, 0 after an
    unregistration.
    """
    if not from_server or code == 408:
        return RegistrationStatus.NO_REPLY_FROM_SERVER
    if 100 <= code < 200:
        return RegistrationStatus.REGISTERING
    if 200 <= code < 300:
        return (
            RegistrationStatus.SUCCESSFUL
            if expires > 0
            else RegistrationStatus.UNREGISTERED
        )
    if code in _NOT_FOUND_CODES:
        return RegistrationStatus.NOT_FOUND
    if 500 <= code < 600:
        return RegistrationStatus.SERVER_ERROR
    if code in _REJECTED_CODES:
        return RegistrationStatus.REJECTED_BY_SERVER
    # Any other final answer (400, 420, 488, 3xx without a usable contact...) is a
    # refusal from the server: the devices show it as "Rejected by Server" too.
    return RegistrationStatus.REJECTED_BY_SERVER
