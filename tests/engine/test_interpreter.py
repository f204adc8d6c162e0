"""Finding the worker interpreter: every place it is looked for, in order."""

import asyncio
from pathlib import Path

import pytest

from custom_components.sip_endpoint.engine.errors import WorkerPythonNotFoundError
from custom_components.sip_endpoint.engine.interpreter import (
    find_worker_python,
    probe_interpreter,
)

from .conftest import FakePythonFactory

REPO = Path(__file__).resolve().parents[2]


async def test_real_worker_interpreter(worker_python: Path) -> None:
    """The test bed's interpreter imports pjsua2 and reports its versions."""
    found = await find_worker_python(str(worker_python))
    assert found.path == str(worker_python)
    assert found.python_version.startswith("3.12.")
    assert found.pjsua2_version.startswith("2.15.1")


async def test_configured_without_pjsua2_is_an_error(
    fake_python: FakePythonFactory, empty_path: Path
) -> None:
    """A configured interpreter that cannot import pjsua2 is never replaced silently."""
    broken = fake_python("--no-pjsua2")
    with pytest.raises(WorkerPythonNotFoundError) as caught:
        await find_worker_python(broken, ("/nonexistent/python",))
    assert caught.value.searched == [f"{broken} (configured)"]
    assert "pip install pjsua2-python==2.15.1.post1" in str(caught.value)


async def test_configured_missing_file(empty_path: Path) -> None:
    """A configured path that does not exist is reported."""
    with pytest.raises(WorkerPythonNotFoundError):
        await find_worker_python(str(empty_path / "python3.12"))


async def test_env_var_before_candidates(
    fake_python: FakePythonFactory, empty_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIP_ENDPOINT_WORKER_PYTHON wins over the caller's candidates."""
    from_env = fake_python()
    candidate = fake_python()
    monkeypatch.setenv("SIP_ENDPOINT_WORKER_PYTHON", from_env)
    found = await find_worker_python(None, (candidate,))
    assert found.path == from_env
    assert (found.python_version, found.pjsua2_version) == ("3.12.99", "0.0-fake")


async def test_candidates_in_order(
    fake_python: FakePythonFactory, empty_path: Path
) -> None:
    """Candidates that cannot import pjsua2 are skipped; the first good one wins."""
    broken = fake_python("--no-pjsua2")
    good = fake_python()
    also_good = fake_python()
    found = await find_worker_python(
        None, ("/nonexistent/bin/python", broken, good, also_good)
    )
    assert found.path == good


async def test_python312_on_path(
    fake_python: FakePythonFactory, empty_path: Path
) -> None:
    """`python3.12` on PATH counts when it really runs and imports pjsua2."""
    fake_python(name="python3.12", folder=empty_path)
    found = await find_worker_python(None, ())
    assert found.path == "python3.12"


async def test_python312_shim_that_fails(empty_path: Path) -> None:
    """A `python3.12` that exits non-zero (a pyenv shim without the version) is skipped."""
    shim = empty_path / "python3.12"
    shim.write_text(
        "#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n"
    )
    shim.chmod(0o755)
    with pytest.raises(WorkerPythonNotFoundError) as caught:
        await find_worker_python(None, ())
    assert "python3.12" in caught.value.searched


async def test_pyenv_prefix(fake_python: FakePythonFactory, empty_path: Path) -> None:
    """`$(pyenv prefix 3.12)/bin/python3.12` is the last place looked at."""
    prefix = empty_path.parent / "pyenv-3.12"
    fake_python(name="python3.12", folder=prefix / "bin")
    pyenv = empty_path / "pyenv"
    pyenv.write_text(f'#!/bin/sh\n[ "$1 $2" = "prefix 3.12" ] && echo "{prefix}"\n')
    pyenv.chmod(0o755)
    found = await find_worker_python(None, ())
    assert found.path == str(prefix / "bin" / "python3.12")


async def test_none_found(
    fake_python: FakePythonFactory, empty_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing usable anywhere: the error lists the places and says how to make one."""
    broken = fake_python("--no-pjsua2")
    monkeypatch.setenv("SIP_ENDPOINT_WORKER_PYTHON", broken)
    with pytest.raises(WorkerPythonNotFoundError) as caught:
        await find_worker_python(None, ("/config/sip_endpoint_worker/bin/python",))
    searched = caught.value.searched
    assert broken in searched
    assert "/config/sip_endpoint_worker/bin/python" in searched
    assert "python3.12" in searched
    assert "$(pyenv prefix 3.12)/bin/python3.12" in searched
    message = str(caught.value)
    assert "python3.12 -m venv <dir>" in message
    assert "<dir>/bin/pip install pjsua2-python==2.15.1.post1" in message


async def test_garbage_probe_output(tmp_path: Path) -> None:
    """An interpreter printing something else than the versions does not count."""
    odd = tmp_path / "odd-python"
    odd.write_text("#!/bin/sh\necho 'not json'\n")
    odd.chmod(0o755)
    assert await probe_interpreter(str(odd)) is None


async def test_own_interpreter_first(worker_python: Path) -> None:
    """Running on an interpreter that has pjsua2, the engine uses that one."""
    code = (
        "import asyncio, sys, types\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "for name, path in (('custom_components', 'custom_components'),"
        " ('custom_components.sip_endpoint', 'custom_components/sip_endpoint')):\n"
        "    module = types.ModuleType(name)\n"
        f"    module.__path__ = [{str(REPO)!r} + '/' + path]\n"
        "    sys.modules[name] = module\n"
        "from custom_components.sip_endpoint.engine.interpreter import find_worker_python\n"
        "found = asyncio.run(find_worker_python(None, ('/nonexistent/python',)))\n"
        "print(found.path == sys.executable, found.pjsua2_version)\n"
    )
    process = await asyncio.create_subprocess_exec(
        str(worker_python), "-I", "-c", code, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert stdout.decode().split() == ["True", "2.15.1.post1"]
