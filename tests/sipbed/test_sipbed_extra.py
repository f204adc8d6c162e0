"""The test bed's extra parts: TLS certificates, Kamailio's auth options, a second peer.

The auth options are checked with a raw UDP client that answers challenges with the
built-in engine's digest module, so these tests also run that module against the
real Kamailio.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import secrets
import socket
import ssl
import sys
import time
from typing import TYPE_CHECKING, Any, Final

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EndCause,
    Method,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.worker.builtin.sip import message as sipmsg
from custom_components.sip_endpoint.worker.builtin.sip.digest import (
    CredentialsRejected,
    DigestSession,
    parse_challenge,
)
from custom_components.sip_endpoint.worker.builtin.sip.transport import (
    SipTransportLayer,
    Source,
    Target,
    TlsVerificationError,
    client_tls_context,
)
from tests.worker.calling import call_ended, incoming_call, register_extension
from tests.worker.client import WorkerClient, account_params, start_params

from .kamailio import AuthOptions, KamailioFactory
from .netutil import free_port, sip_options_tls
from .rawsip import SipResponse, parse_response
from .second_peer import SippCaller
from .tls import (
    CERTIFICATE_KINDS,
    EXPECTED_VERIFY_MESSAGES,
    CertificateKind,
    CertificateSet,
    make_certificates,
)
from .users import password_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .baresip import BaresipFactory
    from .kamailio import Kamailio

USER = "2001"
CALLEE = "2002"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """One CA and one server certificate of every kind for this module."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def _tls_options(kamailio: Kamailio, context: ssl.SSLContext) -> bytes:
    """Send OPTIONS over TLS to Kamailio; return the raw response."""
    assert kamailio.tls_port is not None
    return sip_options_tls(kamailio.host, kamailio.tls_port, context)


def test_default_tls_certificate_is_signed_by_the_test_bed_ca(
    kamailio_factory: KamailioFactory,
) -> None:
    kamailio = kamailio_factory(tls=True)
    context = ssl.create_default_context(cafile=str(kamailio.ca_path))
    assert parse_response(_tls_options(kamailio, context)).code == 200
    # The CA is not the served certificate: the served leaf names the host.
    assert (
        kamailio.ca_path.read_text()
        not in kamailio.certificate_path.read_text().split(
            "-----END CERTIFICATE-----", 1
        )[0]
    )


def test_valid_certificate_verifies_with_the_ca(
    kamailio_factory: KamailioFactory, certificates: CertificateSet
) -> None:
    kamailio = kamailio_factory(tls_certificate=certificates.server("valid"))
    context = ssl.create_default_context(cafile=str(certificates.ca_path))
    response = parse_response(_tls_options(kamailio, context))
    assert response.code == 200


@pytest.mark.parametrize(
    "kind", [kind for kind in CERTIFICATE_KINDS if kind != "valid"]
)
def test_bad_certificates_are_refused_with_the_reason(
    kamailio_factory: KamailioFactory,
    certificates: CertificateSet,
    kind: CertificateKind,
) -> None:
    kamailio = kamailio_factory(tls_certificate=certificates.server(kind))
    context = ssl.create_default_context(cafile=str(certificates.ca_path))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        _tls_options(kamailio, context)
    assert EXPECTED_VERIFY_MESSAGES[kind] in caught.value.verify_message
    # Without verification the same server answers: only the certificate is wrong.
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    assert parse_response(_tls_options(kamailio, insecure)).code == 200


