"""SIP over TLS against the test bed's TLS Kamailio: verified by default, on both engines.

The test bed makes a CA and server certificates (tests/sipbed/tls.py). A worker given
that CA (`tls_ca_file`, besides the system store) registers with the valid one and
refuses an untrusted, a wrong-host, an expired and a self-signed certificate with
`tls_certificate_invalid` and a reason naming the failure, never "no reply". With
`tls_verify` off it accepts any certificate and warns. A call over TLS is answered
with audio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    EndCause,
    EventName,
    Method,
    RecordingDone,
    Transport,
    WorkerStatus,
)
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from tests.sipbed.audio import assert_tone, read_pcm
from tests.sipbed.tls import CertificateKind, CertificateSet, make_certificates
from tests.sipbed.users import password_for

from .calling import answered_call, call_ended, registered_phone
from .client import account_params, start_params, start_result

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.sipbed.baresip import BaresipFactory
    from tests.sipbed.kamailio import Kamailio, KamailioFactory

    from .client import WorkerClient

Status = RegistrationStatus
EXT: Final = "2060"
EXT_ID: Final = f"ext-{EXT}"
CALLER_TONE_HZ: Final = 1000.0  # what the baresip fixture sends by default

# What each engine says about each refused kind. pjlib reports an untrusted issuer
# and a self-signed certificate with one flag (PJ_SSL_CERT_EUNTRUSTED).
REFUSAL_TEXTS: Final[dict[str, dict[CertificateKind, str]]] = {
    "builtin": {
        "untrusted": "unable to get local issuer certificate",
        "wrong_host": "mismatch, certificate is not valid for",
        "expired": "certificate has expired",
        "self_signed": "self-signed certificate",
    },
    "pjsua2": {
        "untrusted": "certificate not trusted",
        "wrong_host": "mismatch, certificate is not valid for",
        "expired": "certificate has expired",
        "self_signed": "certificate not trusted",
    },
}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """Return the test bed's CA and server certificates (made once per module)."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))


type TlsRegistering = Callable[..., tuple[WorkerClient, Kamailio]]


@pytest.fixture
def tls_registering(
    launched_worker: WorkerClient,
    sip_ports: tuple[int, int],
    kamailio_factory: KamailioFactory,
    certificates: CertificateSet,
) -> TlsRegistering:
    """Return a callable starting a TLS Kamailio and a worker registering there.

    The Kamailio serves a ``kind`` of certificate; the worker adds the extension
    over TLS. The callable returns both.

    The worker starts with ``tls`` (start settings), its ``tls_ca_file`` the test
    bed's CA unless ``ca`` is False.
    """

    def _register(
        kind: CertificateKind = "valid", *, ca: bool = True, **tls: object
    ) -> tuple[WorkerClient, Kamailio]:
        kamailio = kamailio_factory(tls_certificate=certificates.server(kind))
        assert kamailio.tls_port is not None
        if ca:
            tls["tls_ca_file"] = str(certificates.ca_path)
        worker = launched_worker
        result = start_result(
            worker.request(
                Method.START,
                start_params(port_min=sip_ports[0], port_max=sip_ports[1], **tls),
            )
        )
        worker.sip_port = result.sip_port
        account = account_params(
            EXT,
            kamailio.host,
            kamailio.tls_port,
            transport=Transport.TLS,
            password=password_for(EXT),
        )
        worker.request(Method.ADD_ACCOUNT, account.to_wire())
        return worker, kamailio

    return _register


def _statuses(worker: WorkerClient) -> list[str]:
    return [
        event.data["status"]
        for event in worker.events_named(EventName.REGISTRATION)
        if event.data["account_id"] == EXT_ID
    ]


def test_registers_over_tls_verified_with_the_ca_file(
    tls_registering: TlsRegistering,
) -> None:
    """The test bed's certificate, verified against its CA: registered over TLS."""
    worker, kamailio = tls_registering()
    state = worker.wait_registration(EXT_ID, Status.SUCCESSFUL)
    assert state.code == 200
    assert state.registrar == f"sip:127.0.0.1:{kamailio.tls_port};transport=tls"
    exchanges = WorkerStatus.from_wire(worker.request(Method.STATUS)).exchanges
    assert exchanges[-1].from_server


@pytest.mark.parametrize("kind", ["untrusted", "wrong_host", "expired", "self_signed"])
def test_bad_certificate_is_refused_with_the_reason(
    tls_registering: TlsRegistering,
    engine: str,
    kind: CertificateKind,
) -> None:
    """Untrusted, wrong host, expired, self-signed: tls_certificate_invalid, why."""
    worker, _ = tls_registering(kind)
    state = worker.wait_registration(EXT_ID, Status.TLS_CERTIFICATE_INVALID)
    assert state.reason.startswith("certificate verify failed: ")
    assert REFUSAL_TEXTS[engine][kind] in state.reason
    assert Status.NO_REPLY_FROM_SERVER not in _statuses(worker)
    exchanges = WorkerStatus.from_wire(worker.request(Method.STATUS)).exchanges
    assert not exchanges[-1].from_server


def test_the_system_store_alone_does_not_trust_the_test_ca(
    tls_registering: TlsRegistering,
) -> None:
    """Without `tls_ca_file` the test bed's valid certificate is refused (not known)."""
    worker, _ = tls_registering(ca=False)
    state = worker.wait_registration(EXT_ID, Status.TLS_CERTIFICATE_INVALID)
    assert state.reason.startswith("certificate verify failed: ")


@pytest.mark.parametrize("kind", ["untrusted", "self_signed", "expired"])
def test_verification_off_accepts_any_certificate_and_warns(
    tls_registering: TlsRegistering,
    kind: CertificateKind,
) -> None:
    """`tls_verify` off: a certificate nobody trusts is accepted; stderr warns."""
    worker, _ = tls_registering(kind, ca=False, tls_verify=False)
    worker.wait_registration(EXT_ID, Status.SUCCESSFUL)
    assert "TLS certificate verification is off" in worker.stderr()


def test_call_over_tls_is_answered_with_audio(
    tls_registering: TlsRegistering,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """A baresip calls through Kamailio; Kamailio reaches the worker over TLS."""
    worker, kamailio = tls_registering()
    worker.wait_registration(EXT_ID, Status.SUCCESSFUL)
    caller = registered_phone(baresip_factory, kamailio)
    call = answered_call(worker, caller, EXT)
    recording = tmp_path / "tls-call.wav"
    worker.request(Method.RECORD, {"call_id": call.call_id, "path": str(recording)})
    worker.drain(1.5)
    caller.hangup()
    end = call_ended(worker, call.call_id)
    assert end.cause == EndCause.BYE
    assert end.answered
    done = RecordingDone.from_wire(worker.wait_event(EventName.RECORDING_DONE).data)
    samples, rate = read_pcm(recording)
    assert done.path == str(recording)
    assert_tone(samples, rate, CALLER_TONE_HZ, seconds=0.5)
