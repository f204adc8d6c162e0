"""scripts/sip-check end to end, as a subprocess, against a real Kamailio."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.sipbed.netutil import free_port

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .conftest import FakePythonFactory

SIP_CHECK = Path(__file__).resolve().parents[2] / "scripts" / "sip-check"

pytestmark = pytest.mark.usefixtures("socket_enabled")


def run_check(
    *args: str, worker: Path | str, password: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run sip-check with this worker interpreter; the check itself runs on our Python."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SIP_PASSWORD", "SIP_ENDPOINT_WORKER_PYTHON")
    }
    env["SIP_ENDPOINT_WORKER_PYTHON"] = str(worker)
    env["SIP_CHECK_PYTHON"] = sys.executable
    env["PATH"] = "/usr/bin:/bin"
    if password is not None:
        env["SIP_PASSWORD"] = password
    return subprocess.run(
        [str(SIP_CHECK), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_extension(
    server: str,
    extension: str,
    *args: str,
    worker: Path | str,
    password: str | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run sip-check for ``extension`` at ``server``, with more ``args``."""
    return run_check(
        "--server",
        server,
        "--extension",
        extension,
        *args,
        worker=worker,
        password=password,
        stdin=stdin,
    )


def at(kamailio: Kamailio) -> str:
    """Return Kamailio's ``host:port`` (the --server argument)."""
    return f"{kamailio.host}:{kamailio.port}"


def test_success_json(kamailio: Kamailio, worker_python: Path) -> None:
    """A good password: exit 0 and exactly one JSON line."""
    result = check_extension(
        at(kamailio),
        "2030",
        "--json",
        worker=worker_python,
        password="pw-2030",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    outcome = json.loads(lines[0])
    assert set(outcome) == {
        "status",
        "code",
        "reason",
        "elapsed_ms",
        "engine",
        "engine_version",
    }
    assert (outcome["status"], outcome["code"]) == ("successful", 200)
    assert outcome["engine"] == "pjsua2"  # auto, and the worker interpreter has it
    assert outcome["engine_version"].startswith("2.15.1")
    assert isinstance(outcome["elapsed_ms"], int) and outcome["elapsed_ms"] >= 0
    assert "pw-2030" not in result.stdout + result.stderr


def test_success_text_over_tcp(kamailio: Kamailio, worker_python: Path) -> None:
    """Human output names status, code, reason and elapsed time."""
    result = check_extension(
        at(kamailio),
        "2031",
        "--transport",
        "tcp",
        "--auth-id",
        "2031",
        worker=worker_python,
        password="pw-2031",
    )
    assert result.returncode == 0, result.stderr
    assert "status:  successful" in result.stdout
    assert "code:    200" in result.stdout
    assert "elapsed:" in result.stdout
    assert "engine:  pjsua2 2.15.1" in result.stdout


def test_wrong_password_prompted(kamailio: Kamailio, worker_python: Path) -> None:
    """Without SIP_PASSWORD the password is prompted for; a wrong one exits 1."""
    result = check_extension(
        at(kamailio),
        "2032",
        "--json",
        worker=worker_python,
        stdin="not-the-password\n",
    )
    assert result.returncode == 1, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["status"] == "rejected_by_server"
    assert outcome["code"] == 401
    assert "not-the-password" not in result.stdout + result.stderr


def test_server_down_tcp(worker_python: Path) -> None:
    """Nobody listening: no reply from server, exit 1."""
    result = check_extension(
        f"127.0.0.1:{free_port()}",
        "2033",
        "--transport",
        "tcp",
        "--json",
        worker=worker_python,
        password="pw-2033",
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["status"] == "no_reply_from_server"


def test_no_worker_interpreter(fake_python: FakePythonFactory, tmp_path: Path) -> None:
    """The pjsua2 engine without an interpreter for it: exit 2, say how to make one."""
    result = check_extension(
        "127.0.0.1:5060",
        "2034",
        "--engine",
        "pjsua2",
        "--json",
        worker=fake_python("--no-pjsua2"),
        password="secret-2034",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "pip install pjsua2-python==2.15.1.post1" in result.stderr
    assert "secret-2034" not in result.stderr


def test_bad_arguments(worker_python: Path) -> None:
    """A missing extension or a bad port is a usage error (exit 2)."""
    missing = run_check("--server", "127.0.0.1", worker=worker_python, password="x")
    assert missing.returncode == 2
    bad_port = check_extension(
        "127.0.0.1:99999",
        "1",
        worker=worker_python,
        password="x",
    )
    assert bad_port.returncode == 2
    assert "bad port" in bad_port.stderr


def test_bad_engine_is_a_usage_error(worker_python: Path) -> None:
    """An engine that does not exist is refused before anything runs."""
    result = check_extension(
        "127.0.0.1",
        "1",
        "--engine",
        "asterisk",
        worker=worker_python,
        password="x",
    )
    assert result.returncode == 2
    assert "invalid choice: 'asterisk'" in result.stderr


@pytest.mark.parametrize("engine", ["builtin", "auto"])
def test_builtin_engine_without_pjsua2(
    kamailio: Kamailio, fake_python: FakePythonFactory, engine: str
) -> None:
    """No pjsua2 anywhere: builtin, and auto, register through the built-in engine."""
    result = check_extension(
        at(kamailio),
        "2035",
        "--engine",
        engine,
        "--json",
        worker=fake_python("--no-pjsua2"),
        password="pw-2035",
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert (outcome["status"], outcome["code"]) == ("successful", 200)
    assert outcome["engine"] == "builtin"
    assert "pw-2035" not in result.stdout + result.stderr


def test_builtin_engine_text_names_it(kamailio: Kamailio, worker_python: Path) -> None:
    """The built-in engine is used when asked for, even with pjsua2 at hand."""
    result = check_extension(
        at(kamailio),
        "2036",
        "--engine",
        "builtin",
        worker=worker_python,
        password="pw-2036",
    )
    assert result.returncode == 0, result.stderr
    assert "status:  successful" in result.stdout
    assert "engine:  builtin " in result.stdout