class RawUac:
    """A UDP client that sends REGISTER or INVITE and answers challenges with digest."""

    def __init__(self, kamailio: Kamailio, user: str, password: str) -> None:
        """Open a socket towards ``kamailio``."""
        self.kamailio = kamailio
        self.user = user
        self.session = DigestSession(user, password)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((kamailio.host, 0))
        self._sock.settimeout(5.0)
        self._call_id = f"{secrets.token_hex(8)}@{kamailio.host}"
        self._cseq = 0
        self._from_tag = secrets.token_hex(4)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def request(
        self, method: str, uri: str, to_user: str, headers: list[tuple[str, str]]
    ) -> SipResponse:
        """Send one request; return its final response."""
        self._cseq += 1
        local_host, local_port = self._sock.getsockname()
        host = self.kamailio.host
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local_host}:{local_port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{host}>;tag={self._from_tag}",
            f"To: <sip:{to_user}@{host}>",
            f"Call-ID: {self._call_id}",
            f"CSeq: {self._cseq} {method}",
            f"Contact: <sip:{self.user}@{local_host}:{local_port}>",
            *(f"{name}: {value}" for name, value in headers),
            "Content-Length: 0",
            "",
            "",
        ]
        if method == "REGISTER":
            lines.insert(-3, "Expires: 60")
        self._sock.sendto(
            "\r\n".join(lines).encode(), (self.kamailio.host, self.kamailio.port)
        )
        while True:
            data, _ = self._sock.recvfrom(65535)
            response = parse_response(data)
            if response.code >= 200:
                if method == "INVITE":
                    self._ack(data, uri)
                return response

    def _ack(self, data: bytes, uri: str) -> None:
        """ACK a final INVITE response (same branch: the non-2xx ACK)."""
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        keep = [
            line
            for line in head.split("\r\n")[1:]
            if line.split(":", 1)[0].lower() in {"via", "from", "to", "call-id"}
        ]
        lines = [
            f"ACK {uri} SIP/2.0",
            *keep,
            "Max-Forwards: 70",
            f"CSeq: {self._cseq} ACK",
            "Content-Length: 0",
            "",
            "",
        ]
        self._sock.sendto(
            "\r\n".join(lines).encode(), (self.kamailio.host, self.kamailio.port)
        )

    def authenticated(
        self, method: str, uri: str, to_user: str, *, rounds: int = 4
    ) -> list[SipResponse]:
        """Send a request and answer up to ``rounds`` challenges; return every response."""
        responses = [self.request(method, uri, to_user, [])]
        for _ in range(rounds):
            last = responses[-1]
            if last.code not in {401, 407}:
                break
            name = "www-authenticate" if last.code == 401 else "proxy-authenticate"
            headers = self.session.answer(
                last.code, last.headers.get(name, []), method=method, uri=uri
            )
            responses.append(self.request(method, uri, to_user, headers))
        if responses[-1].code < 300:
            self.session.accepted()
        return responses


@pytest.fixture
def uac_factory() -> Iterator[Callable[..., RawUac]]:
    """Return a factory of RawUac clients, closed at teardown."""
    made: list[RawUac] = []

    def _make(
        kamailio: Kamailio, user: str = USER, password: str | None = None
    ) -> RawUac:
        uac = RawUac(
            kamailio, user, password_for(user) if password is None else password
        )
        made.append(uac)
        return uac

    yield _make
    for uac in made:
        uac.close()


def _register_uri(kamailio: Kamailio) -> str:
    return f"sip:{kamailio.host}:{kamailio.port}"


def _challenge(response: SipResponse) -> str:
    name = "WWW-Authenticate" if response.code == 401 else "Proxy-Authenticate"
    value = response.header(name)
    assert value is not None
    return value


