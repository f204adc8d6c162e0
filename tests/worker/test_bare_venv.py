"""The built-in engine needs nothing but the standard library and audioop-lts."""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from custom_components.sip_endpoint.protocol.payloads import Method
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .client import account_params, start_params
from .conftest import builtin_python

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .conftest import WorkerFactory

# Where audioop comes from: the standard library up to 3.12, audioop-lts after.
_AUDIOOP_DIR = (
    "import audioop, pathlib, sys;"
    "path = pathlib.Path(audioop.__file__);"
    "print(path.parent if path.parent.name == 'audioop' else '')"
)
_LIST_SITE_PACKAGES = (
    "import os, sysconfig; print(sorted(os.listdir(sysconfig.get_path('purelib'))))"
)


def _bare_venv(base_python: Path, where: Path) -> tuple[Path, bool]:
    """Make a venv without pip holding only audioop-lts (when the stdlib lacks it).

    Return its interpreter and whether audioop had to be copied in.
    """
    subprocess.run(
        [str(base_python), "-m", "venv", "--without-pip", str(where)], check=True
    )
    python = where / "bin" / "python"
    audioop_dir = subprocess.run(
        [str(base_python), "-c", _AUDIOOP_DIR],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site_packages = Path(
        subprocess.run(
            [
                str(python),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if audioop_dir:
        shutil.copytree(audioop_dir, site_packages / "audioop")
    return python, bool(audioop_dir)


@pytest.mark.engines("builtin", reason="pjsua2 needs its wheel")
def test_builtin_engine_runs_in_a_bare_venv(
    engine: str,
    worker_factory: WorkerFactory,
    kamailio: Kamailio,
    sip_ports: tuple[int, int],
    tmp_path: Path,
) -> None:
    """A venv with only the standard library and audioop registers an extension."""
    python, copied = _bare_venv(builtin_python(), tmp_path / "bare")
    installed = subprocess.run(
        [str(python), "-I", "-c", _LIST_SITE_PACKAGES],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert installed == ("['audioop']" if copied else "[]")
    version = subprocess.run(
        [str(python), "-I", "-c", "import sys; print(sys.version_info[:2] >= (3, 13))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # audioop left the standard library in 3.13: from then on it is audioop-lts.
    assert copied == (version == "True")
    worker = worker_factory(python)
    assert worker.hello is not None
    assert worker.hello.engine == engine
    worker.request(
        Method.START, start_params(port_min=sip_ports[0], port_max=sip_ports[1])
    )
    worker.request(
        Method.ADD_ACCOUNT, account_params("2090", kamailio.host, kamailio.port)
    )
    state = worker.wait_registration("ext-2090", RegistrationStatus.SUCCESSFUL)
    assert state.code == 200
    assert worker.shutdown() == 0
