"""Certificates for SIP over TLS tests, made with the ``openssl`` command line tool.

``make_certificates(directory)`` creates a test-bed CA and server certificates of five
kinds (``CertificateKind``): ``valid`` (127.0.0.1 and localhost, signed by the CA),
``untrusted`` (same names, signed by another CA), ``wrong_host`` (signed by the CA,
for another name only), ``expired`` (signed by the CA, valid in January 2020) and
``self_signed``. Clients trust ``CertificateSet.ca_path``; a Kamailio serves one kind
with ``Kamailio(..., tls_certificate=certificates.server("expired"))``.

The expired certificate is issued by ``openssl ca`` with ``-startdate``/``-enddate``
(OpenSSL 3.0 has no ``-not_after`` for ``x509``/``req``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import subprocess
from typing import Final, Literal, get_args

CertificateKind = Literal["valid", "untrusted", "wrong_host", "expired", "self_signed"]
CERTIFICATE_KINDS: Final = get_args(CertificateKind)
WRONG_HOST: Final = "not-this-host.invalid"
OPENSSL_TIMEOUT: Final = 60.0
EXPIRED_START: Final = "20200101000000Z"
EXPIRED_END: Final = "20200201000000Z"
VALID_DAYS: Final = 30

# What Python's ssl module reports for each refused kind (``verify_message``).
EXPECTED_VERIFY_MESSAGES: Final[dict[CertificateKind, str]] = {
    "untrusted": "unable to get local issuer certificate",
    "wrong_host": "mismatch, certificate is not valid for",
    "expired": "certificate has expired",
    "self_signed": "self-signed certificate",
}

_CA_CONFIG: Final = """\
[ca]
default_ca = testbed

[testbed]
dir = {directory}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
x509_extensions = server

[anything]
commonName = supplied

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class CertificateError(RuntimeError):
    """openssl could not make a certificate."""


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A server certificate (PEM) and its private key."""

    certificate: Path
    key: Path


@dataclass(frozen=True, slots=True)
class CertificateSet:
    """The test bed's CA and one server certificate of every kind."""

    directory: Path
    host: str

    @property
    def ca_path(self) -> Path:
        """The test-bed CA certificate: the file a client trusts."""
        return self.directory / "ca.pem"

    @property
    def other_ca_path(self) -> Path:
        """The CA that signed the ``untrusted`` certificate (trusted by nobody)."""
        return self.directory / "other-ca" / "ca.pem"

    def server(self, kind: CertificateKind = "valid") -> ServerCertificate:
        """Return the server certificate of ``kind``."""
        return ServerCertificate(
            self.directory / f"{kind}.pem", self.directory / f"{kind}.key"
        )


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=OPENSSL_TIMEOUT,
    )
    if result.returncode != 0:
        raise CertificateError(
            f"openssl {args[0]} failed: {result.stderr.strip()[-800:]}"
        )


def _new_key_args(key: Path) -> list[str]:
    return [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
    ]


def _make_ca(directory: Path, name: str) -> None:
    """Create a CA (key, certificate, ``openssl ca`` database) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "issued").mkdir(exist_ok=True)
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1000\n")
    (directory / "ca.cnf").write_text(_CA_CONFIG.format(directory=directory))
    _openssl(
        "req",
        "-x509",
        *_new_key_args(directory / "ca.key"),
        "-out",
        str(directory / "ca.pem"),
        "-days",
        str(VALID_DAYS),
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectKeyIdentifier=hash",
        cwd=directory,
    )


def _issue(
    ca_dir: Path,
    out: ServerCertificate,
    names: list[str],
    *,
    start: str | None = None,
    end: str | None = None,
) -> None:
    """Issue a server certificate for ``names`` (IPs and DNS names) from ``ca_dir``."""
    csr = out.certificate.with_suffix(".csr")
    alt_names = ",".join(
        f"IP:{name}"
        if name.replace(".", "").isdigit() or ":" in name
        else f"DNS:{name}"
        for name in names
    )
    _openssl(
        "req",
        "-new",
        *_new_key_args(out.key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={names[0]}",
        "-addext",
        f"subjectAltName={alt_names}",
        cwd=ca_dir,
    )
    validity = (
        ["-startdate", start, "-enddate", end]
        if start and end
        else ["-days", str(VALID_DAYS)]
    )
    _openssl(
        "ca",
        "-batch",
        "-notext",
        "-config",
        str(ca_dir / "ca.cnf"),
        "-cert",
        str(ca_dir / "ca.pem"),
        "-keyfile",
        str(ca_dir / "ca.key"),
        "-in",
        str(csr),
        "-out",
        str(out.certificate),
        *validity,
        cwd=ca_dir,
    )


def make_certificates(directory: Path, host: str = "127.0.0.1") -> CertificateSet:
    """Create (once per directory) the CA and every kind of server certificate."""
    directory = Path(directory).resolve()
    certificates = CertificateSet(directory, host)
    if all(
        certificates.server(kind).certificate.exists() for kind in CERTIFICATE_KINDS
    ):
        return certificates
    names = [host, "localhost"] if host != "localhost" else [host]
    _make_ca(directory, "sip-endpoint test bed CA")
    other_ca = directory / "other-ca"
    _make_ca(other_ca, "sip-endpoint untrusted CA")
    _issue(directory, certificates.server("valid"), names)
    _issue(other_ca, certificates.server("untrusted"), names)
    _issue(directory, certificates.server("wrong_host"), [WRONG_HOST])
    _issue(
        directory,
        certificates.server("expired"),
        names,
        start=EXPIRED_START,
        end=EXPIRED_END,
    )
    self_signed = certificates.server("self_signed")
    _openssl(
        "req",
        "-x509",
        *_new_key_args(self_signed.key),
        "-out",
        str(self_signed.certificate),
        "-days",
        str(VALID_DAYS),
        "-subj",
        f"/CN={host}",
        "-addext",
        f"subjectAltName={'IP' if host[0].isdigit() else 'DNS'}:{host}",
        cwd=directory,
    )
    for kind in CERTIFICATE_KINDS:
        certificates.server(kind).key.chmod(0o600)
    return certificates