def test_default_challenge_is_md5_without_qop(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory()
    uac = uac_factory(kamailio)
    responses = uac.authenticated("REGISTER", _register_uri(kamailio), USER)
    assert [response.code for response in responses] == [401, 200]
    challenge = parse_challenge(_challenge(responses[0]))
    # Kamailio 5.6 leaves algorithm out here, 6.1 says algorithm=MD5: both mean MD5.
    assert (challenge.algorithm, challenge.qop) == ("MD5", None)


def test_qop_auth_challenge(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(qop=True))
    uac = uac_factory(kamailio)
    responses = uac.authenticated("REGISTER", _register_uri(kamailio), USER)
    assert [response.code for response in responses] == [401, 200]
    challenge = parse_challenge(_challenge(responses[0]))
    assert challenge.qop == "auth"
    # The cached nonce is reused with nc=2 and accepted.
    again = uac.request(
        "REGISTER",
        _register_uri(kamailio),
        USER,
        uac.session.preemptive(method="REGISTER", uri=_register_uri(kamailio)),
    )
    assert again.code == 200


def test_sha256_challenge(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(qop=True, algorithm="SHA-256"))
    uac = uac_factory(kamailio)
    responses = uac.authenticated("REGISTER", _register_uri(kamailio), USER)
    assert [response.code for response in responses] == [401, 200]
    challenge = parse_challenge(_challenge(responses[0]))
    assert (challenge.algorithm, challenge.qop) == ("SHA-256", "auth")


def test_sha256_wrong_password_is_rejected(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(algorithm="SHA-256"))
    uac = uac_factory(kamailio, password="not-the-password")
    with pytest.raises(CredentialsRejected):
        uac.authenticated("REGISTER", _register_uri(kamailio), USER)


def test_register_challenged_with_407(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(register_challenge="proxy"))
    uac = uac_factory(kamailio)
    responses = uac.authenticated("REGISTER", _register_uri(kamailio), USER)
    assert [response.code for response in responses] == [407, 200]
    wrong = uac_factory(kamailio, password="wrong")
    with pytest.raises(CredentialsRejected):
        wrong.authenticated("REGISTER", _register_uri(kamailio), USER)


def test_invite_challenged_with_407(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(invite_challenge=True, qop=True))
    uac = uac_factory(kamailio)
    uri = f"sip:{CALLEE}@{kamailio.host}:{kamailio.port}"
    responses = uac.authenticated("INVITE", uri, CALLEE)
    # Authenticated, the INVITE reaches the location lookup: the callee is a known
    # user that is not registered, so 480.
    assert [response.code for response in responses] == [407, 480]
    assert parse_challenge(_challenge(responses[0]), proxy=True).qop == "auth"
    # REGISTER is still challenged with 401.
    register = uac.authenticated("REGISTER", _register_uri(kamailio), USER)
    assert [response.code for response in register] == [401, 200]


def test_default_config_does_not_challenge_invite(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory()
    uac = uac_factory(kamailio)
    uri = f"sip:{CALLEE}@{kamailio.host}:{kamailio.port}"
    assert [response.code for response in uac.authenticated("INVITE", uri, CALLEE)] == [
        480
    ]


def test_expired_nonce_is_challenged_stale(
    kamailio_factory: KamailioFactory, uac_factory: Callable[..., RawUac]
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(qop=True, nonce_expire=1))
    uac = uac_factory(kamailio)
    uri = _register_uri(kamailio)
    assert [response.code for response in uac.authenticated("REGISTER", uri, USER)] == [
        401,
        200,
    ]
    deadline = time.monotonic() + 10
    stale = None
    while time.monotonic() < deadline:
        response = uac.request(
            "REGISTER", uri, USER, uac.session.preemptive(method="REGISTER", uri=uri)
        )
        if response.code == 401:
            stale = response
            break
        time.sleep(0.5)
    assert stale is not None, "the cached nonce never expired"
    assert parse_challenge(_challenge(stale)).stale
    # The session retries with the new nonce instead of calling the password wrong.
    headers = uac.session.answer(
        401, stale.headers["www-authenticate"], method="REGISTER", uri=uri
    )
    assert uac.request("REGISTER", uri, USER, headers).code == 200


@pytest.fixture
def sipp_factory(tmp_path: Path) -> Iterator[Callable[..., SippCaller]]:
    """Return a factory of SIPp callers; every SIPp still running is ended at teardown."""
    made: list[SippCaller] = []

    def _make(registrar: Kamailio, user: str = "9004", **options: Any) -> SippCaller:
        caller = SippCaller(
            tmp_path / f"sipp-{len(made)}-{user}",
            user=user,
            password=options.pop("password", password_for(user)),
            registrar=registrar,
            **options,
        )
        made.append(caller)
        return caller

    yield _make
    for caller in made:
        caller.stop()


def test_sipp_calls_baresip_through_kamailio(
    kamailio: Kamailio,
    baresip_factory: BaresipFactory,
    sipp_factory: Callable[..., SippCaller],
) -> None:
    callee = baresip_factory(
        user="2000", password=password_for("2000"), registrar=kamailio
    )
    callee.wait_registered()
    call = sipp_factory(kamailio).start_call("2000", hold=1.0)
    assert "9004" in callee.wait_incoming()
    callee.accept()
    callee.wait_established()
    result = call.wait()
    assert result.completed, result.errors
    assert result.invite_codes[-1] == 200
    assert result.bye_code == 200
    callee.wait_closed()


def test_sipp_reports_a_refused_call(
    kamailio: Kamailio, sipp_factory: Callable[..., SippCaller]
) -> None:
    result = sipp_factory(kamailio).call("2050", hold=0, timeout=10)
    assert result.final_code == 480
    assert not result.completed


def test_sipp_answers_a_407_challenge(
    kamailio_factory: KamailioFactory,
    baresip_factory: BaresipFactory,
    sipp_factory: Callable[..., SippCaller],
) -> None:
    kamailio = kamailio_factory(auth=AuthOptions(invite_challenge=True))
    callee = baresip_factory(
        user="2000", password=password_for("2000"), registrar=kamailio
    )
    callee.wait_registered()
    call = sipp_factory(kamailio).start_call("2000", hold=0.5)
    callee.wait_incoming()
    callee.accept()
    result = call.wait()
    assert result.invite_codes[0] == 407
    assert result.completed, result.errors
    wrong = sipp_factory(kamailio, password="wrong").call("2000", hold=0, timeout=10)
    assert wrong.final_code == 407


# --- the built-in engine's TLS client against this Kamailio -------------------------


class _Inbox:
    """Responses the built-in transport layer delivers."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[sipmsg.SipRequest | sipmsg.SipResponse] = (
            asyncio.Queue()
        )

    def __call__(
        self, message: sipmsg.SipRequest | sipmsg.SipResponse, source: Source
    ) -> None:
        self.items.put_nowait(message)

    async def get(self) -> sipmsg.SipRequest | sipmsg.SipResponse:
        return await asyncio.wait_for(self.items.get(), 10)


def _register_request(
    kamailio: Kamailio, layer: SipTransportLayer, cseq: int
) -> sipmsg.SipRequest:
    host = kamailio.host
    tls_port = layer.tls_port or layer.port
    headers = sipmsg.Headers(
        [
            (
                "Via",
                f"SIP/2.0/TLS {host}:{tls_port};branch={sipmsg.new_branch()};rport",
            ),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{USER}@{host}>;tag=builtin-tls"),
            ("To", f"<sip:{USER}@{host}>"),
            ("Call-ID", f"builtin-tls-{USER}@{host}"),
            ("CSeq", f"{cseq} REGISTER"),
            ("Contact", f"<sip:{USER}@{host}:{tls_port};transport=tls>"),
            ("Expires", "60"),
        ]
    )
    return sipmsg.SipRequest(
        "REGISTER", sipmsg.SipUri(host=host, port=kamailio.tls_port), headers
    )


async def test_builtin_tls_client_registers_with_the_ca(
    kamailio_factory: KamailioFactory, certificates: CertificateSet
) -> None:
    kamailio = kamailio_factory(tls_certificate=certificates.server("valid"))
    assert kamailio.tls_port is not None
    inbox = _Inbox()
    layer = SipTransportLayer(inbox, bind_host=kamailio.host, port_min=0, port_max=0)
    await layer.start()
    try:
        context = client_tls_context(ca_file=str(certificates.ca_path))
        target = Target("tls", kamailio.host, kamailio.tls_port, tls_context=context)
        session = DigestSession(USER, password_for(USER))
        request = _register_request(kamailio, layer, 1)
        await layer.send(request, target)
        challenge = await inbox.get()
        assert isinstance(challenge, sipmsg.SipResponse)
        assert challenge.status == 401
        request = _register_request(kamailio, layer, 2)
        uri = str(request.uri)
        for name, value in session.answer(
            401,
            challenge.headers.get_lines("WWW-Authenticate"),
            method="REGISTER",
            uri=uri,
        ):
            request.headers.add(name, value)
        await layer.send(request, target)
        final = await inbox.get()
        assert isinstance(final, sipmsg.SipResponse)
        assert final.status == 200
    finally:
        await layer.close()


@pytest.mark.parametrize("kind", ["untrusted", "wrong_host", "expired", "self_signed"])
async def test_builtin_tls_client_refuses_bad_certificates(
    kamailio_factory: KamailioFactory,
    certificates: CertificateSet,
    kind: CertificateKind,
) -> None:
    kamailio = kamailio_factory(tls_certificate=certificates.server(kind))
    assert kamailio.tls_port is not None
    layer = SipTransportLayer(_Inbox(), bind_host=kamailio.host, port_min=0, port_max=0)
    await layer.start()
    try:
        context = client_tls_context(ca_file=str(certificates.ca_path))
        target = Target("tls", kamailio.host, kamailio.tls_port, tls_context=context)
        with pytest.raises(TlsVerificationError) as caught:
            await layer.send(_register_request(kamailio, layer, 1), target)
        assert caught.value.reason.startswith("certificate verify failed: ")
        assert EXPECTED_VERIFY_MESSAGES[kind] in caught.value.reason
    finally:
        await layer.close()


# --- SIPp calling a worker ----------------------------------------------------------

WORKER_EXTENSION = "2031"
# As in tests/worker/conftest.py: SIP_ENDPOINT_TEST_ENGINES restricts the engines (no
# pjsua2 under CPython 3.14), SIP_ENDPOINT_BUILTIN_PYTHON names the built-in's Python.


def _selected_engines() -> tuple[str, ...]:
    configured = os.environ.get("SIP_ENDPOINT_TEST_ENGINES", "")
    names = {name.strip() for name in configured.split(",") if name.strip()}
    return tuple(name for name in ("pjsua2", "builtin") if not names or name in names)


ENGINES: Final = _selected_engines()


def _launch_worker(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> WorkerClient:
    python: Path = (
        request.getfixturevalue("worker_python")
        if engine == "pjsua2"
        else Path(os.environ.get("SIP_ENDPOINT_BUILTIN_PYTHON") or sys.executable)
    )
    client = WorkerClient(python, tmp_path / f"worker-{engine}.stderr", engine=engine)
    client.launch()
    first = free_port("127.0.0.1")
    client.request(
        Method.START, start_params(port_min=first, port_max=min(first + 20, 65535))
    )
    return client


@pytest.mark.parametrize("engine", ENGINES)
def test_sipp_calls_a_worker(
    engine: str,
    kamailio: Kamailio,
    sipp_factory: Callable[..., SippCaller],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    client = _launch_worker(engine, request, tmp_path)
    try:
        register_extension(client, kamailio, WORKER_EXTENSION)
        call = sipp_factory(kamailio).start_call(WORKER_EXTENSION, hold=1.0)
        incoming = incoming_call(client)
        assert "9004@" in incoming.remote_uri
        client.request(Method.ANSWER, {"call_id": incoming.call_id})
        result = call.wait()
        assert result.completed, result.errors
        ended = call_ended(client, incoming.call_id)
        assert ended.cause == EndCause.BYE
        assert ended.answered
    finally:
        assert client.close() == 0


# --- workers registering against the new challenge kinds --------------------------

CHALLENGES: Final = {
    "qop": AuthOptions(qop=True),
    "sha256": AuthOptions(qop=True, algorithm="SHA-256"),
    "proxy407": AuthOptions(register_challenge="proxy"),
}


@pytest.mark.parametrize("challenge", sorted(CHALLENGES))
@pytest.mark.parametrize("engine", ENGINES)
def test_worker_registers_against_each_challenge(
    engine: str,
    challenge: str,
    kamailio_factory: KamailioFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    kamailio = kamailio_factory(auth=CHALLENGES[challenge])
    client = _launch_worker(engine, request, tmp_path)
    try:
        client.request(
            Method.ADD_ACCOUNT,
            account_params(WORKER_EXTENSION, kamailio.host, kamailio.port),
        )
        state = client.wait_registration(
            f"ext-{WORKER_EXTENSION}", RegistrationStatus.SUCCESSFUL
        )
        assert state.code == 200
        client.request(
            Method.ADD_ACCOUNT,
            account_params("2032", kamailio.host, kamailio.port, password="wrong"),
        )
        refused = client.wait_registration(
            "ext-2032", RegistrationStatus.REJECTED_BY_SERVER
        )
        assert refused.code == (407 if challenge == "proxy407" else 401)
    finally:
        assert client.close() == 0
