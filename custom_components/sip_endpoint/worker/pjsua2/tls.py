"""TLS for the pjsua2 engine: what is trusted, and why a server was refused.

pjsip verifies a server certificate only with ``TlsConfig.verifyServer`` and reads
trusted CAs from one file (``CaListFile``). `TlsTrust` turns the start parameters
into that: the system's CA bundle, or a temporary file holding the system bundle and
the configured CA file together. With verification on, pjsip also checks the
certificate's names against the host it connected to.

A refused certificate closes the connection before the REGISTER is sent, so pjsua
reports the REGISTER like any transport failure. `TlsFailures` records what
``Endpoint.onTransportState`` says about the refused connection, so the account can
report `tls_certificate_invalid` with the reason instead of "no reply".
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
from pathlib import Path
import tempfile
import time
from typing import Any, Final

import pjsua2 as pj

_LOGGER = logging.getLogger(__name__)

SYSTEM_CA_BUNDLES: Final = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Alpine
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL
    Path("/etc/ssl/cert.pem"),  # Alpine, macOS
)
# A refusal explains a failed REGISTER this long after it was seen.
FAILURE_MEMORY: Final = 40.0
VERIFY_FAILED: Final = "certificate verify failed"

# pjlib's verification flags (pj_ssl_cert_verify_flag_t), worded as OpenSSL words
# them (as the built-in engine reports them), most telling first.
_FLAG_TEXTS: Final = (
    (pj.PJ_SSL_CERT_EVALIDITY_PERIOD, "certificate has expired or is not yet valid"),
    (pj.PJ_SSL_CERT_EISSUER_NOT_FOUND, "unable to get local issuer certificate"),
    (pj.PJ_SSL_CERT_EUNTRUSTED, "certificate not trusted (self-signed or unknown CA)"),
    (pj.PJ_SSL_CERT_EISSUER_MISMATCH, "issuer mismatch"),
    (pj.PJ_SSL_CERT_EREVOKED, "certificate revoked"),
    (pj.PJ_SSL_CERT_EINVALID_PURPOSE, "unsuitable certificate purpose"),
    (pj.PJ_SSL_CERT_EINVALID_FORMAT, "invalid certificate format"),
    (pj.PJ_SSL_CERT_ECHAIN_TOO_LONG, "certificate chain too long"),
    (pj.PJ_SSL_CERT_ECRL_FAILURE, "CRL failure"),
    (pj.PJ_SSL_CERT_EWEAK_SIGNATURE, "weak signature"),
)


def system_ca_bundle() -> Path | None:
    """Return this system's CA bundle (one PEM file), if it has one."""
    for path in SYSTEM_CA_BUNDLES:
        if path.is_file():
            return path
    return None


class TlsTrust:
    """The CA list and verification settings of the worker's TLS transport."""

    def __init__(self, verify: bool, ca_file: str | None) -> None:
        """Trust the system's CAs plus ``ca_file``; verify unless ``verify`` is off."""
        self.verify = verify
        self.ca_file = ca_file
        self._combined: Path | None = None

    def configure(self, config: Any) -> None:
        """Fill a `pj.TlsConfig` (of the TLS listener, which outgoing links use)."""
        config.method = pj.PJSIP_TLSV1_2_METHOD
        config.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3
        if not self.verify:
            config.verifyServer = False
            _LOGGER.warning(
                "TLS certificate verification is off: any server certificate is"
                " accepted"
            )
            return
        config.verifyServer = True
        ca_list = self._ca_list()
        if ca_list is not None:
            config.CaListFile = str(ca_list)

    def _ca_list(self) -> Path | None:
        system = system_ca_bundle()
        if not self.ca_file:
            return system
        if system is None:
            return Path(self.ca_file)
        if self._combined is None:
            # pjsip takes one file: the system's bundle followed by the CA file.
            handle, name = tempfile.mkstemp(prefix="sip-endpoint-ca-", suffix=".pem")
            with os.fdopen(handle, "wb") as out:
                out.write(system.read_bytes().rstrip(b"\n") + b"\n")
                out.write(Path(self.ca_file).read_bytes())
            self._combined = Path(name)
        return self._combined

    def close(self) -> None:
        """Remove the combined CA file, if one was written."""
        if self._combined is not None:
            self._combined.unlink(missing_ok=True)
            self._combined = None


@dataclass(frozen=True, slots=True)
class TlsFailure:
    """A TLS connection refused for its certificate."""

    at: float
    remote: str  # "host:port" as pjsip names it
    reason: str


def verify_reason(verify_status: int, remote_host: str) -> str:
    """Return why a certificate with pjlib's ``verify_status`` flags was refused."""
    texts = [text for flag, text in _FLAG_TEXTS if verify_status & flag]
    if verify_status & pj.PJ_SSL_CERT_EIDENTITY_NOT_MATCH:
        texts.append(f"host name mismatch, certificate is not valid for {remote_host}")
    if not texts:
        texts.append(f"unknown error (flags 0x{verify_status:x})")
    return f"{VERIFY_FAILED}: {'; '.join(texts)}"


def _host_of(remote: str) -> str:
    host, _, _port = remote.rpartition(":")
    return host.strip("[]") or remote


def _port_of(remote: str) -> int | None:
    _host, _, port = remote.rpartition(":")
    return int(port) if port.isdigit() else None


class TlsFailures:
    """The latest certificate refusals, read when a REGISTER over TLS fails."""

    def __init__(self) -> None:
        """Start with none."""
        self._latest: TlsFailure | None = None

    def observe(self, prm: Any) -> None:
        """Record a TLS transport closed for its certificate (`onTransportState`)."""
        if not str(prm.type).upper().startswith("TLS"):
            return
        info = prm.tlsInfo
        status = int(info.verifyStatus)
        if prm.state != pj.PJSIP_TP_STATE_DISCONNECTED or not status:
            return
        remote = str(info.remoteAddr)
        failure = TlsFailure(
            time.monotonic(), remote, verify_reason(status, _host_of(remote))
        )
        _LOGGER.info("TLS connection to %s refused: %s", remote, failure.reason)
        self._latest = failure

    def find(self, port: int) -> TlsFailure | None:
        """Return a recent refusal of a connection to ``port``, if there is one."""
        failure = self._latest
        if failure is None or time.monotonic() - failure.at > FAILURE_MEMORY:
            return None
        remote_port = _port_of(failure.remote)
        if remote_port is not None and remote_port != port:
            return None
        return failure
