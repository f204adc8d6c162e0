"""Every path of the registration status mapping."""

import pytest

from custom_components.sip_endpoint.protocol.status import (
    FAILURE_STATUSES,
    RegistrationStatus,
    classify_registration_reply,
)


@pytest.mark.parametrize(
    ("code", "from_server", "expires", "status"),
    [
        (200, True, 300, RegistrationStatus.SUCCESSFUL),
        (202, True, 60, RegistrationStatus.SUCCESSFUL),
        (200, True, 0, RegistrationStatus.UNREGISTERED),
        (100, True, 0, RegistrationStatus.REGISTERING),
        (183, True, 0, RegistrationStatus.REGISTERING),
        (401, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (403, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (407, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (400, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (420, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (488, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (302, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        # 6xx (global failures such as 603 Decline) are refusals, not server errors.
        (600, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (603, True, 0, RegistrationStatus.REJECTED_BY_SERVER),
        (404, True, 0, RegistrationStatus.NOT_FOUND),
        (484, True, 0, RegistrationStatus.NOT_FOUND),
        (604, True, 0, RegistrationStatus.NOT_FOUND),
        (500, True, 0, RegistrationStatus.SERVER_ERROR),
        (503, True, 0, RegistrationStatus.SERVER_ERROR),
        (408, True, 0, RegistrationStatus.NO_REPLY_FROM_SERVER),
        # Generated locally: Timer F, a refused TCP connection, a transport error.
        (408, False, 0, RegistrationStatus.NO_REPLY_FROM_SERVER),
        (503, False, 0, RegistrationStatus.NO_REPLY_FROM_SERVER),
        (0, False, 0, RegistrationStatus.NO_REPLY_FROM_SERVER),
        (200, False, 300, RegistrationStatus.NO_REPLY_FROM_SERVER),
        (401, False, 0, RegistrationStatus.NO_REPLY_FROM_SERVER),
    ],
)
def test_classify(
    code: int, from_server: bool, expires: int, status: RegistrationStatus
) -> None:
    """A REGISTER's final answer maps to the devices' vocabulary."""
    assert (
        classify_registration_reply(code, from_server=from_server, expires=expires)
        is status
    )


def test_failure_statuses() -> None:
    """Failures are exactly the statuses a server or its absence causes."""
    assert {
        RegistrationStatus.REJECTED_BY_SERVER,
        RegistrationStatus.NOT_FOUND,
        RegistrationStatus.NO_REPLY_FROM_SERVER,
        RegistrationStatus.SERVER_ERROR,
        RegistrationStatus.TLS_CERTIFICATE_INVALID,
    } == FAILURE_STATUSES
    assert RegistrationStatus.SUCCESSFUL not in FAILURE_STATUSES


def test_values_are_the_wire_strings() -> None:
    """The enum values are what goes on the wire and into Home Assistant states."""
    assert [status.value for status in RegistrationStatus] == [
        "successful",
        "registering",
        "rejected_by_server",
        "not_found",
        "no_reply_from_server",
        "server_error",
        "tls_certificate_invalid",
        "unregistered",
    ]
