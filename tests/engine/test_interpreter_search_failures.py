"""Interpreters that fail the search in less common ways: skipped, listed, never left."""

from pathlib import Path

import pytest

from custom_components.sip_endpoint.engine import interpreter
from custom_components.sip_endpoint.engine.errors import WorkerPythonNotFoundError
from custom_components.sip_endpoint.engine.interpreter import (
    find_worker_python,
    probe_interpreter,
)

from .conftest import FakePythonFactory, pid_alive


def _pyenv(folder: Path, prints: str) -> None:
    pyenv = folder / "pyenv"
    pyenv.write_text(f'#!/bin/sh\n[ "$1 $2" = "prefix 3.12" ] && echo "{prints}"\n')
    pyenv.chmod(0o755)


async def test_pyenv_python_without_pjsua2_is_listed(
    fake_python: FakePythonFactory, empty_path: Path
) -> None:
    """The 3.12 pyenv knows, without pjsua2, is named in the error, under its real path."""
    prefix = empty_path.parent / "pyenv-3.12"
    fake_python("--no-pjsua2", name="python3.12", folder=prefix / "bin")
    _pyenv(empty_path, str(prefix))
    with pytest.raises(WorkerPythonNotFoundError) as caught:
        await find_worker_python(None, ())
    assert str(prefix / "bin" / "python3.12") in caught.value.searched


async def test_pyenv_without_the_version_is_listed_as_the_usual_place(
    empty_path: Path,
) -> None:
    """A pyenv that prints no prefix leaves the generic hint in the error."""
    _pyenv(empty_path, "")
    with pytest.raises(WorkerPythonNotFoundError) as caught:
        await find_worker_python(None, ())
    assert "$(pyenv prefix 3.12)/bin/python3.12" in caught.value.searched


async def test_hanging_interpreter_is_given_up_and_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interpreter that never answers the probe does not count and does not linger."""
    monkeypatch.setattr(interpreter, "PROBE_TIMEOUT", 0.5)
    pid_file = tmp_path / "pid"
    stuck = tmp_path / "stuck-python"
    stuck.write_text(f'#!/bin/sh\necho $$ > "{pid_file}"\nexec sleep 60\n')
    stuck.chmod(0o755)
    assert await probe_interpreter(str(stuck)) is None
    assert not pid_alive(int(pid_file.read_text()))
