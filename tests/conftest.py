"""Fixtures shared by every test: the real SIP test bed and the worker interpreter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.sipbed.baresip import (
    Baresip,
    BaresipFactory,
    Registrar,
    Transport,
    stop_all,
)
from tests.sipbed.kamailio import (
    DEFAULT_AUTH,
    AuthOptions,
    Kamailio,
    KamailioFactory,
    UnknownUserPolicy,
    WrongPasswordPolicy,
)
from tests.sipbed.netns import (
    NamespacePair,
    NetworkNamespace,
    namespaces_available,
)
from tests.sipbed.users import TEST_USERS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from tests.sipbed.tls import ServerCertificate

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_PYTHON_ENV = "SIP_ENDPOINT_WORKER_PYTHON"


@pytest.fixture
def kamailio_factory(tmp_path: Path, socket_enabled: None) -> Iterator[KamailioFactory]:
    """Return a callable that starts Kamailio instances; all are stopped at teardown."""
    started: list[Kamailio] = []

    def _start(
        users: Mapping[str, str] | None = None,
        *,
        wrong_password: WrongPasswordPolicy = "rechallenge",
        unknown_user: UnknownUserPolicy = "forbidden",
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: NetworkNamespace | None = None,
        tls: bool = False,
        tls_certificate: ServerCertificate | None = None,
        auth: AuthOptions = DEFAULT_AUTH,
    ) -> Kamailio:
        kamailio = Kamailio(
            tmp_path / f"kamailio-{len(started)}",
            TEST_USERS if users is None else users,
            wrong_password=wrong_password,
            unknown_user=unknown_user,
            host=host,
            port=port,
            netns=netns,
            tls=tls,
            tls_certificate=tls_certificate,
            auth=auth,
        )
        started.append(kamailio)
        kamailio.start()
        return kamailio

    yield _start
    for kamailio in started:
        kamailio.stop()


@pytest.fixture
def kamailio(kamailio_factory: KamailioFactory) -> Kamailio:
    """Return a started Kamailio with the standard test users."""
    return kamailio_factory()


@pytest.fixture
def baresip_factory(tmp_path: Path, socket_enabled: None) -> Iterator[BaresipFactory]:
    """Return a callable that starts baresip user agents; all are stopped at teardown."""
    started: list[Baresip] = []

    def _start(
        *,
        user: str,
        password: str | None,
        registrar: Registrar | None,
        bind_host: str = "127.0.0.1",
        audio_file: Path | None = None,
        register: bool = True,
        transport: Transport = "udp",
        netns: NetworkNamespace | None = None,
    ) -> Baresip:
        baresip = Baresip(
            tmp_path / f"baresip-{len(started)}-{user}",
            user=user,
            password=password,
            registrar=registrar,
            bind_host=bind_host,
            audio_file=audio_file,
            register=register,
            transport=transport,
            netns=netns,
        )
        started.append(baresip)
        baresip.start()
        return baresip

    yield _start
    stop_all(started)


@pytest.fixture
def netns_pair() -> Iterator[NamespacePair]:
    """Two network namespaces joined by a veth link (fails without root)."""
    if not namespaces_available():
        pytest.fail("network namespace tests need root (ip netns) and os.setns")
    pair = NamespacePair()
    yield pair
    pair.close()


@pytest.fixture
def worker_python() -> Path:
    """Return the CPython 3.12 interpreter that has pjsua2 (never skip: fail)."""
    configured = os.environ.get(WORKER_PYTHON_ENV)
    if configured:
        path = Path(configured)
        if not path.exists():
            pytest.fail(f"{WORKER_PYTHON_ENV}={configured} does not exist")
        return path
    default = REPO_ROOT / ".venv-worker" / "bin" / "python"
    if default.exists():
        return default
    pytest.fail(
        f"No worker interpreter: set {WORKER_PYTHON_ENV} to a CPython 3.12 with "
        "pjsua2-python, or run scripts/test (it creates .venv-worker)"
    )
