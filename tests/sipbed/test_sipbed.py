"""Tests of the SIP test bed itself: the registrar answers what the other tests rely on."""

from __future__ import annotations

import socket
import ssl
import time
from typing import TYPE_CHECKING

import pytest

from tests.sipbed.audio import (
    dominant_frequency,
    read_pcm,
    rms,
    trim_silence,
    write_tone,
)
from tests.sipbed.baresip import Baresip
from tests.sipbed.kamailio import Kamailio
from tests.sipbed.netutil import (
    parse_status_code,
    sip_options_ping,
    sip_options_tls,
)
from tests.sipbed.rawsip import RawRegisterClient
from tests.sipbed.users import password_for

if TYPE_CHECKING:
    from pathlib import Path

    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import KamailioFactory
    from tests.sipbed.netns import NamespacePair


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


def test_baresip_registers_through_the_challenge(
    kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    """A baresip account registers with digest auth; Kamailio saw the challenge."""
    phone = baresip_factory(
        user="9001", password=password_for("9001"), registrar=kamailio
    )
    phone.wait_registered()
    assert "9001" in phone.registration_info()
    assert kamailio.wait_for_log("REGISTER for 9001 from 127.0.0.1")


def test_baresip_reports_a_wrong_password(
    kamailio_factory: KamailioFactory, baresip_factory: BaresipFactory
) -> None:
    """Baresip sees 403 when the registrar forbids a wrong password."""
    kamailio = kamailio_factory(wrong_password="forbidden")
    phone = baresip_factory(user="9002", password="wrong", registrar=kamailio)
    assert "403" in phone.wait_register_failed()


def test_call_through_kamailio_carries_the_tone(
    kamailio: Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    """One baresip calls another through Kamailio; each receives the other's tone."""
    callee = baresip_factory(
        user="2000",
        password=password_for("2000"),
        registrar=kamailio,
        audio_file=write_tone(tmp_path / "callee.wav", 440, 30),
    )
    caller = baresip_factory(
        user="9001",
        password=password_for("9001"),
        registrar=kamailio,
        bind_host="127.0.0.2",
        audio_file=write_tone(tmp_path / "caller.wav", 1200, 30),
    )
    callee.wait_registered()
    caller.wait_registered()
    caller.dial("2000")
    assert "9001" in callee.wait_incoming()
    caller.wait_ringing()
    callee.accept()
    caller.wait_established()
    callee.wait_established()
    caller.send_dtmf("1#")
    deadline = time.monotonic() + 5
    while callee.received_dtmf() != "1#" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert callee.received_dtmf() == "1#"
    time.sleep(1.5)
    caller.hangup()
    caller.wait_closed()
    callee.wait_closed()

    for phone, expected_hz in ((callee, 1200), (caller, 440)):
        assert phone.recording is not None
        samples, rate = read_pcm(phone.recording)
        heard = trim_silence(samples)
        assert len(heard) > rate  # more than a second of signal
        assert rms(heard) > 0.1
        assert abs(dominant_frequency(heard, rate) - expected_hz) < 5


def test_unknown_extension_gets_404(
    kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    """Calls to unknown extensions end with 404, to unregistered ones with 480."""
    caller = baresip_factory(
        user="9003", password=password_for("9003"), registrar=kamailio
    )
    caller.wait_registered()
    caller.dial("4242")
    assert caller.wait_closed().startswith("404")
    caller.dial("2050")
    assert caller.wait_closed().startswith("480")


def test_direct_call_without_registrar(baresip_factory: BaresipFactory) -> None:
    """A baresip without registrar can call another directly (no proxy in the path)."""
    callee = baresip_factory(user="2000", password=None, registrar=None)
    caller = baresip_factory(
        user="9001", password=None, registrar=None, bind_host="127.0.0.2"
    )
    caller.dial(f"sip:2000@{callee.bind_host}:{callee.sip_port}")
    assert "9001@127.0.0.2" in callee.wait_incoming()
    callee.accept()
    caller.wait_established()
    callee.hangup()
    assert caller.wait_closed()


def test_call_over_tcp(kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    """Registration and calls also work over TCP through Kamailio."""
    callee = baresip_factory(
        user="2003", password=password_for("2003"), registrar=kamailio, transport="tcp"
    )
    caller = baresip_factory(
        user="9004", password=password_for("9004"), registrar=kamailio, transport="tcp"
    )
    callee.wait_registered()
    caller.wait_registered()
    caller.dial("2003")
    callee.wait_incoming()
    callee.accept()
    caller.wait_established()
    callee.hangup()
    assert caller.wait_closed()
    assert "SIP/2.0/TCP" in caller.log_path.read_text()


def test_cancel_before_answer_reaches_the_callee(
    kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    """A caller hanging up while it rings sends CANCEL through Kamailio."""
    callee = baresip_factory(
        user="2004", password=password_for("2004"), registrar=kamailio
    )
    caller = baresip_factory(
        user="9005", password=password_for("9005"), registrar=kamailio
    )
    callee.wait_registered()
    caller.wait_registered()
    caller.dial("2004")
    callee.wait_incoming()
    caller.wait_ringing()
    caller.hangup()
    caller.wait_closed()
    callee.wait_closed()
    assert "CANCEL sip:" in callee.log_path.read_text()


def test_namespaces_isolate_and_cut_the_link(
    netns_pair: NamespacePair, tmp_path: Path, socket_enabled: None
) -> None:
    """Kamailio in one namespace, baresip in the other; cutting the link is seen."""
    kamailio = Kamailio(
        tmp_path / "kamailio",
        {"2000": password_for("2000")},
        host=netns_pair.address_a,
        netns=netns_pair.a,
    )
    phone = Baresip(
        tmp_path / "phone",
        user="2000",
        password=password_for("2000"),
        registrar=kamailio,
        bind_host=netns_pair.address_b,
        netns=netns_pair.b,
    )
    kamailio.start()
    try:
        phone.start()
        phone.wait_registered()
        # The namespace's address does not exist in the test's own namespace.
        with pytest.raises(OSError):
            sip_options_ping(kamailio.host, kamailio.port, timeout=0.3)
        source = netns_pair.address_b
        with netns_pair.b.entered():
            assert sip_options_ping(kamailio.host, kamailio.port, source=source) == 200
            netns_pair.set_link(up=False)
            assert (
                sip_options_ping(
                    kamailio.host, kamailio.port, timeout=0.3, source=source
                )
                is None
            )
            netns_pair.set_link(up=True)
            assert sip_options_ping(kamailio.host, kamailio.port, source=source) == 200
    finally:
        phone.stop()
        kamailio.stop()


def test_taken_ports_are_replaced_on_first_start(
    kamailio: Kamailio, tmp_path: Path, socket_enabled: None
) -> None:
    """A port picked for us but taken meanwhile is replaced, never shared."""
    second = Kamailio(tmp_path / "second", {"2000": "other"})
    second.port = kamailio.port  # as if another test grabbed it first
    second.start()
    try:
        assert second.port != kamailio.port
        assert sip_options_ping(second.host, second.port) == 200
    finally:
        second.stop()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        phone = Baresip(tmp_path / "phone", user="9006", password=None, registrar=None)
        phone.ctrl_port = squatter.getsockname()[1]
        phone.start()
        try:
            assert phone.ctrl_port != squatter.getsockname()[1]
            assert "9006" in phone.registration_info()
        finally:
            phone.stop()


def test_tls_listener_answers_with_its_certificate(
    kamailio_factory: KamailioFactory,
) -> None:
    """With tls=True Kamailio answers SIP over TLS; its certificate verifies."""
    kamailio = kamailio_factory(tls=True)
    assert kamailio.tls_port is not None
    context = ssl.create_default_context(cafile=str(kamailio.certificate_path))
    response = sip_options_tls(kamailio.host, kamailio.tls_port, context)
    assert parse_status_code(response) == 200


def test_baresip_hangs_up_a_call_that_had_no_answer_yet(
    baresip_factory: BaresipFactory,
) -> None:
    """A hangup right after the dial ends the call before any response came.

    (baresip 1.1 only makes an outgoing call its "current" one at a 180/183; the
    driver names the call by its id.)
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.settimeout(10)
        phone = baresip_factory(user="9001", password=None, registrar=None)
        phone.dial(f"sip:2000@127.0.0.1:{silent.getsockname()[1]}")
        assert silent.recv(65536).startswith(b"INVITE ")
        phone.hangup()
        phone.wait_closed()
