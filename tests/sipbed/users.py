"""The standard users of the SIP test bed (the ``kamailio`` fixture's registrar)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

# Extensions for the endpoint under test (enough for the 60-extension test) and callers.
TEST_EXTENSIONS: Final = tuple(str(ext) for ext in range(2000, 2100))
TEST_CALLERS: Final = tuple(str(ext) for ext in range(9001, 9010))


def password_for(user: str) -> str:
    """Return the password the standard test bed gives ``user``."""
    return f"pw-{user}"


TEST_USERS: Final[Mapping[str, str]] = {
    user: password_for(user) for user in (*TEST_EXTENSIONS, *TEST_CALLERS)
}
