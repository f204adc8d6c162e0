"""Tests of the SIP test bed itself: the registrar answers what the other tests rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.sipbed.netutil import sip_options_ping
from tests.sipbed.rawsip import RawRegisterClient
from tests.sipbed.users import password_for

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio, KamailioFactory


def _codes(client: RawRegisterClient, user: str, password: str) -> list[int]:
    return [response.code for response in client.register(user, password)]


def test_register_is_challenged_then_accepted(kamailio: Kamailio) -> None:
    """A REGISTER is challenged with 401 and accepted with the right password."""
    with RawRegisterClient(kamailio.host, kamailio.port) as client:
        responses = client.register("2000", password_for("2000"))
        assert [response.code for response in responses] == [401, 200]
        assert "Digest" in (responses[0].header("WWW-Authenticate") or "")
        assert responses[1].header("Contact") is not None


def test_unregister_removes_the_contact(kamailio: Kamailio) -> None:
    """A REGISTER with Expires: 0 removes the binding."""
    with RawRegisterClient(kamailio.host, kamailio.port) as client:
        assert _codes(client, "2001", password_for("2001")) == [401, 200]
        responses = client.register("2001", password_for("2001"), expires=0)
        assert [response.code for response in responses] == [401, 200]
        assert responses[1].header("Contact") is None


@pytest.mark.parametrize(
    ("wrong_password", "unknown_user", "wrong_code", "unknown_code"),
    [
        ("rechallenge", "forbidden", 401, 403),
        ("forbidden", "not_found", 403, 404),
    ],
)
def test_rejections_follow_the_switches(
    kamailio_factory: KamailioFactory,
    wrong_password: str,
    unknown_user: str,
    wrong_code: int,
    unknown_code: int,
) -> None:
    """Wrong passwords and unknown users get the configured answers."""
    kamailio = kamailio_factory(
        wrong_password=wrong_password,  # type: ignore[arg-type]
        unknown_user=unknown_user,  # type: ignore[arg-type]
    )
    with RawRegisterClient(
        kamailio.host, kamailio.port, bind_host="127.0.0.2"
    ) as client:
        assert _codes(client, "2002", "not-the-password") == [401, wrong_code]
        assert _codes(client, "7777", "whatever") == [401, unknown_code]
        assert _codes(client, "2002", password_for("2002")) == [401, 200]


def test_restart_keeps_the_port(kamailio: Kamailio) -> None:
    """A restarted Kamailio listens on the same port with the new users."""
    port = kamailio.port
    kamailio.set_users({"5555": "new-secret"})
    kamailio.restart()
    assert kamailio.port == port
    assert sip_options_ping(kamailio.host, port) == 200
    with RawRegisterClient(kamailio.host, kamailio.port) as client:
        assert _codes(client, "5555", "new-secret") == [401, 200]
        assert _codes(client, "2000", password_for("2000")) == [401, 403]


def test_stopped_kamailio_does_not_answer(kamailio: Kamailio) -> None:
    """After stop() nothing answers on the port; stop() is idempotent."""
    kamailio.stop()
    kamailio.stop()
    assert not kamailio.running
    assert sip_options_ping(kamailio.host, kamailio.port, timeout=0.5) is None
